// A module that may include anything: not reported.
#include "top/top.h"
#include "low/inner/inner.h"
