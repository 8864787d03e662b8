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

/* Where the items live: cnt[2 r], cnt[2 r + 1] = queries, gallery items of
 * rank r; joff = the joint row offsets, qoff = the query offsets. */
typedef struct {
  int rank, size;
  int64_t *cnt, *joff, *qoff;
  int64_t n;
} rr_layout;

static void layout_free(rr_layout *L) {
  free(L->cnt);
  free(L->joff);
  free(L->qoff);
}

/* The layout and the argument checks (the same on every rank). Collective
 * on comm. */
static int layout_init(MPI_Comm comm, int64_t nq, int64_t ng, int zhong, int k1, int k2,
                       rr_layout *L) {
  SLR_MPI(MPI_Comm_rank(comm, &L->rank));
  SLR_MPI(MPI_Comm_size(comm, &L->size));
  int size = L->size;
  L->cnt = malloc((size_t)size * 2 * sizeof(int64_t));
  L->joff = malloc((size_t)(size + 1) * sizeof(int64_t));
  L->qoff = malloc((size_t)(size + 1) * sizeof(int64_t));
  int rc = L->cnt && L->joff && L->qoff ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory");
  SLR_TRY(slr_agree(comm, rc));
  int64_t mine[2] = {nq, ng};
  int mrc = MPI_Allgather(mine, 2, MPI_INT64_T, L->cnt, 2, MPI_INT64_T, comm);
  if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgather", __FILE__, __LINE__);
  SLR_TRY(slr_agree(comm, rc));
  L->joff[0] = L->qoff[0] = 0;
  for (int r = 0; r < size; r++) {
    L->joff[r + 1] = L->joff[r] + L->cnt[2 * r] + L->cnt[2 * r + 1];
    L->qoff[r + 1] = L->qoff[r] + L->cnt[2 * r];
  }
  int64_t n = L->n = L->joff[size];
  int kw = zhong ? k1 + 1 : k1;
  if (k1 < 1 || kw > n)
    return SLR_FAIL(SLR_ERR_INPUT,
                    "re-ranking: k1 = %d must be in 1..%lld (the query + gallery items%s)", k1,
                    (long long)(zhong ? n - 1 : n), zhong ? " - 1" : "");
  if (k2 < 1 || k2 > k1)
    return SLR_FAIL(SLR_ERR_INPUT, "re-ranking: k2 = %d must be in 1..k1 = %d", k2, k1);
  if (n >= INT32_MAX)
    return SLR_FAIL(SLR_ERR_INPUT, "re-ranking: %lld items, at most 2^31 - 2 are supported",
                    (long long)n);
  return 0;
}

/* The joint rows of this rank (queries first), unit length; rows[i] marks
 * the queries. Local. */
static void joint_rows(const float *qf, int64_t nq, const float *gf, int64_t ng, int64_t dim,
                       float *x, unsigned char *rows) {
  for (int64_t i = 0; i < nq + ng; i++) {
    const float *src = i < nq ? qf + i * dim : gf + (i - nq) * dim;
    float *dst = x + i * dim;
    double s = 0.0;
    for (int64_t c = 0; c < dim; c++) s += (double)src[c] * (double)src[c];
    double nrm = sqrt(s);
    if (nrm < 1e-12) nrm = 1e-12;
    for (int64_t c = 0; c < dim; c++) dst[c] = (float)((double)src[c] / nrm);
    rows[i] = i < nq;
  }
}

/* The second variant's scales: each row's distances divided by its largest,
 * D = 2 - 2 s (for the cosine metric (1 - s)^2, whose ratios are those of
 * D^2), and 1 / the largest metric distance of each query for the blend
 * (out->qinv, all queries). Collective on comm. */
