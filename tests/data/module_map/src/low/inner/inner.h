// The nested module including its parent it does not link: reported.
#pragma once
#include "low/low.h"
