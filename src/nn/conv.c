/* conv2d by im2col and cblas_sgemm, one image at a time (the im2col matrix
 * of one image is the only scratch). A 1x1, stride 1, pad 0 convolution
 * multiplies the input directly. The plain loops are slr_ref_conv2d_*. */
#include <cblas.h>
#include <string.h>

#include "slr/nn.h"

static int conv_is_pointwise(const slr_conv2d_dims *d) {
  return d->KH == 1 && d->KW == 1 && d->stride == 1 && d->pad == 0;
}

size_t slr_conv2d_scratch(const slr_conv2d_dims *d) {
  if (conv_is_pointwise(d)) return 0;
  return (size_t)d->C * d->KH * d->KW * (size_t)slr_conv2d_oh(d) * slr_conv2d_ow(d);
}

/* col (C*KH*KW, OH*OW) from one image x (C, H, W) */
static void im2col(float *col, const float *x, const slr_conv2d_dims *d, int OH, int OW) {
  int rows = d->C * d->KH * d->KW;
#pragma omp parallel for schedule(static)
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
        for (int x0 = 0; x0 < OW; x0++) {
          int ix = x0 - d->pad + kx;
          drow[x0] = (ix >= 0 && ix < d->W) ? srow[ix] : 0.0f;
        }
      } else {
        for (int x0 = 0; x0 < OW; x0++) {
          int ix = x0 * d->stride - d->pad + kx;
          drow[x0] = (ix >= 0 && ix < d->W) ? srow[ix] : 0.0f;
        }
      }
    }
  }
}

/* dx (C, H, W) += col2im(dcol (C*KH*KW, OH*OW)); parallel over channels so
 * that no two threads write the same plane */
static void col2im_add(float *dx, const float *dcol, const slr_conv2d_dims *d, int OH, int OW) {
#pragma omp parallel for schedule(static)
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

void slr_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                        const slr_conv2d_dims *d, float *scratch) {
  int OH = slr_conv2d_oh(d), OW = slr_conv2d_ow(d);
  int M = d->OC, Nn = OH * OW, K = d->C * d->KH * d->KW;
  for (int n = 0; n < d->N; n++) {
    const float *x = inp + (int64_t)n * d->C * d->H * d->W; // (C, H, W)
    float *y = out + (int64_t)n * d->OC * Nn;                // (OC, OH*OW)
    const float *b = x;
    if (!conv_is_pointwise(d)) {
      im2col(scratch, x, d, OH, OW);
      b = scratch;
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
}

void slr_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const slr_conv2d_dims *d,
                         float *scratch) {
  int OH = slr_conv2d_oh(d), OW = slr_conv2d_ow(d);
  int M = d->OC, Nn = OH * OW, K = d->C * d->KH * d->KW;
  int pw = conv_is_pointwise(d);
  for (int n = 0; n < d->N; n++) {
    const float *x = inp + (int64_t)n * d->C * d->H * d->W; // (C, H, W)
    const float *dy = dout + (int64_t)n * M * Nn;           // (OC, OH*OW)
    if (dbias) {
      for (int o = 0; o < M; o++) {
        double s = 0;
        for (int i = 0; i < Nn; i++) s += dy[(int64_t)o * Nn + i];
        dbias[o] += (float)s;
      }
    }
    const float *col = x;
    if (!pw) {
      im2col(scratch, x, d, OH, OW);
      col = scratch;
    }
    // dweight (OC, K) += dy (OC, Nn) col^T (Nn, K)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, Nn, 1.0f, dy, Nn, col, Nn, 1.0f,
                dweight, K);
    if (!dinp) continue;
    float *dx = dinp + (int64_t)n * d->C * d->H * d->W;
    if (pw) {
      // dx (C, HW) += W^T (C, OC) dy (OC, HW)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, Nn, M, 1.0f, weight, K, dy, Nn,
                  1.0f, dx, Nn);
    } else {
      // dcol (K, Nn) = W^T dy, then scattered back
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, Nn, M, 1.0f, weight, K, dy, Nn,
                  0.0f, scratch, Nn);
      col2im_add(dx, scratch, d, OH, OW);
    }
  }
}
