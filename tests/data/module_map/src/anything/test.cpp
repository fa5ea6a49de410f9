// A module that may include anything: not reported.
#include "tests/data/module_map/src/low/inner/inner.h"
#include "top/top.h"
