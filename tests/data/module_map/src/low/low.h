// Lower module including a higher one: the checker must report this line.
#pragma once
#include "high/high.h"
