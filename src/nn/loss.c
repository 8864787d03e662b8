/* Losses: softmax cross-entropy (label smoothing, soft targets), batch-hard
 * triplet (margin or soft margin) and the cluster-memory contrastive loss
 * of Cluster Contrast with its memory update. Cross-entropy and triplet are
 * O(N K) and O(N^2 D): the reference loops serve as the kernels; the
 * memory loss multiplies by the memory with cblas_sgemm. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/nn.h"

float slr_xent_forward(float *probs, const float *logits, const int32_t *labels,
                       const float *soft_targets, int N, int K, float smoothing) {
  return slr_ref_xent_forward(probs, logits, labels, soft_targets, N, K, smoothing);
}

void slr_xent_backward(float *dlogits, const float *probs, const int32_t *labels,
                       const float *soft_targets, int N, int K, float smoothing, float dloss) {
  slr_ref_xent_backward(dlogits, probs, labels, soft_targets, N, K, smoothing, dloss);
}

float slr_triplet_forward(const float *feat, const int32_t *labels, int N, int D, float margin,
                          int32_t *pos, int32_t *neg, float *dap, float *dan) {
  return slr_ref_triplet_forward(feat, labels, N, D, margin, pos, neg, dap, dan);
}

void slr_triplet_backward(float *dfeat, const float *feat, int N, int D, float margin,
                          const int32_t *pos, const int32_t *neg, const float *dap,
                          const float *dan, float dloss) {
  slr_ref_triplet_backward(dfeat, feat, N, D, margin, pos, neg, dap, dan, dloss);
}

float slr_cmloss_forward(float *probs, const float *feat, const float *memory,
                         const int32_t *labels, int N, int D, int K, float temp) {
  // probs (N, K) first holds the logits feat (N, D) memory^T (D, K) / temp
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, K, D, 1.0f / temp, feat, D, memory, D,
              0.0f, probs, K);
  double loss = 0;
#pragma omp parallel for schedule(static) reduction(+ : loss)
  for (int n = 0; n < N; n++) {
    float *z = probs + (int64_t)n * K;
    double mx = z[0], s = 0;
    for (int k = 1; k < K; k++)
      if (z[k] > mx) mx = z[k];
    for (int k = 0; k < K; k++) s += exp((double)z[k] - mx);
    double lse = mx + log(s);
    loss -= (double)z[labels[n]] - lse;
    for (int k = 0; k < K; k++) z[k] = (float)exp((double)z[k] - lse);
  }
  return (float)(loss / N);
}

int slr_cmloss_backward(float *dfeat, const float *probs, const float *memory,
                        const int32_t *labels, int N, int D, int K, float temp, float dloss) {
  float *g; // (N, K) gradient of the logits
  SLR_ALLOC(g, sizeof(float) * (size_t)N * K);
  float f = dloss / ((float)N * temp);
  for (int64_t i = 0; i < (int64_t)N * K; i++) g[i] = probs[i] * f;
  for (int n = 0; n < N; n++) g[(int64_t)n * K + labels[n]] -= f;
  // dfeat (N, D) += g (N, K) memory (K, D)
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, K, 1.0f, g, K, memory, D, 1.0f,
              dfeat, D);
  free(g);
  return 0;
}

static void renorm_row(float *m, int D) {
  double s = 0;
  for (int i = 0; i < D; i++) s += (double)m[i] * m[i];
  float r = (float)sqrt(s);
  for (int i = 0; i < D; i++) m[i] /= r;
}

static void blend_row(float *m, const float *f, int D, float mom) {
  for (int i = 0; i < D; i++) m[i] = m[i] * mom + (1.0f - mom) * f[i];
  renorm_row(m, D);
}

void slr_cmloss_update(float *memory, const float *feat, const int32_t *labels, int N, int D,
                       float mom, int hard) {
  if (!hard) {
    for (int n = 0; n < N; n++)
      if (labels[n] >= 0) blend_row(memory + (int64_t)labels[n] * D, feat + (int64_t)n * D, D, mom);
    return;
  }
  /* clusters present, each once, in increasing label order */
  int last = -1;
  for (;;) {
    int y = -1;
    for (int n = 0; n < N; n++)
      if (labels[n] > last && (y < 0 || labels[n] < y)) y = labels[n];
    if (y < 0) break;
    float *m = memory + (int64_t)y * D;
    int best = -1;
    double bs = 0;
    for (int n = 0; n < N; n++) {
      if (labels[n] != y) continue;
      double s = 0;
      for (int i = 0; i < D; i++) s += (double)feat[(int64_t)n * D + i] * m[i];
      if (best < 0 || s < bs) best = n, bs = s;
    }
    blend_row(m, feat + (int64_t)best * D, D, mom);
    last = y;
  }
}

