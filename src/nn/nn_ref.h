/* The plain reference kernels (float: slr_ref_, double: slr_ref64_), for
 * the tests and the optimised kernels' fallbacks; not part of the public
 * API. Same arguments as the optimised kernels of slr/nn.h, direct loops,
 * no scratch, no threads, local statistics only. Every function is Local. */
#ifndef SLR_NN_REF_H
#define SLR_NN_REF_H

#include "slr/nn.h"

#define SLR_NN_REF_DECLS(T, P)                                                    \
  void P##conv2d_forward(T *out, const T *inp, const T *weight, const T *bias,      \
                         const slr_conv2d_dims *d);                                  \
  void P##conv2d_backward(T *dinp, T *dweight, T *dbias, const T *dout,              \
                          const T *inp, const T *weight, const slr_conv2d_dims *d);   \
  void P##batchnorm_forward(T *out, T *mean, T *rstd, const T *inp, const T *weight,  \
                            const T *bias, T *running_mean, T *running_var,           \
                            int64_t *num_batches, const slr_bn_dims *d);              \
  void P##batchnorm_backward(T *dinp, T *dweight, T *dbias, const T *dout,            \
                             const T *inp, const T *weight, const T *mean,            \
                             const T *rstd, const slr_bn_dims *d);                    \
  void P##instnorm_forward(T *out, T *mean, T *rstd, const T *inp, const T *weight,   \
                           const T *bias, int N, int C, int HW, T eps);               \
  void P##instnorm_backward(T *dinp, T *dweight, T *dbias, const T *dout,             \
                            const T *inp, const T *weight, const T *mean,             \
                            const T *rstd, int N, int C, int HW);                     \
  void P##relu_forward(T *out, const T *inp, int64_t n);                              \
  void P##relu_backward(T *dinp, const T *dout, const T *out, int64_t n);             \
  void P##maxpool_forward(T *out, const T *inp, const slr_pool_dims *d);              \
  void P##maxpool_backward(T *dinp, const T *dout, const T *inp, const slr_pool_dims *d); \
  void P##avgpool_forward(T *out, const T *inp, int N, int C, int HW);                \
  void P##avgpool_backward(T *dinp, const T *dout, int N, int C, int HW);             \
  void P##gem_forward(T *out, const T *inp, T p, T eps, int N, int C, int HW);        \
  void P##gem_backward(T *dinp, T *dp, const T *dout, const T *out, const T *inp,     \
                       T p, T eps, int N, int C, int HW);                             \
  void P##linear_forward(T *out, const T *inp, const T *weight, const T *bias, int N, \
                         int IN, int OUT);                                            \
  void P##linear_backward(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp, \
                          const T *weight, int N, int IN, int OUT);                   \
  void P##l2norm_forward(T *out, T *norm, const T *inp, int N, int D, T eps);         \
  void P##l2norm_backward(T *dinp, const T *dout, const T *out, const T *norm, int N, \
                          int D, T eps);                                              \
  T P##xent_forward(T *probs, const T *logits, const int32_t *labels,                 \
                    const T *soft_targets, int N, int K, T smoothing);                \
  void P##xent_backward(T *dlogits, const T *probs, const int32_t *labels,            \
                        const T *soft_targets, int N, int K, T smoothing, T dloss);   \
  T P##triplet_forward(const T *feat, const int32_t *labels, int N, int D, T margin,  \
                       int32_t *pos, int32_t *neg, T *dap, T *dan);                   \
  void P##triplet_backward(T *dfeat, const T *feat, int N, int D, T margin,           \
                           const int32_t *pos, const int32_t *neg, const T *dap,      \
                           const T *dan, T dloss);

SLR_NN_REF_DECLS(float, slr_ref_)
SLR_NN_REF_DECLS(double, slr_ref64_)

#endif
