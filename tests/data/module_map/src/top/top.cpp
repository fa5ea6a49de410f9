// top links high, which links low (through $<LINK_ONLY:>): both allowed.
#include "tests/data/module_map/src/high/high.h"
#include "tests/data/module_map/src/low/low.h"
