/* cluster/jaccard: the k-reciprocal Jaccard distance of Cluster Contrast
 * and SpCL (compute_jaccard_distance), kept sparse and sharded by rows.
 * Every rank holds the kNN lists of all rows (O(n k1)); it forms the
 * expanded k-reciprocal sets and the softmax weights V of its own rows, the
 * ranks share the sparse V rows, each forms the query-expanded rows of its
 * own, the ranks broadcast those in turn into the inverted lists (column ->
 * rows with Q[., c] > 0) of every rank, and the Jaccard distances of a
 * rank's rows are summed through them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "neighbours.h"
#include "slr/cluster.h"

/* bytes sent by this rank in the current (last) call */
static int64_t sent_bytes;

int64_t slr_jaccard_bytes_sent(void) { return sent_bytes; }

void slr_sparse_free(slr_sparse *m) {
  if (!m) return;
  free(m->indptr);
  free(m->indices);
  free(m->values);
  m->indptr = NULL;
  m->indices = NULL;
  m->values = NULL;
}

/* A growable list of (index, value) entries. */
typedef struct {
  int32_t *i;
  float *v;
  int64_t n, cap;
} entries;

static int entries_reserve(entries *e, int64_t more) {
  if (e->n + more <= e->cap) return 0;
  int64_t cap = e->cap ? e->cap : 1024;
  while (cap < e->n + more) cap *= 2;
  int32_t *ni = realloc(e->i, (size_t)cap * sizeof(int32_t));
  if (ni) e->i = ni;
  float *nv = realloc(e->v, (size_t)cap * sizeof(float));
  if (nv) e->v = nv;
  if (!ni || !nv) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory (%lld sparse entries)", (long long)cap);
  e->cap = cap;
  return 0;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Sort non-negative int32 keys ascending: insertion sort when short, else
 * a byte-wise LSD radix sort through tmp (at least n entries). */
static void sort_keys(int32_t *a, int64_t n, int32_t *tmp) {
  if (n < 48) {
    for (int64_t i = 1; i < n; i++) {
      int32_t v = a[i];
      int64_t j = i;
      while (j > 0 && a[j - 1] > v) {
        a[j] = a[j - 1];
        j--;
      }
      a[j] = v;
    }
    return;
  }
  int32_t *src = a, *dst = tmp;
  for (int shift = 0; shift < 32; shift += 8) {
    int64_t count[257] = {0};
    for (int64_t i = 0; i < n; i++) count[(((uint32_t)src[i]) >> shift & 255u) + 1]++;
    if (count[(((uint32_t)src[0]) >> shift & 255u) + 1] == n) continue;
    for (int b = 0; b < 256; b++) count[b + 1] += count[b];
    for (int64_t i = 0; i < n; i++) dst[count[((uint32_t)src[i]) >> shift & 255u]++] = src[i];
    int32_t *t = src;
    src = dst;
    dst = t;
  }
  if (src != a) memcpy(a, src, (size_t)n * sizeof(int32_t));
}

/* Allgather sparse rows: local CSR (nrows rows) -> global CSR of n rows on
 * every rank. Collective. */
static int allgather_csr(MPI_Comm comm, const int64_t *off, int64_t nrows,
                         const int64_t *indptr, const int32_t *idx, const float *val,
                         int64_t **g_indptr, int32_t **g_idx, float **g_val) {
  int rank, size;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  SLR_MPI(MPI_Comm_size(comm, &size));
  int64_t n = off[size];
  int *rc_cnt = malloc((size_t)size * sizeof(int)), *rc_dsp = malloc((size_t)size * sizeof(int));
  int64_t *lens = malloc((size_t)(n + 1) * sizeof(int64_t));
  int64_t *nnz_q = malloc((size_t)size * sizeof(int64_t));
  int rc = rc_cnt && rc_dsp && lens && nnz_q ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  rc = slr_agree(comm, rc);
  if (rc) goto fail;
  int64_t mynnz = indptr[nrows];
  for (int q = 0; q < size; q++) {
    rc_cnt[q] = (int)(off[q + 1] - off[q]);
    rc_dsp[q] = (int)off[q];
  }
  int64_t *mylens = malloc((size_t)nrows * sizeof(int64_t) + 1);
  if (!mylens) {
    rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  } else {
    for (int64_t r = 0; r < nrows; r++) mylens[r] = indptr[r + 1] - indptr[r];
  }
  rc = slr_agree(comm, rc);
  if (!rc) {
    int mrc = MPI_Allgatherv(mylens, (int)nrows, MPI_INT64_T, lens, rc_cnt, rc_dsp,
                             MPI_INT64_T, comm);
    sent_bytes += nrows * (int64_t)sizeof(int64_t) * (size - 1);
    if (mrc == MPI_SUCCESS)
      mrc = MPI_Allgather(&mynnz, 1, MPI_INT64_T, nnz_q, 1, MPI_INT64_T, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgatherv (row lengths)", __FILE__, __LINE__);
  }
  free(mylens);
  if (rc) goto fail;
  int64_t total = 0;
  for (int q = 0; q < size; q++) {
    if (total + nnz_q[q] > INT32_MAX)
      rc = SLR_FAIL(SLR_ERR, "sparse rows too large to share (%lld entries)",
                    (long long)(total + nnz_q[q]));
    rc_cnt[q] = (int)nnz_q[q];
    rc_dsp[q] = (int)total;
    total += nnz_q[q];
  }
  int64_t *gp = malloc((size_t)(n + 1) * sizeof(int64_t));
  int32_t *gi = malloc((size_t)total * sizeof(int32_t) + 1);
  float *gv = malloc((size_t)total * sizeof(float) + 1);
  if (!rc && (!gp || !gi || !gv))
    rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory sharing %lld sparse entries", (long long)total);
  rc = slr_agree(comm, rc);
  if (!rc) {
    int mrc = MPI_Allgatherv(idx, (int)mynnz, MPI_INT32_T, gi, rc_cnt, rc_dsp, MPI_INT32_T, comm);
    sent_bytes += mynnz * (int64_t)(sizeof(int32_t) + sizeof(float)) * (size - 1);
    if (mrc == MPI_SUCCESS)
      mrc = MPI_Allgatherv(val, (int)mynnz, MPI_FLOAT, gv, rc_cnt, rc_dsp, MPI_FLOAT, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgatherv (sparse rows)", __FILE__, __LINE__);
  }
  if (rc) {
    free(gp);
    free(gi);
    free(gv);
    goto fail;
  }
  gp[0] = 0;
  for (int64_t r = 0; r < n; r++) gp[r + 1] = gp[r] + lens[r];
  *g_indptr = gp;
  *g_idx = gi;
  *g_val = gv;
fail:
  free(rc_cnt);
  free(rc_dsp);
  free(lens);
  free(nnz_q);
  return rc;
}

/* The inner product of two rows of d floats, summed in double (the same
 * bits wherever the second row came from). */
static inline float row_dot(const float *a, const float *b, int64_t d) {
  double s = 0.0;
  for (int64_t j = 0; j < d; j++) s += (double)a[j] * (double)b[j];
  return (float)s;
}

/* Grow *buf to hold n elements of `size` bytes (capacity in *cap). Local. */
static int grow(void **buf, int64_t *cap, int64_t n, size_t size) {
  if (n <= *cap) return 0;
  void *p = realloc(*buf, (size_t)n * size + 1);
  if (!p) return SLR_FAIL(SLR_ERR_NOMEM, "Jaccard: out of memory (%lld fetched rows)", (long long)n);
  *buf = p;
  *cap = n;
  return 0;
}

/* Inner products of pairs (local row, global column) whose column rows may
 * live on other ranks. The pairs are in any order. At step t = 1..P-1 each
 * rank asks rank + t for the distinct rows of its block that the pairs name
 * and sends rank - t the rows it asked for: only the rows needed travel,
 * and at each step a rank holds the rows it fetched from one block and the
 * rows it serves to one rank (each at most a block, usually far fewer).
 * Collective. */
static int fetch_dots(MPI_Comm comm, const float *x, int64_t d, const int64_t *off, int64_t npairs,
                      const int32_t *prow, const int32_t *pcol, float *out) {
  int rank, size;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  SLR_MPI(MPI_Comm_size(comm, &size));
  int64_t remote = 0, any = 0, maxrows = 0;
  for (int64_t p = 0; p < npairs; p++) {
    int own = pcol[p] >= off[rank] && pcol[p] < off[rank + 1];
    if (own) out[p] = row_dot(x + (int64_t)prow[p] * d, x + (pcol[p] - off[rank]) * d, d);
    remote += !own;
  }
  SLR_MPI(MPI_Allreduce(&remote, &any, 1, MPI_INT64_T, MPI_SUM, comm));
  if (!any) return 0;
  for (int q = 0; q < size; q++)
    if (off[q + 1] - off[q] > maxrows) maxrows = off[q + 1] - off[q];
  /* slot[c]: the position of column row c of the block asked for among the
   * fetched rows (-1: not asked) */
  int32_t *slot = malloc((size_t)maxrows * sizeof(int32_t) + 1);
  int32_t *ask = NULL, *serve = NULL;
  float *got = NULL, *give = NULL;
  int64_t cap_ask = 0, cap_serve = 0, cap_got = 0, cap_give = 0;
  int rc = slot ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "Jaccard: out of memory (row slots)");
  if (slot)
    for (int64_t c = 0; c < maxrows; c++) slot[c] = -1;
  rc = slr_agree(comm, rc);
  for (int t = 1; t < size && !rc; t++) {
    int q = (rank + t) % size, r = (rank - t + size) % size;
    int64_t nask = 0, nserve = 0;
    for (int64_t p = 0; p < npairs && !rc; p++) {
      if (pcol[p] < off[q] || pcol[p] >= off[q + 1]) continue;
      int64_t c = pcol[p] - off[q];
      if (slot[c] >= 0) continue;
      rc = grow((void **)&ask, &cap_ask, nask + 1, sizeof(int32_t));
      if (!rc) {
        slot[c] = (int32_t)nask;
        ask[nask++] = (int32_t)c;
      }
    }
    rc = slr_agree(comm, rc);
    if (rc) break;
    int mrc = MPI_Sendrecv(&nask, 1, MPI_INT64_T, q, 500 + t, &nserve, 1, MPI_INT64_T, r, 500 + t,
                           comm, MPI_STATUS_IGNORE);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "Jaccard row requests", __FILE__, __LINE__);
    if (!rc) rc = grow((void **)&serve, &cap_serve, nserve, sizeof(int32_t));
    if (!rc) rc = grow((void **)&give, &cap_give, nserve * d, sizeof(float));
    if (!rc) rc = grow((void **)&got, &cap_got, nask * d, sizeof(float));
    rc = slr_agree(comm, rc);
    if (rc) break;
    mrc = MPI_Sendrecv(ask, (int)nask, MPI_INT32_T, q, 600 + t, serve, (int)nserve, MPI_INT32_T, r,
                       600 + t, comm, MPI_STATUS_IGNORE);
    if (mrc == MPI_SUCCESS) {
      for (int64_t i = 0; i < nserve; i++)
        memcpy(give + i * d, x + (int64_t)serve[i] * d, (size_t)d * sizeof(float));
      mrc = MPI_Sendrecv(give, (int)(nserve * d), MPI_FLOAT, r, 700 + t, got, (int)(nask * d),
                         MPI_FLOAT, q, 700 + t, comm, MPI_STATUS_IGNORE);
    }
    sent_bytes += (int64_t)sizeof(int64_t) + nask * (int64_t)sizeof(int32_t) +
                  nserve * d * (int64_t)sizeof(float);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "Jaccard row exchange", __FILE__, __LINE__);
    for (int64_t p = 0; p < npairs && !rc; p++)
      if (pcol[p] >= off[q] && pcol[p] < off[q + 1])
        out[p] = row_dot(x + (int64_t)prow[p] * d, got + (int64_t)slot[pcol[p] - off[q]] * d, d);
    for (int64_t i = 0; i < nask; i++) slot[ask[i]] = -1;
    rc = slr_agree(comm, rc);
  }
  free(slot);
  free(ask);
  free(serve);
  free(got);
  free(give);
  return rc;
}

