// high links low: allowed.
#pragma once
#include "tests/data/module_map/src/low/low.h"