int slr_cmloss_soft(float *dfeat, double *loss, const float *probs, const float *memory,
                    const float *targets, int N, int D, int K, float temp, float weight,
                    int64_t denom) {
  float *g; // (N, K) gradient of the logits, zero on rows without a target
  SLR_ALLOC(g, sizeof(float) * ((size_t)N * K + 1));
  const double f = (double)weight / ((double)denom * temp);
  double l = 0;
  for (int n = 0; n < N; n++) {
    const float *t = targets + (int64_t)n * K, *p = probs + (int64_t)n * K;
    float *gn = g + (int64_t)n * K;
    double tsum = 0;
    for (int k = 0; k < K; k++) tsum += t[k];
    if (tsum <= 0) {
      memset(gn, 0, sizeof(float) * (size_t)K);
      continue;
    }
    for (int k = 0; k < K; k++) {
      if (t[k] > 0) l -= (double)t[k] * log((double)p[k] + 1e-30);
      gn[k] = (float)(f * ((double)p[k] - (double)t[k]));
    }
  }
  // dfeat (N, D) += g (N, K) memory (K, D)
  if (N > 0 && K > 0)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, K, 1.0f, g, K, memory, D, 1.0f,
                dfeat, D);
  free(g);
  *loss = (double)weight * l / (double)denom;
  return 0;
}

int slr_cmemory_init(slr_cmemory *m, int64_t K, int D) {
  memset(m, 0, sizeof *m);
  m->rows = calloc((size_t)(K > 0 ? K : 1) * (size_t)D, sizeof(float));
  if (!m->rows) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for a memory of %lld clusters", (long long)K);
  m->K = K;
  m->D = D;
  return 0;
}

int slr_cmemory_init_centroids(slr_cmemory *m, MPI_Comm comm, const float *feat,
                               const int32_t *labels, int64_t n, int64_t K, int D) {
  double *acc = calloc((size_t)(K > 0 ? K : 1) * (size_t)D, sizeof(double));
  int64_t *cnt = calloc((size_t)(K > 0 ? K : 1), sizeof(int64_t));
  int rc = acc && cnt ? slr_cmemory_init(m, K, D)
                      : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the memory");
  rc = slr_agree(comm, rc);
  for (int64_t i = 0; !rc && i < n; i++) {
    const int32_t y = labels[i];
    if (y < 0 || y >= K) continue;
    cnt[y]++;
    for (int d = 0; d < D; d++) acc[(int64_t)y * D + d] += feat[i * D + d];
  }
  if (!rc && (MPI_Allreduce(MPI_IN_PLACE, acc, (int)(K * D), MPI_DOUBLE, MPI_SUM, comm) ||
              MPI_Allreduce(MPI_IN_PLACE, cnt, (int)K, MPI_INT64_T, MPI_SUM, comm)))
    rc = SLR_FAIL(SLR_ERR, "MPI_Allreduce of the cluster centroids failed");
  for (int64_t k = 0; !rc && k < K; k++) {
    if (cnt[k] == 0) {
      rc = SLR_FAIL(SLR_ERR, "cluster %lld of %lld has no member", (long long)k, (long long)K);
      break;
    }
    double nrm = 0;
    for (int d = 0; d < D; d++) {
      const double v = acc[k * D + d] / (double)cnt[k];
      nrm += v * v;
    }
    nrm = sqrt(nrm);
    for (int d = 0; d < D; d++)
      m->rows[k * D + d] = (float)(acc[k * D + d] / (double)cnt[k] / (nrm > 1e-12 ? nrm : 1e-12));
  }
  free(acc);
  free(cnt);
  if (rc) slr_cmemory_free(m);
  return rc;
}

void slr_cmemory_update(slr_cmemory *m, const float *feat, const int32_t *labels, int N, float mom,
                        int hard) {
  slr_cmloss_update(m->rows, feat, labels, N, m->D, mom, hard);
}

void slr_cmemory_free(slr_cmemory *m) {
  free(m->rows);
  memset(m, 0, sizeof *m);
}