static int zhong_scales(MPI_Comm comm, const rr_layout *L, const slr_knn *knn, int64_t nq,
                        int metric, float *scale, slr_rerank_pairs *out) {
  int power = metric == SLR_METRIC_COSINE ? 2 : 1, size = L->size;
  for (int64_t i = 0; i < knn->nrows; i++) {
    double dm = 2.0 - 2.0 * (double)knn->smin[i];
    if (power == 2) dm *= dm;
    scale[i] = (float)(dm > 1e-12 ? dm : 1e-12);
  }
  out->qinv = malloc((size_t)(L->qoff[size] + 1) * sizeof(float));
  float *myinv = malloc((size_t)(nq + 1) * sizeof(float));
  int *rcnt = malloc((size_t)size * sizeof(int)), *rdsp = malloc((size_t)size * sizeof(int));
  int rc = out->qinv && myinv && rcnt && rdsp ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory");
  rc = slr_agree(comm, rc);
  if (!rc) {
    double a = metric == SLR_METRIC_COSINE ? 1.0 : 2.0;
    for (int64_t i = 0; i < nq; i++) {
      double dm = a - a * (double)knn->smin[i];
      myinv[i] = (float)(1.0 / (dm > 1e-12 ? dm : 1e-12));
    }
    for (int r = 0; r < size; r++) {
      rcnt[r] = (int)L->cnt[2 * r];
      rdsp[r] = (int)L->qoff[r];
    }
    int mrc = MPI_Allgatherv(myinv, (int)nq, MPI_FLOAT, out->qinv, rcnt, rdsp, MPI_FLOAT, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgatherv", __FILE__, __LINE__);
    out->power = power;
  }
  free(myinv);
  free(rcnt);
  free(rdsp);
  return slr_agree(comm, rc);
}

/* The Jaccard rows of this rank's queries over the joint set. Collective
 * on comm. */
static int query_jaccard(MPI_Comm comm, const rr_layout *L, int64_t dim, const float *qf,
                         int64_t nq, const float *gf, int64_t ng, int variant, int metric,
                         int k1, int k2, slr_sparse *jac, slr_rerank_pairs *out) {
  int64_t nrows = nq + ng;
  int zhong = variant == SLR_RERANK_ZHONG, kw = zhong ? k1 + 1 : k1;
  float *x = malloc((size_t)(nrows * dim) * sizeof(float) + 1);
  unsigned char *rows = malloc((size_t)nrows + 1);
  float *scale = malloc((size_t)nrows * sizeof(float) + 1);
  int rc = x && rows && scale ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory (%lld rows)",
                                             (long long)nrows);
  rc = slr_agree(comm, rc);
  slr_knn knn = {0};
  if (!rc) {
    joint_rows(qf, nq, gf, ng, dim, x, rows);
    slr_knn_opts ko = {.farthest = zhong};
    rc = slr_knn_compute(comm, x, nrows, L->n, dim, kw, &ko, &knn);
  }
  slr_jaccard_opts jo = {.k1 = k1, .k2 = k2, .max_dist = 1.0, .rows = rows};
  if (!rc && zhong) {
    rc = zhong_scales(comm, L, &knn, nq, metric, scale, out);
    jo.window_plus_one = 1;
    jo.power = metric == SLR_METRIC_COSINE ? 2 : 1;
    jo.scale = scale;
  }
  if (!rc) rc = slr_jaccard_compute_ex(comm, x, dim, &knn, &jo, jac);
  slr_knn_free(&knn);
  free(x);
  free(rows);
  free(scale);
  return rc;
}

/* The (query, gallery) pairs of the Jaccard rows packed by the owner of the
 * gallery item (query columns dropped): *sbuf, scnt / sdsp in pairs.
 * Local. */
static int pack_pairs(const rr_layout *L, const slr_sparse *jac, int64_t nq, pair_msg **sbuf,
                      int *scnt, int *sdsp) {
  int size = L->size;
  int64_t nnz = jac->indptr[nq], total = 0;
  int *owner = malloc((size_t)nnz * sizeof(int) + 1), *at = malloc((size_t)size * sizeof(int));
  if (!owner || !at) {
    free(owner);
    free(at);
    return SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory (%lld pairs)", (long long)nnz);
  }
  for (int64_t e = 0; e < nnz; e++) {
    int64_t c = jac->indices[e];
    int lo = 0, hi = size - 1;
    while (lo < hi) { /* the last rank with joff[r] <= c */
      int mid = (lo + hi + 1) / 2;
      if (L->joff[mid] <= c)
        lo = mid;
      else
        hi = mid - 1;
    }
    owner[e] = c - L->joff[lo] >= L->cnt[2 * lo] ? lo : -1; /* -1: a query column */
    if (owner[e] >= 0) scnt[lo]++;
  }
  for (int r = 0; r < size; r++) {
    sdsp[r] = at[r] = (int)total;
    total += scnt[r];
  }
  *sbuf = malloc((size_t)total * sizeof(pair_msg) + 1);
  int rc = *sbuf ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory (%lld pairs)", (long long)total);
  for (int64_t r = 0; r < nq && !rc; r++)
    for (int64_t e = jac->indptr[r]; e < jac->indptr[r + 1]; e++) {
      int o = owner[e];
      if (o < 0) continue;
      pair_msg *m = &(*sbuf)[at[o]++];
      m->q = L->qoff[L->rank] + r;
      m->g = (int32_t)(jac->indices[e] - L->joff[o] - L->cnt[2 * o]);
      m->jac = jac->values[e];
    }
  if (!rc && (total + size) * (int64_t)sizeof(pair_msg) > INT32_MAX)
    rc = SLR_FAIL(SLR_ERR, "re-ranking: too many pairs to exchange (%lld)", (long long)total);
  free(owner);
  free(at);
  return rc;
}

