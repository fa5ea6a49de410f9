// Lower module including a higher one: the checker must report this line.
#pragma once
#include "tests/data/module_map/src/high/high.h"
