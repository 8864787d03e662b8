/* The reference kernels instantiated in float (slr_ref_*) and in double
 * (slr_ref64_*), from the one template in ref_kernels.inc. */
#include <math.h>

#include "nn_ref.h"

#define T float
#define FN(name) slr_ref_##name
#include "ref_kernels.inc"
#undef T
#undef FN

#define T double
#define FN(name) slr_ref64_##name
#include "ref_kernels.inc"
#undef T
#undef FN
