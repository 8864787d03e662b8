/* Optimised layers: batch normalisation (with SyncBN over an MPI
 * communicator), instance normalisation, ReLU, max/avg/GeM pooling, linear
 * (cblas_sgemm) and L2 normalisation. OpenMP over channels or rows;
 * reductions in double. The plain loops are the slr_ref_* kernels. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_ref.h"
#include "slr/nn.h"

/* ---- batch normalisation ----------------------------------------------------- */

static int allreduce_sum(double *buf, int n, MPI_Comm comm) {
  if (comm == MPI_COMM_NULL) return 0;
  SLR_MPI(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, comm));
  return 0;
}

/* mean and rstd (C) of the batch, over all ranks of d->comm when set, and
 * the running statistics' update; one pass over the input */
static int bn_batch_stats(float *mean, float *rstd, const float *inp, float *running_mean,
                          float *running_var, const slr_bn_dims *d) {
  const int C = d->C, N = d->N, HW = d->HW, CT = d->ctot > 0 ? d->ctot : d->C;
  double *acc; /* sums (C) | sums of squares (C) | count, reduced together */
  SLR_ALLOC(acc, sizeof(double) * (size_t)(2 * C + 1));
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; c++) {
    double s = 0, s2 = 0;
    for (int n = 0; n < N; n++) {
      const float *x = inp + ((int64_t)n * CT + c) * HW;
      for (int i = 0; i < HW; i++) {
        double v = x[i];
        s += v, s2 += v * v;
      }
    }
    acc[c] = s, acc[C + c] = s2;
  }
  acc[2 * C] = (double)N * HW;
  int rc = allreduce_sum(acc, 2 * C + 1, d->comm);
  if (rc) {
    free(acc);
    return rc;
  }
  double cnt = acc[2 * C];
  for (int c = 0; c < C; c++) {
    double mu = acc[c] / cnt, var = acc[C + c] / cnt - mu * mu;
    if (var < 0) var = 0;
    mean[c] = (float)mu;
    rstd[c] = (float)(1.0 / sqrt(var + d->eps));
    if (running_mean) {
      double m = d->momentum, unb = cnt > 1 ? var * cnt / (cnt - 1) : var;
      running_mean[c] = (float)((1 - m) * running_mean[c] + m * mu);
      running_var[c] = (float)((1 - m) * running_var[c] + m * unb);
    }
  }
  free(acc);
  return 0;
}

int slr_batchnorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, float *running_mean,
                          float *running_var, int64_t *num_batches, const slr_bn_dims *d) {
  const int C = d->C, N = d->N, HW = d->HW, CT = d->ctot > 0 ? d->ctot : d->C;
  if (d->training) {
    SLR_TRY(bn_batch_stats(mean, rstd, inp, running_mean, running_var, d));
    if (num_batches) (*num_batches)++;
  } else {
    for (int c = 0; c < C; c++) {
      mean[c] = running_mean[c];
      rstd[c] = (float)(1.0 / sqrt((double)running_var[c] + d->eps));
    }
  }
  const float lo = d->relu ? 0.0f : -INFINITY;
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) {
      float sc = rstd[c] * (weight ? weight[c] : 1.0f);
      float sh = (bias ? bias[c] : 0.0f) - mean[c] * sc;
      const float *x = inp + ((int64_t)n * CT + c) * HW;
      float *y = out + ((int64_t)n * CT + c) * HW;
      for (int i = 0; i < HW; i++) {
        float v = x[i] * sc + sh;
        y[i] = v > lo ? v : lo;
      }
    }
  return 0;
}

