/* Declarations shared by the files of src/nn and nothing else: the
 * convolution backend policy. Every function here is Local. */
#ifndef SLR_NN_INTERNAL_H
#define SLR_NN_INTERNAL_H

#include "slr/nn.h"

/* policies, and the backends a shape runs on (GEMM, DNNL, DNNL_BLOCKED) */
enum {
  SLR_CONV_AUTO = 0,
  SLR_CONV_GEMM = 1,
  SLR_CONV_DNNL = 2,         /* oneDNN on the plain NCHW tensors */
  SLR_CONV_DNNL_BLOCKED = 3, /* oneDNN in its own layouts, reordered on each call */
  SLR_CONV_TUNE = 4
};

/* The policy from the environment (SLR_CONV_BACKEND); a bad value is a
 * configuration error naming it. */
int slr_conv_policy(int *policy);
/* The backend (GEMM, DNNL or DNNL_BLOCKED) of one convolution shape
 * under the policy; with_bwd: the training step (forward and backward). */
int slr_conv_choose(int policy, const slr_conv2d_dims *d, int with_bwd, int *choice);

#endif