/* The distance of the weights: (2 - 2 s)^power / scale. */
static inline double weight_dist(float sim, int power, double scale) {
  double g = 2.0 - 2.0 * (double)sim;
  if (power == 2) g *= g;
  return scale == 1.0 ? g : g / scale;
}

/* R(i, k): the j among the first w neighbours of i that have i among their
 * first w neighbours, in i's order (lists of `stride` entries); returns the
 * count. */
static int k_reciprocal(const int32_t *all, int stride, int64_t i, int w, int32_t *outv) {
  const int32_t *fi = all + i * stride;
  int m = 0;
  for (int a = 0; a < w; a++) {
    int32_t j = fi[a];
    const int32_t *fj = all + (int64_t)j * stride;
    for (int b = 0; b < w; b++)
      if (fj[b] == (int32_t)i) {
        outv[m++] = j;
        break;
      }
  }
  return m;
}

/* Jaccard rows [ra, rb) of this rank (local CSR qp/qi/qv; only those with
 * rows[r] set when `rows` is not NULL, the others left empty): S through the
 * inverted lists, summed in double over the columns in ascending order (so
 * that d(i, j) and d(j, i) are equal to the bit); the pairs with d <=
 * max_dist go to `out`, their count to len[r + 1]. `acc` is a zeroed array
 * of n doubles (allocated here when NULL). Local. */