int slr_batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, const slr_bn_dims *d) {
  const int C = d->C, N = d->N, HW = d->HW, CT = d->ctot > 0 ? d->ctot : d->C;
  double *acc;
  SLR_ALLOC(acc, sizeof(double) * (size_t)(2 * C + 1));
  double *sdy = acc, *sdyx = acc + C;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; c++) {
    double a = 0, b = 0, mu = mean[c];
    for (int n = 0; n < N; n++) {
      const float *x = inp + ((int64_t)n * CT + c) * HW;
      const float *dy = dout + ((int64_t)n * CT + c) * HW;
      for (int i = 0; i < HW; i++) {
        a += dy[i];
        b += dy[i] * ((double)x[i] - mu);
      }
    }
    sdy[c] = a;
    sdyx[c] = b * rstd[c];
  }
  for (int c = 0; c < C; c++) {
    if (dweight) dweight[c] += (float)sdyx[c];
    if (dbias) dbias[c] += (float)sdy[c];
  }
  acc[2 * C] = (double)N * HW;
  if (dinp && d->training) {
    int rc = allreduce_sum(acc, 2 * C + 1, d->comm);
    if (rc) {
      free(acc);
      return rc;
    }
  }
  if (dinp) {
    double cnt = acc[2 * C];
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
      for (int c = 0; c < C; c++) {
        double g = (weight ? weight[c] : 1.0) * rstd[c];
        const float *x = inp + ((int64_t)n * CT + c) * HW;
        const float *dy = dout + ((int64_t)n * CT + c) * HW;
        float *dx = dinp + ((int64_t)n * CT + c) * HW;
        if (d->training) {
          double a = sdy[c] / cnt, b = sdyx[c] / cnt, mu = mean[c], r = rstd[c];
          for (int i = 0; i < HW; i++)
            dx[i] += (float)(g * (dy[i] - a - ((double)x[i] - mu) * r * b));
        } else {
          for (int i = 0; i < HW; i++) dx[i] += (float)(g * dy[i]);
        }
      }
  }
  free(acc);
  return 0;
}

/* ---- instance normalisation ------------------------------------------------------- */

void slr_instnorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, int HW,
                          float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < (int64_t)N * C; q++) {
    int c = (int)(q % C);
    const float *x = inp + q * HW;
    float *y = out + q * HW;
    double s = 0, s2 = 0;
    for (int i = 0; i < HW; i++) s += x[i];
    double mu = s / HW;
    for (int i = 0; i < HW; i++) s2 += ((double)x[i] - mu) * ((double)x[i] - mu);
    double r = 1.0 / sqrt(s2 / HW + eps);
    mean[q] = (float)mu;
    rstd[q] = (float)r;
    float sc = (float)(r * weight[c]), sh = (float)(bias[c] - mu * r * weight[c]);
    for (int i = 0; i < HW; i++) y[i] = x[i] * sc + sh;
  }
}

void slr_instnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C, int HW) {
  double *acc = calloc((size_t)N * C * 2, sizeof(double));
  int own = acc != NULL;
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < (int64_t)N * C; q++) {
    int c = (int)(q % C);
    const float *x = inp + q * HW, *dy = dout + q * HW;
    double mu = mean[q], r = rstd[q], a = 0, b = 0;
    for (int i = 0; i < HW; i++) {
      a += dy[i];
      b += dy[i] * ((double)x[i] - mu) * r;
    }
    if (own) acc[2 * q] = a, acc[2 * q + 1] = b;
    if (dinp) {
      float *dx = dinp + q * HW;
      double g = weight[c] * r;
      for (int i = 0; i < HW; i++)
        dx[i] += (float)(g * (dy[i] - a / HW - ((double)x[i] - mu) * r * b / HW));
    }
  }
  if (own) {
    /* parameter gradients summed over the batch in a fixed order */
    for (int64_t q = 0; q < (int64_t)N * C; q++) {
      int c = (int)(q % C);
      if (dweight) dweight[c] += (float)acc[2 * q + 1];
      if (dbias) dbias[c] += (float)acc[2 * q];
    }
    free(acc);
  } else {
    slr_ref_instnorm_backward(NULL, dweight, dbias, dout, inp, weight, mean, rstd, N, C, HW);
  }
}

/* ---- ReLU --------------------------------------------------------------------------- */

void slr_relu_forward(float *out, const float *inp, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void slr_relu_backward(float *dinp, const float *dout, const float *out, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++)
    if (out[i] > 0.0f) dinp[i] += dout[i];
}

/* ---- pooling ---------------------------------------------------------------------- */

void slr_maxpool_forward(float *out, int32_t *argmax, const float *inp, const slr_pool_dims *d) {
  int OH = slr_pool_oh(d), OW = slr_pool_ow(d);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < (int64_t)d->N * d->C; p++) {
    const float *plane = inp + p * d->H * d->W;
    for (int y = 0; y < OH; y++)
      for (int x = 0; x < OW; x++) {
        int best = -1;
        float bv = 0.0f;
        for (int ky = 0; ky < d->k; ky++) {
          int iy = y * d->stride - d->pad + ky;
          if (iy < 0 || iy >= d->H) continue;
          for (int kx = 0; kx < d->k; kx++) {
            int ix = x * d->stride - d->pad + kx;
            if (ix < 0 || ix >= d->W) continue;
            float v = plane[iy * d->W + ix];
            if (best < 0 || v > bv || v != v) best = iy * d->W + ix, bv = v;
          }
        }
        out[(p * OH + y) * OW + x] = best >= 0 ? bv : 0.0f;
        argmax[(p * OH + y) * OW + x] = best;
      }
  }
}

