/* conv2d by im2col and cblas_sgemm. The images of the batch are shared
 * among the engine's threads (slr_threads_get()), each running
 * single-threaded sgemm on its own images with its own slice of the
 * scratch: one thread pool at a time, so that OpenMP and OpenBLAS threads
 * never compete for the cores. The forward pass hands the images out one
 * at a time (dynamic schedule: each image's result does not depend on the
 * thread), which keeps the threads busy when the cores are shared with
 * other processes; the backward pass keeps a static split so that the sum
 * of the threads' weight gradients is the same from run to run. A 1x1, stride 1, pad 0 convolution
 * multiplies the input directly. The plain loops are slr_ref_conv2d_*. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "slr/nn.h"

static int conv_is_pointwise(const slr_conv2d_dims *d) {
  return d->KH == 1 && d->KW == 1 && d->stride == 1 && d->pad == 0;
}

static int conv_threads(const slr_conv2d_dims *d) {
  int t = slr_threads_get();
  if (t > d->N) t = d->N;
  return t < 1 ? 1 : t;
}

/* floats per thread: im2col of one image, then a private weight gradient */
static size_t col_floats(const slr_conv2d_dims *d) {
  if (conv_is_pointwise(d)) return 0;
  return (size_t)d->C * d->KH * d->KW * (size_t)slr_conv2d_oh(d) * slr_conv2d_ow(d);
}
static size_t per_thread(const slr_conv2d_dims *d) {
  size_t wsz = conv_threads(d) > 1 ? (size_t)d->OC * d->C * d->KH * d->KW : 0;
  return (col_floats(d) + wsz + 15) & ~(size_t)15;
}

size_t slr_conv2d_scratch(const slr_conv2d_dims *d) {
  return per_thread(d) * (size_t)conv_threads(d);
}

/* col (C*KH*KW, OH*OW) from one image x (C, H, W) */
static void im2col(float *col, const float *x, const slr_conv2d_dims *d, int OH, int OW) {
  int rows = d->C * d->KH * d->KW;
  for (int r = 0; r < rows; r++) {
    int kx = r % d->KW, ky = (r / d->KW) % d->KH, c = r / (d->KW * d->KH);
    const float *plane = x + (int64_t)c * d->H * d->W;
    float *dst = col + (int64_t)r * OH * OW;
    for (int y = 0; y < OH; y++) {
      int iy = y * d->stride - d->pad + ky;
      float *drow = dst + (int64_t)y * OW;
      if (iy < 0 || iy >= d->H) {
        memset(drow, 0, sizeof(float) * (size_t)OW);
        continue;
      }
      const float *srow = plane + (int64_t)iy * d->W;
      if (d->stride == 1) {
        /* the valid span is one copy; the padded ends are zeros */
        int x0 = d->pad - kx > 0 ? d->pad - kx : 0;
        int x1 = d->W + d->pad - kx < OW ? d->W + d->pad - kx : OW;
        if (x1 < x0) x1 = x0;
        for (int i = 0; i < x0; i++) drow[i] = 0.0f;
        if (x1 > x0) memcpy(drow + x0, srow + x0 - d->pad + kx, sizeof(float) * (size_t)(x1 - x0));
        for (int i = x1; i < OW; i++) drow[i] = 0.0f;
      } else {
        for (int x0 = 0; x0 < OW; x0++) {
          int ix = x0 * d->stride - d->pad + kx;
          drow[x0] = (ix >= 0 && ix < d->W) ? srow[ix] : 0.0f;
        }
      }
    }
  }
}

/* dx (C, H, W) += col2im(dcol (C*KH*KW, OH*OW)) */
static void col2im_add(float *dx, const float *dcol, const slr_conv2d_dims *d, int OH, int OW) {
  for (int c = 0; c < d->C; c++) {
    float *plane = dx + (int64_t)c * d->H * d->W;
    for (int ky = 0; ky < d->KH; ky++)
      for (int kx = 0; kx < d->KW; kx++) {
        const float *src = dcol + ((int64_t)(c * d->KH + ky) * d->KW + kx) * OH * OW;
        for (int y = 0; y < OH; y++) {
          int iy = y * d->stride - d->pad + ky;
          if (iy < 0 || iy >= d->H) continue;
          float *prow = plane + (int64_t)iy * d->W;
          const float *srow = src + (int64_t)y * OW;
          for (int x0 = 0; x0 < OW; x0++) {
            int ix = x0 * d->stride - d->pad + kx;
            if (ix >= 0 && ix < d->W) prow[ix] += srow[x0];
          }
        }
      }
  }
}