static int jaccard_rows(int64_t ra, int64_t rb, int64_t n, const int64_t *qp,
                        const int32_t *qi, const float *qv, const int64_t *cp,
                        const int32_t *ci, const float *cv, double max_dist,
                        const unsigned char *rows, double *acc, int64_t *len, entries *out) {
  int own = acc == NULL;
  if (own) acc = calloc((size_t)n + 1, sizeof(double));
  int32_t *touched = malloc((size_t)n * sizeof(int32_t) + 1);
  int32_t *tmp = malloc((size_t)n * sizeof(int32_t) + 1);
  int rc = acc && touched && tmp ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "Jaccard: out of memory");
  for (int64_t r = ra; r < rb && !rc; r++) {
    if (rows && !rows[r]) {
      len[r + 1] = 0;
      continue;
    }
    int64_t nt = 0;
    for (int64_t e = qp[r]; e < qp[r + 1]; e++) {
      int32_t c = qi[e];
      double vi = qv[e];
      for (int64_t f = cp[c]; f < cp[c + 1]; f++) {
        int32_t j = ci[f];
        double vj = cv[f];
        if (acc[j] == 0.0) touched[nt++] = j;
        acc[j] += vi < vj ? vi : vj;
      }
    }
    sort_keys(touched, nt, tmp);
    rc = entries_reserve(out, nt);
    if (rc) break;
    int64_t kept = 0;
    for (int64_t a = 0; a < nt; a++) {
      int32_t j = touched[a];
      double sum = acc[j];
      acc[j] = 0.0;
      double dj = 1.0 - sum / (2.0 - sum);
      if (dj < 0.0) dj = 0.0;
      if (dj <= max_dist) {
        out->i[out->n] = j;
        out->v[out->n++] = (float)dj;
        kept++;
      }
    }
    len[r + 1] = kept;
  }
  if (own) free(acc);
  free(touched);
  free(tmp);
  return rc;
}

