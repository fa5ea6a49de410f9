// Its own module, and a bare include: neither is reported. The nested module
// low/inner is not linked by low: reported.
#include "low/low.h"
#include "high.h"
#include "low/inner/inner.h"
