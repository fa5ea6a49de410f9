// top links high, which links low (through $<LINK_ONLY:>): both allowed.
#include "high/high.h"
#include "low/low.h"