int slr_jaccard_compute(MPI_Comm comm, const float *x, int64_t d, const slr_knn *knn, int k1,
                        int k2, double max_dist, slr_sparse *out) {
  slr_jaccard_opts o = {.k1 = k1, .k2 = k2, .max_dist = max_dist};
  return slr_jaccard_compute_ex(comm, x, d, knn, &o, out);
}

/* The state of one slr_jaccard_compute_ex call: the layout, every row's
 * first kw kNN indices, the half-size sets, V of my rows (then of all
 * rows), the query-expanded rows Q of my rows, the inverted lists of all
 * rows' Q. Each replicated part is freed once the next no longer needs it. */
typedef struct {
  MPI_Comm comm;
  int rank, size, k1, k2, kw, wh, power;
  int64_t n, nrows, row0;
  int64_t *off;
  int32_t *all, *rh, *rhn, *sortbuf;
  entries V, Q;
  int64_t *vp, *gvp, *qp, *cp;
  int32_t *gvi, *ci;
  float *gvv, *cv;
  double *acc;
} jac_run;

static void jac_run_free(jac_run *J) {
  free(J->off);
  free(J->all);
  free(J->rh);
  free(J->rhn);
  free(J->sortbuf);
  free(J->V.i);
  free(J->V.v);
  free(J->Q.i);
  free(J->Q.v);
  free(J->vp);
  free(J->gvp);
  free(J->qp);
  free(J->cp);
  free(J->gvi);
  free(J->ci);
  free(J->gvv);
  free(J->cv);
  free(J->acc);
}

/* The parameter checks (the same on every rank) and the layout. Collective
 * on comm. */
static int jac_init(jac_run *J, const slr_knn *knn, const slr_jaccard_opts *o) {
  J->k1 = o->k1;
  J->k2 = o->k2;
  J->power = o->power ? o->power : 1;
  /* list entries used per row: k1, or k1 + 1 with the wider window */
  J->kw = o->window_plus_one ? J->k1 + 1 : J->k1;
  J->n = knn->n;
  J->nrows = knn->nrows;
  J->row0 = knn->row0;
  SLR_MPI(MPI_Comm_rank(J->comm, &J->rank));
  SLR_MPI(MPI_Comm_size(J->comm, &J->size));
  int rc = 0;
  if (J->k1 < 1 || J->kw > knn->k || J->kw > J->n)
    rc = SLR_FAIL(SLR_ERR, "Jaccard: k1 = %d must be in 1..min(n = %lld, kNN k = %d)%s", J->k1,
                  (long long)J->n, knn->k, J->kw > J->k1 ? " - 1" : "");
  else if (J->power != 1 && J->power != 2)
    rc = SLR_FAIL(SLR_ERR, "Jaccard: power = %d must be 1 or 2", J->power);
  else if (J->k2 < 1 || J->k2 > J->k1)
    rc = SLR_FAIL(SLR_ERR, "Jaccard: k2 = %d must be in 1..k1 = %d", J->k2, J->k1);
  SLR_TRY(slr_agree(J->comm, rc));
  SLR_TRY(slr_block_layout(J->comm, J->nrows, J->n, &J->off));
  if (J->off[J->rank] != J->row0)
    rc = SLR_FAIL(SLR_ERR, "Jaccard: kNN rows do not match the row blocks");
  return slr_agree(J->comm, rc);
}

