// The nested module including its parent it does not link: reported.
#pragma once
#include "tests/data/module_map/src/low/low.h"
