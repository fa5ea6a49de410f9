// Its own module, and a bare include: neither is reported. The nested module
// low/inner is not linked by low: reported.
#include "tests/data/module_map/src/low/low.h"

#include "tests/data/module_map/src/high/high.h"
#include "tests/data/module_map/src/low/inner/inner.h"