/* All kNN lists, the first kw columns, on every rank. Collective. */
static int gather_lists(jac_run *J, const slr_knn *knn) {
  int64_t kw = J->kw, nrows = J->nrows;
  J->all = malloc((size_t)(J->n * kw) * sizeof(int32_t));
  int32_t *mine = malloc((size_t)(nrows * kw) * sizeof(int32_t) + 1);
  int *cnt = malloc((size_t)J->size * sizeof(int)), *dsp = malloc((size_t)J->size * sizeof(int));
  int rc = J->all && mine && cnt && dsp ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "Jaccard: out of memory (kNN lists)");
  rc = slr_agree(J->comm, rc);
  if (!rc) {
    for (int64_t r = 0; r < nrows; r++)
      memcpy(mine + r * kw, knn->idx + r * knn->k, (size_t)kw * sizeof(int32_t));
    for (int q = 0; q < J->size; q++) {
      cnt[q] = (int)((J->off[q + 1] - J->off[q]) * kw);
      dsp[q] = (int)(J->off[q] * kw);
    }
    int mrc = MPI_Allgatherv(mine, (int)(nrows * kw), MPI_INT32_T, J->all, cnt, dsp, MPI_INT32_T,
                             J->comm);
    sent_bytes += nrows * kw * (int64_t)sizeof(int32_t) * (J->size - 1);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgatherv (kNN lists)", __FILE__, __LINE__);
  }
  free(mine);
  free(cnt);
  free(dsp);
  return slr_agree(J->comm, rc);
}

/* The expanded set of my row r (global i) into eset, sorted, distinct;
 * returns its size. mark: n zeroed stamps. Local. */
static int expanded_set(const jac_run *J, int64_t r, int32_t *rk, int32_t *eset, int32_t *mark) {
  int64_t i = J->row0 + r;
  int wh = J->wh, nk = k_reciprocal(J->all, J->kw, i, J->kw, rk), ne = 0;
  for (int a = 0; a < nk; a++) eset[ne++] = rk[a];
  /* membership of R(i, k1), marked with a stamp */
  for (int a = 0; a < nk; a++) mark[rk[a]] = (int32_t)(r + 1);
  for (int a = 0; a < nk; a++) {
    int32_t c = rk[a];
    const int32_t *rc_set = J->rh + (int64_t)c * wh;
    int nc = J->rhn[c], inter = 0;
    for (int b = 0; b < nc; b++) inter += mark[rc_set[b]] == (int32_t)(r + 1);
    if ((double)inter > 2.0 / 3.0 * (double)nc)
      for (int b = 0; b < nc; b++) eset[ne++] = rc_set[b];
  }
  for (int a = 0; a < nk; a++) mark[rk[a]] = 0;
  sort_keys(eset, ne, J->sortbuf);
  int m = 0;
  for (int a = 0; a < ne; a++)
    if (m == 0 || eset[a] != eset[m - 1]) eset[m++] = eset[a];
  return m;
}

/* The half-size sets of every row (np.around: half to even), then the
 * support of V for my rows, with the similarities already in the kNN lists
 * (the others NAN). Collective. */
static int v_support(jac_run *J, const slr_knn *knn) {
  int kw = J->kw, kh = (int)rint(J->k1 / 2.0);
  int wh = J->wh = kh + 1 < kw ? kh + 1 : kw;
  int64_t n = J->n;
  J->rh = malloc((size_t)(n * wh) * sizeof(int32_t) + 1);
  J->rhn = malloc((size_t)n * sizeof(int32_t) + 1);
  J->sortbuf = malloc((size_t)(n + kw + kw * wh) * sizeof(int32_t));
  J->vp = malloc((size_t)(J->nrows + 1) * sizeof(int64_t));
  int32_t *rk = malloc((size_t)kw * sizeof(int32_t));
  int32_t *eset = malloc((size_t)(kw + kw * wh) * sizeof(int32_t));
  int32_t *mark = calloc((size_t)n + 1, sizeof(int32_t));
  int rc = J->rh && J->rhn && J->sortbuf && J->vp && rk && eset && mark
               ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "Jaccard: out of memory (reciprocal sets)");
  rc = slr_agree(J->comm, rc);
  if (!rc) {
    for (int64_t i = 0; i < n; i++) J->rhn[i] = k_reciprocal(J->all, kw, i, wh, J->rh + i * wh);
    J->vp[0] = 0;
  }
  entries *V = &J->V;
  for (int64_t r = 0; r < J->nrows && !rc; r++) {
    int m = expanded_set(J, r, rk, eset, mark);
    rc = entries_reserve(V, m);
    if (rc) break;
    for (int a = 0; a < m; a++) {
      V->i[V->n + a] = eset[a];
      V->v[V->n + a] = NAN;
    }
    const int32_t *ki = knn->idx + r * knn->k;
    const float *ks = knn->sim + r * knn->k;
    for (int q = 0; q < knn->k; q++) {
      int32_t *hit = bsearch(&ki[q], V->i + V->n, (size_t)m, sizeof(int32_t), cmp_i32);
      if (hit) V->v[hit - V->i] = ks[q];
    }
    V->n += m;
    J->vp[r + 1] = V->n;
  }
  free(rk);
  free(eset);
  free(mark);
  /* the half-size sets are needed only for the expanded sets */
  free(J->rh);
  free(J->rhn);
  J->rh = NULL, J->rhn = NULL;
  return slr_agree(J->comm, rc);
}