/* Send the packed pairs to their owners: *rbuf, *rtotal pairs received.
 * Collective on comm. */
static int exchange_pairs(MPI_Comm comm, int size, const pair_msg *sbuf, int *scnt, int *sdsp,
                          pair_msg **rbuf, int64_t *rtotal) {
  int *rcnt = malloc((size_t)size * sizeof(int)), *rdsp = malloc((size_t)size * sizeof(int));
  int rc = rcnt && rdsp ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory");
  rc = slr_agree(comm, rc);
  if (!rc) {
    int mrc = MPI_Alltoall(scnt, 1, MPI_INT, rcnt, 1, MPI_INT, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Alltoall", __FILE__, __LINE__);
    rc = slr_agree(comm, rc);
  }
  int64_t tot = 0;
  for (int r = 0; r < size && !rc; r++) {
    rdsp[r] = (int)tot;
    tot += rcnt[r];
  }
  if (!rc && (tot + size) * (int64_t)sizeof(pair_msg) > INT32_MAX)
    rc = SLR_FAIL(SLR_ERR, "re-ranking: too many pairs to exchange (%lld)", (long long)tot);
  if (!rc) {
    *rbuf = malloc((size_t)tot * sizeof(pair_msg) + 1);
    if (!*rbuf) rc = SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory (%lld pairs)", (long long)tot);
  }
  rc = slr_agree(comm, rc);
  if (!rc) {
    /* counts and displacements in bytes */
    for (int r = 0; r < size; r++) {
      scnt[r] *= (int)sizeof(pair_msg);
      sdsp[r] *= (int)sizeof(pair_msg);
      rcnt[r] *= (int)sizeof(pair_msg);
      rdsp[r] *= (int)sizeof(pair_msg);
    }
    int mrc = MPI_Alltoallv(sbuf, scnt, sdsp, MPI_BYTE, *rbuf, rcnt, rdsp, MPI_BYTE, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Alltoallv (re-ranking pairs)", __FILE__, __LINE__);
  }
  *rtotal = tot;
  free(rcnt);
  free(rdsp);
  return slr_agree(comm, rc);
}

/* The received pairs grouped by query (counting sort). Local. */
static int group_by_query(const pair_msg *rbuf, int64_t rtotal, int64_t nq_tot,
                          slr_rerank_pairs *out) {
  out->qptr = calloc((size_t)(nq_tot + 1), sizeof(int64_t));
  out->g = malloc((size_t)rtotal * sizeof(int32_t) + 1);
  out->jac = malloc((size_t)rtotal * sizeof(float) + 1);
  if (!out->qptr || !out->g || !out->jac)
    return SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory (%lld pairs)", (long long)rtotal);
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
  return 0;
}

int slr_rerank_pairs_compute(MPI_Comm comm, int64_t dim, const float *qf, int64_t nq,
                             const float *gf, int64_t ng, int variant, int metric, int k1,
                             int k2, slr_rerank_pairs *out) {
  memset(out, 0, sizeof *out);
  rr_layout L = {0};
  slr_sparse jac = {0};
  pair_msg *sbuf = NULL, *rbuf = NULL;
  int64_t rtotal = 0;
  int *scnt = NULL, *sdsp = NULL;
  int rc = slr_agree(comm, layout_init(comm, nq, ng, variant == SLR_RERANK_ZHONG, k1, k2, &L));
  if (!rc)
    rc = query_jaccard(comm, &L, dim, qf, nq, gf, ng, variant, metric, k1, k2, &jac, out);
  if (!rc) {
    scnt = calloc((size_t)L.size, sizeof(int));
    sdsp = malloc((size_t)L.size * sizeof(int));
    rc = scnt && sdsp ? pack_pairs(&L, &jac, nq, &sbuf, scnt, sdsp)
                      : SLR_FAIL(SLR_ERR_NOMEM, "re-ranking: out of memory");
    slr_sparse_free(&jac);
    rc = slr_agree(comm, rc);
  }
  if (!rc) rc = exchange_pairs(comm, L.size, sbuf, scnt, sdsp, &rbuf, &rtotal);
  if (!rc) rc = slr_agree(comm, group_by_query(rbuf, rtotal, L.qoff[L.size], out));
  if (rc) slr_rerank_pairs_free(out);
  slr_sparse_free(&jac);
  layout_free(&L);
  free(scnt);
  free(sdsp);
  free(sbuf);
  free(rbuf);
  return rc;
}
