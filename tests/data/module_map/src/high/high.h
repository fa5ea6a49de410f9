// high links low: allowed.
#pragma once
#include "low/low.h"