/* The similarities not in the kNN lists (the rows fetched from their owners), then the
 * softmax weights of each of my rows: exp(-g) / sum, g = (2 - 2 s)^power /
 * scale, shifted by the largest -g (the same ratios). Collective. */
static int v_weights(jac_run *J, const float *x, int64_t d, const float *scale_opt) {
  entries *V = &J->V;
  int64_t np = 0;
  for (int64_t e = 0; e < V->n; e++) np += isnan(V->v[e]);
  int32_t *prow = malloc((size_t)np * sizeof(int32_t) + 1), *pcol = malloc((size_t)np * sizeof(int32_t) + 1);
  float *psim = malloc((size_t)np * sizeof(float) + 1);
  int rc = prow && pcol && psim ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "Jaccard: out of memory");
  rc = slr_agree(J->comm, rc);
  if (!rc) {
    np = 0;
    for (int64_t r = 0; r < J->nrows; r++)
      for (int64_t e = J->vp[r]; e < J->vp[r + 1]; e++)
        if (isnan(V->v[e])) {
          prow[np] = (int32_t)r;
          pcol[np++] = V->i[e];
        }
    rc = fetch_dots(J->comm, x, d, J->off, np, prow, pcol, psim);
  }
  if (!rc) {
    np = 0;
    for (int64_t e = 0; e < V->n; e++)
      if (isnan(V->v[e])) V->v[e] = psim[np++];
    for (int64_t r = 0; r < J->nrows; r++) {
      double scale = scale_opt ? (double)scale_opt[r] : 1.0, mx = -INFINITY, s = 0.0;
      for (int64_t e = J->vp[r]; e < J->vp[r + 1]; e++) {
        double neg = -weight_dist(V->v[e], J->power, scale);
        if (neg > mx) mx = neg;
      }
      for (int64_t e = J->vp[r]; e < J->vp[r + 1]; e++)
        s += exp(-weight_dist(V->v[e], J->power, scale) - mx);
      for (int64_t e = J->vp[r]; e < J->vp[r + 1]; e++)
        V->v[e] = (float)(exp(-weight_dist(V->v[e], J->power, scale) - mx) / s);
    }
  }
  free(prow);
  free(pcol);
  free(psim);
  return rc;
}

/* Query expansion of my row r: the mean of V over rank[i, :k2] (V itself
 * when k2 = 1), appended to Q. acc: n zeroed doubles. Local. */
static int expand_row(jac_run *J, int64_t r) {
  int64_t i = J->row0 + r;
  entries *Q = &J->Q;
  if (J->k2 == 1) {
    int64_t len = J->gvp[i + 1] - J->gvp[i];
    SLR_TRY(entries_reserve(Q, len));
    memcpy(Q->i + Q->n, J->gvi + J->gvp[i], (size_t)len * sizeof(int32_t));
    memcpy(Q->v + Q->n, J->gvv + J->gvp[i], (size_t)len * sizeof(float));
    Q->n += len;
    return 0;
  }
  int64_t start = Q->n;
  for (int q = 0; q < J->k2; q++) {
    int64_t j = J->all[i * J->kw + q];
    for (int64_t e = J->gvp[j]; e < J->gvp[j + 1]; e++) {
      int32_t c = J->gvi[e];
      if (J->acc[c] == 0.0) {
        SLR_TRY(entries_reserve(Q, 1));
        Q->i[Q->n++] = c;
      }
      J->acc[c] += (double)J->gvv[e];
    }
  }
  sort_keys(Q->i + start, Q->n - start, J->sortbuf);
  for (int64_t e = start; e < Q->n; e++) {
    Q->v[e] = (float)(J->acc[Q->i[e]] / J->k2);
    J->acc[Q->i[e]] = 0.0;
  }
  return 0;
}

