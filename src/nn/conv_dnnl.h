/* The oneDNN convolution backend (private to nn). One object per
 * convolution shape (batch included): the forward, backward-data and
 * backward-weights primitives of oneDNN's direct algorithm, with reorders
 * between slr's plain layouts (NCHW, OIHW) and the layouts the primitives
 * chose. The backward pass accumulates (+=) like the im2col path, through
 * reorders with a sum post-operation. Without oneDNN (SLR_DNNL off) the
 * functions exist and report that the backend is unavailable.
 * Every function here is Local. */
#ifndef SLR_NN_CONV_DNNL_H
#define SLR_NN_CONV_DNNL_H

#include "slr/nn.h"

typedef struct slr_dnnl_conv slr_dnnl_conv;

/* 1 when slr was built with oneDNN and its CPU engine starts. */
int slr_dnnl_available(void);
/* "oneDNN 2.6.3, ISA avx2" or "oneDNN not built in". */
const char *slr_dnnl_describe(void);

/* Primitives for the dims d (d->N images). blocked: let oneDNN choose the
 * activation layouts (reordered on every call) instead of plain NCHW.
 * with_bwd: also the backward primitives. Returns 0 or an SLR error when
 * oneDNN has no implementation or no memory. */
int slr_dnnl_conv_create(slr_dnnl_conv **c, const slr_conv2d_dims *d, int blocked, int with_bwd);
void slr_dnnl_conv_free(slr_dnnl_conv *c);
/* The dims the object was made for. */
const slr_conv2d_dims *slr_dnnl_conv_dims(const slr_dnnl_conv *c);
/* Implementation names, "fwd / bwd_d / bwd_w". */
const char *slr_dnnl_conv_impl(const slr_dnnl_conv *c);
/* out (N, OC, OH, OW) = conv(inp, weight) */
int slr_dnnl_conv_forward(slr_dnnl_conv *c, float *out, const float *inp, const float *weight);
/* dinp (N, C, H, W) += (dinp may be NULL), dweight (OC, C, KH, KW) += */
int slr_dnnl_conv_backward(slr_dnnl_conv *c, float *dinp, float *dweight, const float *dout,
                           const float *inp, const float *weight);

#endif
