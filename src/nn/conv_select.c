/* Which convolution backend runs each layer shape. SLR_CONV_BACKEND
 * chooses the policy:
 *   auto  (default) the table in table_choice(), the same choice on every
 *         run, so results are reproducible;
 *   gemm  im2col + OpenBLAS sgemm everywhere;
 *   dnnl  oneDNN everywhere, on the plain NCHW tensors (an error when it
 *         is not built in);
 *   dnnl-blocked  oneDNN everywhere, in the layouts it prefers (nChw8c on
 *         AVX2, nChw16c on AVX-512), reordered from and to NCHW per call;
 *   tune  per shape, the fastest of the three in a short measurement when
 *         the model is planned (timings differ between runs, so the choice
 *         and the rounding may too: for benchmarks).
 * SLR_CONV_VERBOSE=1 logs the choice and the timings per shape. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_dnnl.h"
#include "nn_internal.h"

int slr_conv_policy(int *policy) {
  const char *e = getenv("SLR_CONV_BACKEND");
  if (!e || !*e || !strcmp(e, "auto")) *policy = SLR_CONV_AUTO;
  else if (!strcmp(e, "gemm")) *policy = SLR_CONV_GEMM;
  else if (!strcmp(e, "dnnl")) *policy = SLR_CONV_DNNL;
  else if (!strcmp(e, "dnnl-blocked")) *policy = SLR_CONV_DNNL_BLOCKED;
  else if (!strcmp(e, "tune")) *policy = SLR_CONV_TUNE;
  else
    return SLR_FAIL(SLR_ERR_CONFIG,
                    "environment SLR_CONV_BACKEND='%s': expected auto, gemm, dnnl, dnnl-blocked or tune", e);
  if ((*policy == SLR_CONV_DNNL || *policy == SLR_CONV_DNNL_BLOCKED) && !slr_dnnl_available())
    return SLR_FAIL(SLR_ERR_CONFIG, "SLR_CONV_BACKEND=dnnl but %s", slr_dnnl_describe());
  return 0;
}

static int verbose(void) {
  const char *e = getenv("SLR_CONV_VERBOSE");
  return e && atoi(e) > 0;
}

/* best of reps runs of forward (+ backward) with the backend */
static double time_one(const slr_conv2d_dims *d, slr_dnnl_conv *dc, int with_bwd, float *x,
                       float *w, float *y, float *dx, float *dw, float *scratch) {
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    double t = slr_now();
    if (dc) {
      if (slr_dnnl_conv_forward(dc, y, x, w)) return 1e30;
      if (with_bwd && slr_dnnl_conv_backward(dc, dx, dw, y, x, w)) return 1e30;
    } else {
      slr_conv2d_forward(y, x, w, NULL, d, scratch);
      if (with_bwd) slr_conv2d_backward(dx, dw, NULL, y, x, w, d, scratch);
    }
    t = slr_now() - t;
    if (r > 0 && t < best) best = t; /* the first run warms up */
  }
  return best;
}

/* the measurement of SLR_CONV_BACKEND=tune, on a batch of at most 8 */
static int tune(const slr_conv2d_dims *full, int with_bwd, int *choice) {
  slr_conv2d_dims d = *full;
  if (d.N > 8) d.N = 8;
  size_t nx = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.OC * d.C * d.KH * d.KW;
  size_t ny = (size_t)d.N * d.OC * slr_conv2d_oh(&d) * slr_conv2d_ow(&d);
  size_t ns = slr_conv2d_scratch(&d) + 1;
  float *buf = calloc(2 * nx + 2 * nw + ny + ns, sizeof(float));
  if (!buf) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory (convolution tuning)");
  float *x = buf, *dx = x + nx, *w = dx + nx, *dw = w + nw, *y = dw + nw, *s = y + ny;
  for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 7919) % 17) - 8.0f;
  for (size_t i = 0; i < nw; i++) w[i] = 0.01f * (float)((i * 104729) % 13) - 0.06f;
  double t[3] = {time_one(&d, NULL, with_bwd, x, w, y, dx, dw, s), 1e30, 1e30};
  for (int b = 0; b < 2; b++) {
    slr_dnnl_conv *dc = NULL;
    if (slr_dnnl_conv_create(&dc, &d, b, with_bwd) == 0)
      t[1 + b] = time_one(&d, dc, with_bwd, x, w, y, dx, dw, s);
    else
      slr_error_clear();
    slr_dnnl_conv_free(dc);
  }
  int best = 0;
  for (int b = 1; b < 3; b++)
    if (t[b] < t[best]) best = b;
  *choice = best == 0 ? SLR_CONV_GEMM : best == 1 ? SLR_CONV_DNNL : SLR_CONV_DNNL_BLOCKED;
  if (verbose())
    slr_info("conv %dx%dx%d k%d s%d -> %d, batch %d: gemm %.2f ms, oneDNN %.2f ms, blocked %.2f ms",
             d.C, d.H, d.W, d.KH, d.stride, d.OC, d.N, 1e3 * t[0], 1e3 * t[1], 1e3 * t[2]);
  free(buf);
  return 0;
}

/* The table of SLR_CONV_BACKEND=auto, from measurements with `tune` on an
 * AVX2 CPU (docs/nn.md): oneDNN in its blocked layouts is 1.2 to 3.6 times
 * faster for convolutions with a spatial kernel (3x3, 7x7) and few weights,
 * where im2col multiplies the input by KH*KW and each image's product is
 * small; im2col + sgemm is as fast or faster for 1x1 convolutions (a plain
 * product, no copy, while oneDNN reorders large activations) and for 3x3
 * convolutions with many channels. */
static int table_choice(const slr_conv2d_dims *d) {
  if (!slr_dnnl_available()) return SLR_CONV_GEMM;
  int64_t weights = (int64_t)d->OC * d->C * d->KH * d->KW;
  return d->KH > 1 && weights <= 300000 ? SLR_CONV_DNNL_BLOCKED : SLR_CONV_GEMM;
}

int slr_conv_choose(int policy, const slr_conv2d_dims *d, int with_bwd, int *choice) {
  switch (policy) {
  case SLR_CONV_GEMM:
    *choice = SLR_CONV_GEMM;
    return 0;
  case SLR_CONV_DNNL:
  case SLR_CONV_DNNL_BLOCKED:
    *choice = policy;
    return 0;
  case SLR_CONV_TUNE:
    return tune(d, with_bwd, choice);
  default:
    *choice = table_choice(d);
    return 0;
  }
}

const char *slr_nn_kernels(void) {
  static char buf[256];
  const char *e = getenv("SLR_CONV_BACKEND");
  snprintf(buf, sizeof buf, "im2col + OpenBLAS sgemm (core %s); %s; convolutions: %s",
           openblas_get_corename(), slr_dnnl_available() ? slr_dnnl_describe() : "no oneDNN",
           e && *e ? e : "auto");
  return buf;
}