void slr_maxpool_backward(float *dinp, const float *dout, const int32_t *argmax,
                          const slr_pool_dims *d) {
  int64_t OHW = (int64_t)slr_pool_oh(d) * slr_pool_ow(d);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < (int64_t)d->N * d->C; p++)
    for (int64_t i = 0; i < OHW; i++) {
      int32_t a = argmax[p * OHW + i];
      if (a >= 0) dinp[p * d->H * d->W + a] += dout[p * OHW + i];
    }
}

void slr_avgpool_forward(float *out, const float *inp, int N, int C, int HW) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < (int64_t)N * C; p++) {
    double s = 0;
    for (int i = 0; i < HW; i++) s += inp[p * HW + i];
    out[p] = (float)(s / HW);
  }
}

void slr_avgpool_backward(float *dinp, const float *dout, int N, int C, int HW) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < (int64_t)N * C; p++) {
    float g = dout[p] / (float)HW;
    for (int i = 0; i < HW; i++) dinp[p * HW + i] += g;
  }
}

void slr_gem_forward(float *out, const float *inp, float p, float eps, int N, int C, int HW) {
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < (int64_t)N * C; q++) {
    double s = 0;
    const float *x = inp + q * HW;
    if (p == 3.0f) {
      for (int i = 0; i < HW; i++) {
        double v = x[i] < eps ? eps : x[i];
        s += v * v * v;
      }
    } else {
      for (int i = 0; i < HW; i++) s += pow(x[i] < eps ? eps : x[i], (double)p);
    }
    out[q] = (float)pow(s / HW, 1.0 / p);
  }
}

/* one pass per (n, c): the sums for dp and the input gradient, with
 * x^p = exp(p log x) and x^(p-1) = x^p / x */
void slr_gem_backward(float *dinp, float *dp, const float *dout, const float *out,
                      const float *inp, float p, float eps, int N, int C, int HW) {
  double gp = 0, pd = p;
#pragma omp parallel for schedule(static) reduction(+ : gp)
  for (int64_t q = 0; q < (int64_t)N * C; q++) {
    const float *x = inp + q * HW;
    float *dx = dinp ? dinp + q * HW : NULL;
    double y = out[q], f = dout[q] * pow(y, 1.0 - pd) / HW, s = 0, sl = 0;
    for (int i = 0; i < HW; i++) {
      double v = x[i] < eps ? eps : x[i], lv = log(v);
      double vp = p == 3.0f ? v * v * v : exp(pd * lv);
      s += vp;
      sl += vp * lv;
      if (dx && x[i] >= eps) dx[i] += (float)(f * vp / v);
    }
    double m = s / HW;
    gp += dout[q] * y * (sl / HW / (pd * m) - log(m) / (pd * pd));
  }
  if (dp) *dp += (float)gp;
}

/* ---- linear ------------------------------------------------------------------------- */

void slr_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int IN, int OUT) {
  float beta = 0.0f;
  if (bias) {
    for (int n = 0; n < N; n++) memcpy(out + (int64_t)n * OUT, bias, sizeof(float) * (size_t)OUT);
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, inp, IN, weight, IN,
              beta, out, OUT);
}

void slr_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int IN, int OUT) {
  if (dbias)
    for (int o = 0; o < OUT; o++) {
      double s = 0;
      for (int n = 0; n < N; n++) s += dout[(int64_t)n * OUT + o];
      dbias[o] += (float)s;
    }
  if (dweight)  // (OUT, IN) += dout^T (OUT, N) inp (N, IN)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, N, 1.0f, dout, OUT, inp, IN,
                1.0f, dweight, IN);
  if (dinp)  // (N, IN) += dout (N, OUT) weight (OUT, IN)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, OUT, 1.0f, dout, OUT, weight,
                IN, 1.0f, dinp, IN);
}

/* ---- L2 normalisation ------------------------------------------------------------------- */

void slr_l2norm_forward(float *out, float *norm, const float *inp, int N, int D, float eps) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (int64_t)n * D;
    double s = 0;
    for (int i = 0; i < D; i++) s += (double)x[i] * x[i];
    double nr = sqrt(s), den = nr > eps ? nr : eps;
    norm[n] = (float)nr;
    for (int i = 0; i < D; i++) out[(int64_t)n * D + i] = (float)(x[i] / den);
  }
}

void slr_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm,
                         int N, int D, float eps) {
  slr_ref_l2norm_backward(dinp, dout, out, norm, N, D, eps);
}
