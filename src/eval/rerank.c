/* eval/rerank: the k-reciprocal Jaccard distances of test-time re-ranking.
 * The queries and the gallery form one joint set; its kNN lists and the
 * Jaccard rows of the queries come from the cluster module (the same code
 * as the pseudo labels), and each (query, gallery) pair is then sent to the
 * rank holding the gallery item, where the evaluation blends it with the
 * original distance (see include/slr/eval.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "slr/cluster.h"
#include "slr/eval.h"

void slr_rerank_pairs_free(slr_rerank_pairs *p) {
  if (!p) return;
  free(p->qptr);
  free(p->g);
  free(p->jac);
  free(p->qinv);
  memset(p, 0, sizeof *p);
}

typedef struct {
  int64_t q;  /* global query */
  int32_t g;  /* gallery index on the receiving rank */
  float jac;
} pair_msg;

int slr_rerank_pairs_compute(MPI_Comm comm, int64_t dim, const float *qf, int64_t nq,
                             const float *gf, int64_t ng, int variant, int metric, int k1,
                             int k2, slr_rerank_pairs *out) {
  int rank, size;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  SLR_MPI(MPI_Comm_size(comm, &size));
  memset(out, 0, sizeof *out);
  int64_t *cnt = malloc((size_t)size * 2 * sizeof(int64_t));
  int64_t *joff = malloc((size_t)(size + 1) * sizeof(int64_t));
  int64_t *qoff = malloc((size_t)(size + 1) * sizeof(int64_t));
  int *scnt = calloc((size_t)size, sizeof(int)), *sdsp = malloc((size_t)size * sizeof(int));
  int *rcnt = malloc((size_t)size * sizeof(int)), *rdsp = malloc((size_t)size * sizeof(int));
  int64_t nrows = nq + ng;
  float *x = malloc((size_t)(nrows * dim) * sizeof(float) + 1);
  unsigned char *rows = malloc((size_t)nrows + 1);
  float *scale = malloc((size_t)nrows * sizeof(float) + 1), *myinv = NULL;
  int zhong = variant == SLR_RERANK_ZHONG;
  int kw = zhong ? k1 + 1 : k1;
  pair_msg *sbuf = NULL, *rbuf = NULL;
  slr_knn knn = {0};
  slr_sparse jac = {0};
  int rc = cnt && joff && qoff && scnt && sdsp && rcnt && rdsp && x && rows && scale
               ? 0
               : SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory (%lld rows)",
                          (long long)nrows);
  rc = slr_agree(comm, rc);
  if (rc) goto done;
  int64_t mine[2] = {nq, ng};
  {
    int mrc = MPI_Allgather(mine, 2, MPI_INT64_T, cnt, 2, MPI_INT64_T, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgather", __FILE__, __LINE__);
  }
  rc = slr_agree(comm, rc);
  if (rc) goto done;
  joff[0] = qoff[0] = 0;
  for (int r = 0; r < size; r++) {
    joff[r + 1] = joff[r] + cnt[2 * r] + cnt[2 * r + 1];
    qoff[r + 1] = qoff[r] + cnt[2 * r];
  }
  int64_t n = joff[size];
  /* the same on every rank */
  if (k1 < 1 || kw > n)
    rc = SLR_FAIL(SLR_ERR_INPUT,
                  "re-ranking: k1 = %d must be in 1..%lld (the query + gallery items%s)", k1,
                  (long long)(zhong ? n - 1 : n), zhong ? " - 1" : "");
  else if (k2 < 1 || k2 > k1)
    rc = SLR_FAIL(SLR_ERR_INPUT, "re-ranking: k2 = %d must be in 1..k1 = %d", k2, k1);
  else if (n >= INT32_MAX)
    rc = SLR_FAIL(SLR_ERR_INPUT, "re-ranking: %lld items, at most 2^31 - 2 are supported",
                  (long long)n);
  if (rc) goto done;

  /* the joint rows of this rank, unit length */
  for (int64_t i = 0; i < nrows; i++) {
    const float *src = i < nq ? qf + i * dim : gf + (i - nq) * dim;
    float *dst = x + i * dim;
    double s = 0.0;
    for (int64_t c = 0; c < dim; c++) s += (double)src[c] * (double)src[c];
    double nrm = sqrt(s);
    if (nrm < 1e-12) nrm = 1e-12;
    for (int64_t c = 0; c < dim; c++) dst[c] = (float)((double)src[c] / nrm);
    rows[i] = i < nq;
  }
  slr_knn_opts ko = {.farthest = zhong};
  rc = slr_knn_compute(comm, x, nrows, n, dim, kw, &ko, &knn);
  slr_jaccard_opts jo = {.k1 = k1, .k2 = k2, .max_dist = 1.0, .rows = rows};
  int power = metric == SLR_METRIC_COSINE ? 2 : 1;
  if (!rc && zhong) {
    /* each row's distances divided by its largest, D = 2 - 2 s (for the
     * cosine metric (1 - s)^2, whose ratios are those of D^2) */
    for (int64_t i = 0; i < nrows; i++) {
      double dm = 2.0 - 2.0 * (double)knn.smin[i];
      if (power == 2) dm *= dm;
      scale[i] = (float)(dm > 1e-12 ? dm : 1e-12);
    }
    jo.window_plus_one = 1;
    jo.power = power;
    jo.scale = scale;
    /* 1 / the largest metric distance of each query, for the blend */
    out->qinv = malloc((size_t)(qoff[size] + 1) * sizeof(float));
    myinv = malloc((size_t)(nq + 1) * sizeof(float));
    if (!out->qinv || !myinv) rc = SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory");
    rc = slr_agree(comm, rc);
    if (!rc) {
      double a = metric == SLR_METRIC_COSINE ? 1.0 : 2.0;
      for (int64_t i = 0; i < nq; i++) {
        double dm = a - a * (double)knn.smin[i];
        myinv[i] = (float)(1.0 / (dm > 1e-12 ? dm : 1e-12));
      }
      for (int r = 0; r < size; r++) {
        rcnt[r] = (int)cnt[2 * r];
        rdsp[r] = (int)qoff[r];
      }
      int mrc = MPI_Allgatherv(myinv, (int)nq, MPI_FLOAT, out->qinv, rcnt, rdsp, MPI_FLOAT, comm);
      if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgatherv", __FILE__, __LINE__);
      out->power = power;
    }
  }
  if (!rc) rc = slr_jaccard_compute_ex(comm, x, dim, &knn, &jo, &jac);
  slr_knn_free(&knn);
  free(x);
  x = NULL;
  if (rc) goto done;

  /* route each (query, gallery) pair to the owner of the gallery item */
  int64_t nnz = jac.indptr[nq];
  int *owner = malloc((size_t)nnz * sizeof(int) + 1);
  rc = owner ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory (%lld pairs)", (long long)nnz);
  for (int64_t e = 0; e < nnz && !rc; e++) {
    int64_t c = jac.indices[e];
    int lo = 0, hi = size - 1;
    while (lo < hi) { /* the last rank with joff[r] <= c */
      int mid = (lo + hi + 1) / 2;
      if (joff[mid] <= c)
        lo = mid;
      else
        hi = mid - 1;
    }
    owner[e] = c - joff[lo] >= cnt[2 * lo] ? lo : -1; /* -1: a query column */
    if (owner[e] >= 0) scnt[lo]++;
  }
  int64_t total = 0;
  for (int r = 0; r < size; r++) {
    sdsp[r] = (int)total;
    total += scnt[r];
  }
  if (!rc) {
    sbuf = malloc((size_t)total * sizeof(pair_msg) + 1);
    if (!sbuf) rc = SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory (%lld pairs)", (long long)total);
  }
  if (!rc) {
    int *at = rcnt; /* reused as fill positions */
    for (int r = 0; r < size; r++) at[r] = sdsp[r];
    for (int64_t r = 0; r < nq; r++)
      for (int64_t e = jac.indptr[r]; e < jac.indptr[r + 1]; e++) {
        int o = owner[e];
        if (o < 0) continue;
        pair_msg *m = &sbuf[at[o]++];
        m->q = qoff[rank] + r;
        m->g = (int32_t)(jac.indices[e] - joff[o] - cnt[2 * o]);
        m->jac = jac.values[e];
      }
  }
  free(owner);
  slr_sparse_free(&jac);
  rc = slr_agree(comm, rc);
  if (rc) goto done;
  {
    int mrc = MPI_Alltoall(scnt, 1, MPI_INT, rcnt, 1, MPI_INT, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Alltoall", __FILE__, __LINE__);
  }
  rc = slr_agree(comm, rc);
  if (rc) goto done;
  int64_t rtotal = 0;
  for (int r = 0; r < size; r++) {
    rdsp[r] = (int)rtotal;
    rtotal += rcnt[r];
  }
  int64_t nq_tot = qoff[size];
  if ((total + size) * (int64_t)sizeof(pair_msg) > INT32_MAX ||
      (rtotal + size) * (int64_t)sizeof(pair_msg) > INT32_MAX)
    rc = SLR_FAIL(SLR_ERR, "re-ranking: too many pairs to exchange (%lld)", (long long)total);
  if (!rc) {
    rbuf = malloc((size_t)rtotal * sizeof(pair_msg) + 1);
    out->qptr = calloc((size_t)(nq_tot + 1), sizeof(int64_t));
    out->g = malloc((size_t)rtotal * sizeof(int32_t) + 1);
    out->jac = malloc((size_t)rtotal * sizeof(float) + 1);
    if (!rbuf || !out->qptr || !out->g || !out->jac)
      rc = SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory (%lld pairs)", (long long)rtotal);
  }
  rc = slr_agree(comm, rc);
  if (rc) goto done;
  {
    /* counts and displacements in bytes */
    for (int r = 0; r < size; r++) {
      scnt[r] *= (int)sizeof(pair_msg);
      sdsp[r] *= (int)sizeof(pair_msg);
      rcnt[r] *= (int)sizeof(pair_msg);
      rdsp[r] *= (int)sizeof(pair_msg);
    }
    int mrc = MPI_Alltoallv(sbuf, scnt, sdsp, MPI_BYTE, rbuf, rcnt, rdsp, MPI_BYTE, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Alltoallv (re-ranking pairs)", __FILE__, __LINE__);
  }
  rc = slr_agree(comm, rc);
  if (rc) goto done;
  /* group by query (counting sort) */
  out->nq_tot = nq_tot;
  for (int64_t e = 0; e < rtotal; e++) out->qptr[rbuf[e].q + 1]++;
  for (int64_t q = 0; q < nq_tot; q++) out->qptr[q + 1] += out->qptr[q];
  for (int64_t e = 0; e < rtotal; e++) {
    int64_t at = out->qptr[rbuf[e].q]++;
    out->g[at] = rbuf[e].g;
    out->jac[at] = rbuf[e].jac;
  }
  for (int64_t q = nq_tot; q > 0; q--) out->qptr[q] = out->qptr[q - 1];
  out->qptr[0] = 0;

done:
  if (rc) slr_rerank_pairs_free(out);
  slr_knn_free(&knn);
  slr_sparse_free(&jac);
  free(cnt);
  free(joff);
  free(qoff);
  free(scnt);
  free(sdsp);
  free(rcnt);
  free(rdsp);
  free(x);
  free(rows);
  free(scale);
  free(myinv);
  free(sbuf);
  free(rbuf);
  return rc;
}