/* The inverted lists (column c -> the rows j with Q[j, c] > 0, j ascending)
 * of the query-expanded rows of all ranks, without holding the rows of all
 * ranks at once: the column counts are all-reduced, then each rank's rows
 * are broadcast in turn and appended, in rank and so in row order (the
 * lists are those an inversion of all rows at once gives). Collective. */
static int invert_rows(jac_run *J) {
  const int64_t n = J->n, nrows = J->nrows, mynnz = J->qp[nrows];
  int32_t *fill = calloc((size_t)n + 1, sizeof(int32_t)), *mylen = NULL, *len = NULL, *bi = NULL;
  int64_t *nnz_q = malloc((size_t)J->size * sizeof(int64_t));
  float *bv = NULL;
  int rc = fill && nnz_q ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "Jaccard: out of memory (column counts)");
  if (!rc && mynnz > INT32_MAX)
    rc = SLR_FAIL(SLR_ERR, "Jaccard: too many expanded entries on one rank (%lld)", (long long)mynnz);
  rc = slr_agree(J->comm, rc);
  if (rc) goto done;
  for (int64_t e = 0; e < mynnz; e++) fill[J->Q.i[e]]++;
  SLR_MPI(MPI_Allreduce(MPI_IN_PLACE, fill, (int)n, MPI_INT32_T, MPI_SUM, J->comm));
  /* an all-reduce: about twice the array through each rank */
  if (J->size > 1) sent_bytes += 2 * n * (int64_t)sizeof(int32_t);
  SLR_MPI(MPI_Allgather(&mynnz, 1, MPI_INT64_T, nnz_q, 1, MPI_INT64_T, J->comm));
  J->cp = malloc((size_t)(n + 1) * sizeof(int64_t));
  int64_t maxnnz = 0, maxrows = 0;
  for (int q = 0; q < J->size; q++) {
    if (q != J->rank && nnz_q[q] > maxnnz) maxnnz = nnz_q[q];
    if (q != J->rank && J->off[q + 1] - J->off[q] > maxrows) maxrows = J->off[q + 1] - J->off[q];
  }
  if (J->cp) {
    J->cp[0] = 0;
    for (int64_t c = 0; c < n; c++) {
      J->cp[c + 1] = J->cp[c] + fill[c];
      fill[c] = 0; /* now the entries filled in column c */
    }
  }
  const int64_t nnz = J->cp ? J->cp[n] : 0;
  J->ci = malloc((size_t)nnz * sizeof(int32_t) + 1);
  J->cv = malloc((size_t)nnz * sizeof(float) + 1);
  mylen = malloc((size_t)nrows * sizeof(int32_t) + 1);
  len = malloc((size_t)maxrows * sizeof(int32_t) + 1);
  bi = malloc((size_t)maxnnz * sizeof(int32_t) + 1);
  bv = malloc((size_t)maxnnz * sizeof(float) + 1);
  rc = J->cp && J->ci && J->cv && mylen && len && bi && bv
           ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "Jaccard: out of memory (inverted lists, %lld entries)",
                          (long long)nnz);
  rc = slr_agree(J->comm, rc);
  if (rc) goto done;
  for (int64_t r = 0; r < nrows; r++) mylen[r] = (int32_t)(J->qp[r + 1] - J->qp[r]);
  for (int q = 0; q < J->size; q++) {
    const int64_t rows_q = J->off[q + 1] - J->off[q];
    int32_t *ql = q == J->rank ? mylen : len, *qi = q == J->rank ? J->Q.i : bi;
    float *qv = q == J->rank ? J->Q.v : bv;
    if (J->size > 1) {
      SLR_MPI(MPI_Bcast(ql, (int)rows_q, MPI_INT32_T, q, J->comm));
      SLR_MPI(MPI_Bcast(qi, (int)nnz_q[q], MPI_INT32_T, q, J->comm));
      SLR_MPI(MPI_Bcast(qv, (int)nnz_q[q], MPI_FLOAT, q, J->comm));
    }
    if (q == J->rank)
      sent_bytes += (rows_q * (int64_t)sizeof(int32_t) +
                     nnz_q[q] * (int64_t)(sizeof(int32_t) + sizeof(float))) * (J->size - 1);
    for (int64_t r = 0, e = 0; r < rows_q; r++) {
      const int32_t j = (int32_t)(J->off[q] + r);
      for (int64_t end = e + ql[r]; e < end; e++) {
        const int32_t c = qi[e];
        const int64_t at = J->cp[c] + fill[c]++;
        J->ci[at] = j;
        J->cv[at] = qv[e];
      }
    }
  }