/* While the engine's threads run, OpenBLAS runs single-threaded in each. */
static void blas_enter(int nt) {
  if (nt > 1) openblas_set_num_threads(1);
}
static void blas_leave(int nt) {
  if (nt > 1) openblas_set_num_threads(slr_threads_get());
}

void slr_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                        const slr_conv2d_dims *d, float *scratch) {
  int OH = slr_conv2d_oh(d), OW = slr_conv2d_ow(d);
  int M = d->OC, Nn = OH * OW, K = d->C * d->KH * d->KW, nt = conv_threads(d);
  int pw = conv_is_pointwise(d);
  size_t pt = per_thread(d);
  blas_enter(nt);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int n = 0; n < d->N; n++) {
    float *col = scratch + pt * (size_t)omp_get_thread_num();
    const float *x = inp + (int64_t)n * d->C * d->H * d->W; // (C, H, W)
    float *y = out + (int64_t)n * d->OC * Nn;                // (OC, OH*OW)
    const float *b = x;
    if (!pw) {
      im2col(col, x, d, OH, OW);
      b = col;
    }
    float beta = 0.0f;
    if (bias) {
      for (int o = 0; o < M; o++)
        for (int i = 0; i < Nn; i++) y[(int64_t)o * Nn + i] = bias[o];
      beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, Nn, K, 1.0f, weight, K, b, Nn,
                beta, y, Nn);
  }
  blas_leave(nt);
}

void slr_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const slr_conv2d_dims *d,
                         float *scratch) {
  int OH = slr_conv2d_oh(d), OW = slr_conv2d_ow(d);
  int M = d->OC, Nn = OH * OW, K = d->C * d->KH * d->KW, nt = conv_threads(d);
  int pw = conv_is_pointwise(d);
  size_t pt = per_thread(d), csz = col_floats(d), wsz = (size_t)M * K;
  if (dbias) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int o = 0; o < M; o++) {
      double s = 0;
      for (int n = 0; n < d->N; n++) {
        const float *dy = dout + ((int64_t)n * M + o) * Nn;
        for (int i = 0; i < Nn; i++) s += dy[i];
      }
      dbias[o] += (float)s;
    }
  }
  blas_enter(nt);
#pragma omp parallel num_threads(nt)
  {
    float *col = scratch + pt * (size_t)omp_get_thread_num();
    /* one thread accumulates straight into dweight; several use private copies */
    float *dw = nt > 1 ? col + csz : dweight;
    if (nt > 1) memset(dw, 0, sizeof(float) * wsz);
#pragma omp for schedule(static)
    for (int n = 0; n < d->N; n++) {
      const float *x = inp + (int64_t)n * d->C * d->H * d->W; // (C, H, W)
      const float *dy = dout + (int64_t)n * M * Nn;           // (OC, OH*OW)
      const float *c = x;
      if (!pw) {
        im2col(col, x, d, OH, OW);
        c = col;
      }
      // dw (OC, K) += dy (OC, Nn) col^T (Nn, K)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, Nn, 1.0f, dy, Nn, c, Nn, 1.0f,
                  dw, K);
      if (!dinp) continue;
      float *dx = dinp + (int64_t)n * d->C * d->H * d->W;
      if (pw) {
        // dx (C, HW) += W^T (C, OC) dy (OC, HW)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, Nn, M, 1.0f, weight, K, dy, Nn,
                    1.0f, dx, Nn);
      } else {
        // dcol (K, Nn) = W^T dy, then scattered back
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, Nn, M, 1.0f, weight, K, dy, Nn,
                    0.0f, col, Nn);
        col2im_add(dx, col, d, OH, OW);
      }
    }
    if (nt > 1) {
      /* sum the private gradients into dweight, split by rows of the output */
#pragma omp barrier
#pragma omp for schedule(static)
      for (size_t i = 0; i < wsz; i++) {
        float s = 0.0f;
        for (int t = 0; t < nt; t++) s += scratch[pt * (size_t)t + csz + i];
        dweight[i] += s;
      }
    }
  }
  blas_leave(nt);
}