done:
  free(fill);
  free(nnz_q);
  free(mylen);
  free(len);
  free(bi);
  free(bv);
  return rc;
}

/* Share V, expand my rows; the inverted lists of the expanded rows of all
 * ranks (column c -> rows with Q[., c] > 0). Collective. */
static int share_and_invert(jac_run *J) {
  SLR_TRY(allgather_csr(J->comm, J->off, J->nrows, J->vp, J->V.i, J->V.v, &J->gvp, &J->gvi, &J->gvv));
  free(J->V.i);
  free(J->V.v);
  memset(&J->V, 0, sizeof J->V);
  J->acc = calloc((size_t)J->n + 1, sizeof(double));
  J->qp = malloc((size_t)(J->nrows + 1) * sizeof(int64_t));
  int rc = J->acc && J->qp ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "Jaccard: out of memory");
  rc = slr_agree(J->comm, rc);
  if (!rc) J->qp[0] = 0;
  for (int64_t r = 0; r < J->nrows && !rc; r++) {
    rc = expand_row(J, r);
    J->qp[r + 1] = J->Q.n;
  }
  SLR_TRY(slr_agree(J->comm, rc));
  free(J->gvp);
  free(J->gvi);
  free(J->gvv);
  free(J->all);
  J->gvp = NULL, J->gvi = NULL, J->gvv = NULL, J->all = NULL;
  return invert_rows(J);
}

/* The Jaccard distances of my rows, the threads over contiguous row
 * ranges, concatenated in row order into out. Collective. */
static int distances(jac_run *J, double max_dist, const unsigned char *rows, slr_sparse *out) {
  int64_t nrows = J->nrows;
  int64_t *jp = malloc((size_t)(nrows + 1) * sizeof(int64_t));
  int nth = omp_get_max_threads();
  if (nth > nrows) nth = nrows > 0 ? (int)nrows : 1;
  entries *part = calloc((size_t)nth, sizeof(entries)), res = {0};
  int *prc = calloc((size_t)nth, sizeof(int));
  char (*pmsg)[512] = calloc((size_t)nth, 512);
  int rc = jp && part && prc && pmsg ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "Jaccard: out of memory");
  if (!rc) {
#pragma omp parallel num_threads(nth)
    {
      int t = omp_get_thread_num();
      int64_t ra = nrows * t / nth, rb = nrows * (t + 1) / nth;
      prc[t] = jaccard_rows(ra, rb, J->n, J->qp, J->Q.i, J->Q.v, J->cp, J->ci, J->cv, max_dist,
                            rows, t == 0 ? J->acc : NULL, jp, &part[t]);
      if (prc[t]) snprintf(pmsg[t], 512, "%s", slr_error_text());
    }
    for (int t = 0; t < nth && !rc; t++)
      if (prc[t]) rc = SLR_FAIL(prc[t], "%s", pmsg[t]);
  }
  int64_t total = 0;
  for (int t = 0; t < nth && !rc; t++) total += part[t].n;
  if (!rc) rc = entries_reserve(&res, total);
  if (!rc) {
    jp[0] = 0;
    for (int64_t r = 0; r < nrows; r++) jp[r + 1] += jp[r];
    for (int t = 0; t < nth; t++) {
      if (part[t].n == 0) continue; /* (an empty part may hold no buffer) */
      memcpy(res.i + res.n, part[t].i, (size_t)part[t].n * sizeof(int32_t));
      memcpy(res.v + res.n, part[t].v, (size_t)part[t].n * sizeof(float));
      res.n += part[t].n;
    }
  }
  for (int t = 0; part && t < nth; t++) {
    free(part[t].i);
    free(part[t].v);
  }
  free(part);
  free(prc);
  free(pmsg);
  rc = slr_agree(J->comm, rc);
  if (rc) {
    free(jp);
    free(res.i);
    free(res.v);
    return rc;
  }
  *out = (slr_sparse){.n = J->n, .row0 = J->row0, .nrows = nrows, .indptr = jp,
                      .indices = res.i, .values = res.v};
  return 0;
}

int slr_jaccard_compute_ex(MPI_Comm comm, const float *x, int64_t d, const slr_knn *knn,
                           const slr_jaccard_opts *o, slr_sparse *out) {
  memset(out, 0, sizeof *out);
  sent_bytes = 0;
  jac_run J = {.comm = comm};
  int rc = jac_init(&J, knn, o);
  if (!rc) rc = gather_lists(&J, knn);
  if (!rc) rc = v_support(&J, knn);
  if (!rc) rc = v_weights(&J, x, d, o->scale);
  if (!rc) rc = share_and_invert(&J);
  if (!rc) rc = distances(&J, o->max_dist, o->rows, out);
  jac_run_free(&J);
  return rc;
}
