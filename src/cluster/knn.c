/* cluster/knn: row normalisation and exact k nearest neighbours by inner
 * product. Each rank owns a contiguous block of rows; the blocks pass around
 * a ring so that each pair of blocks meets once, and the running top-k lists
 * of the visiting block's rows go back to their owner. A pair of blocks is
 * either multiplied in full, tile by tile with sgemm, or pruned: a lower
 * bound of the distances from the principal axes (one sgemm of p + 1
 * columns) rules out most pairs, and only the others get their exact inner
 * product. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "neighbours.h"
#include "slr/cluster.h"

int slr_l2_normalize(float *x, int64_t nrows, int64_t d, int64_t row0) {
  for (int64_t i = 0; i < nrows; i++) {
    float *r = x + i * d;
    double s = 0.0;
    for (int64_t j = 0; j < d; j++) {
      if (!isfinite(r[j]))
        return SLR_FAIL(SLR_ERR_INPUT, "row %lld has a non-finite value (%g) in column %lld",
                        (long long)(row0 + i), (double)r[j], (long long)j);
      s += (double)r[j] * (double)r[j];
    }
    if (!(s > 0.0))
      return SLR_FAIL(SLR_ERR_INPUT, "row %lld is all zeros (cannot be L2-normalised)",
                      (long long)(row0 + i));
    double nrm = sqrt(s);
    for (int64_t j = 0; j < d; j++) r[j] = (float)((double)r[j] / nrm);
  }
  return 0;
}

void slr_knn_free(slr_knn *knn) {
  if (!knn) return;
  free(knn->idx);
  free(knn->sim);
  free(knn->smin);
  knn->idx = NULL;
  knn->sim = NULL;
  knn->smin = NULL;
}

/* ---- running top-k lists --------------------------------------------------- */

/* (v1, i1) is a worse neighbour than (v2, i2): smaller similarity, or equal
 * similarity and a higher index */
static inline int worse(float v1, int32_t i1, float v2, int32_t i2) {
  return v1 < v2 || (v1 == v2 && i1 > i2);
}

int slr_topk_init(slr_topk *t, int64_t rows, int k, int track_min) {
  t->rows = rows;
  t->k = k;
  t->mn = NULL;
  SLR_ALLOC(t->v, (size_t)(rows * k) * sizeof(float) + 1);
  SLR_ALLOC(t->i, (size_t)(rows * k) * sizeof(int32_t) + 1);
  SLR_ALLOC(t->cnt, (size_t)rows * sizeof(int32_t) + 1);
  SLR_ALLOC(t->thr, (size_t)rows * sizeof(float) + 1);
  if (track_min) SLR_ALLOC(t->mn, (size_t)rows * sizeof(float) + 1);
  slr_topk_reset(t);
  return 0;
}

void slr_topk_reset(slr_topk *t) {
  for (int64_t r = 0; r < t->rows; r++) {
    t->cnt[r] = 0;
    t->thr[r] = -INFINITY;
    if (t->mn) t->mn[r] = INFINITY;
  }
}

void slr_topk_free(slr_topk *t) {
  free(t->v);
  free(t->i);
  free(t->cnt);
  free(t->thr);
  free(t->mn);
  memset(t, 0, sizeof *t);
}

/* Each row's list is a heap with the worst kept neighbour on top. */
void slr_topk_push(slr_topk *t, int64_t r, float v, int32_t id) {
  int k = t->k;
  float *hv = t->v + r * k;
  int32_t *hi = t->i + r * k;
  int n = t->cnt[r];
  if (n < k) {
    int c = n;
    while (c > 0) {
      int p = (c - 1) / 2;
      if (!worse(v, id, hv[p], hi[p])) break;
      hv[c] = hv[p];
      hi[c] = hi[p];
      c = p;
    }
    hv[c] = v;
    hi[c] = id;
    t->cnt[r] = ++n;
    if (n == k) t->thr[r] = hv[0];
    return;
  }
  if (!worse(hv[0], hi[0], v, id)) return;
  int c = 0;
  for (;;) {
    int l = 2 * c + 1, w = c;
    float wv = v;
    int32_t wi = id;
    if (l < k && worse(hv[l], hi[l], wv, wi)) {
      w = l;
      wv = hv[l];
      wi = hi[l];
    }
    if (l + 1 < k && worse(hv[l + 1], hi[l + 1], wv, wi)) w = l + 1;
    if (w == c) break;
    hv[c] = hv[w];
    hi[c] = hi[w];
    c = w;
  }
  hv[c] = v;
  hi[c] = id;
  t->thr[r] = hv[0];
}

/* The smallest of mn and v[0..n). */
static inline float min_of(float mn, const float *v, int64_t n) {
  for (int64_t b = 0; b < n; b++) mn = v[b] < mn ? v[b] : mn;
  return mn;
}

/* Candidates of the tile s (m x nc, leading dimension ld) whose rows are
 * rows r0.. of `rows` with global indices g_row0.. and whose columns are
 * global indices g_col0..; when `cols` is not NULL each column also gets
 * the rows as candidates (rows c0.. of `cols`). */
static void tile_update(const float *s, int64_t m, int64_t nc, int64_t ld, slr_topk *rows,
                        int64_t r0, int32_t g_row0, slr_topk *cols, int64_t c0,
                        int32_t g_col0) {
  if (cols && omp_get_max_threads() == 1) {
    /* one thread: rows and columns in one sweep over the tile */
    const float *thr = cols->thr + c0;
    for (int64_t a = 0; a < m; a++) {
      const float *sa = s + a * ld;
      int64_t r = r0 + a;
      if (rows->mn) rows->mn[r] = min_of(rows->mn[r], sa, nc);
      if (cols->mn) {
        float *cm = cols->mn + c0;
        for (int64_t b = 0; b < nc; b++) cm[b] = sa[b] < cm[b] ? sa[b] : cm[b];
      }
      for (int64_t b0 = 0; b0 < nc; b0 += 16) {
        int64_t b1 = b0 + 16 < nc ? b0 + 16 : nc;
        float t = rows->thr[r];
        int hit = 0;
        for (int64_t b = b0; b < b1; b++) hit |= (sa[b] >= t) | (sa[b] >= thr[b]);
        if (!hit) continue;
        for (int64_t b = b0; b < b1; b++) {
          if (sa[b] >= rows->thr[r]) slr_topk_push(rows, r, sa[b], g_col0 + (int32_t)b);
          if (sa[b] >= thr[b]) slr_topk_push(cols, c0 + b, sa[b], g_row0 + (int32_t)a);
        }
      }
    }
    return;
  }
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t a = 0; a < m; a++) {
      const float *sa = s + a * ld;
      int64_t r = r0 + a;
      if (rows->mn) rows->mn[r] = min_of(rows->mn[r], sa, nc);
      /* most chunks of 16 hold no candidate: test them without branches */
      for (int64_t b0 = 0; b0 < nc; b0 += 16) {
        int64_t b1 = b0 + 16 < nc ? b0 + 16 : nc;
        float t = rows->thr[r];
        int hit = 0;
        for (int64_t b = b0; b < b1; b++) hit |= sa[b] >= t;
        if (!hit) continue;
        for (int64_t b = b0; b < b1; b++)
          if (sa[b] >= rows->thr[r]) slr_topk_push(rows, r, sa[b], g_col0 + (int32_t)b);
      }
    }
    if (cols) {
      /* each thread owns a range of columns and scans all rows */
#pragma omp for schedule(static)
      for (int64_t b0 = 0; b0 < nc; b0 += 64) {
        int64_t b1 = b0 + 64 < nc ? b0 + 64 : nc;
        const float *thr = cols->thr + c0;
        if (cols->mn) {
          float *mn = cols->mn + c0;
          for (int64_t a = 0; a < m; a++)
            for (int64_t b = b0; b < b1; b++) mn[b] = s[a * ld + b] < mn[b] ? s[a * ld + b] : mn[b];
        }
        for (int64_t a = 0; a < m; a++) {
          const float *sa = s + a * ld;
          int hit = 0;
          for (int64_t b = b0; b < b1; b++) hit |= sa[b] >= thr[b];
          if (!hit) continue;
          for (int64_t b = b0; b < b1; b++)
            if (sa[b] >= thr[b]) slr_topk_push(cols, c0 + b, sa[b], g_row0 + (int32_t)a);
        }
      }
    }
  }
}

/* The product of rows a (ma x d, global index ga) and rows b (mb x d,
 * global gb), tile by tile; a's rows update `ra` from local row ra0; when
 * `rb` is not NULL b's rows are updated too (from local row rb0). With
 * `diag` set a and b are the same block and only tiles on or above the
 * diagonal are formed. */
static void block_product(const float *a, int64_t ma, int32_t ga, slr_topk *ra, int64_t ra0,
                          const float *b, int64_t mb, int32_t gb, slr_topk *rb, int64_t rb0,
                          int64_t d, int diag, int64_t tile, float *buf, int64_t *pairs,
                          slr_progress *prog, int64_t unit) {
  for (int64_t i0 = 0; i0 < ma; i0 += tile) {
    int64_t mi = ma - i0 < tile ? ma - i0 : tile;
    for (int64_t j0 = diag ? i0 : 0; j0 < mb; j0 += tile) {
      int64_t mj = mb - j0 < tile ? mb - j0 : tile;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mi, (int)mj, (int)d, 1.0f,
                  a + i0 * d, (int)d, b + j0 * d, (int)d, 0.0f, buf, (int)mj);
      int on_diag = diag && i0 == j0;
      slr_topk *cols = diag ? (on_diag ? NULL : ra) : rb;
      int64_t c0 = diag ? j0 : rb0 + j0;
      tile_update(buf, mi, mj, mj, ra, ra0 + i0, ga + (int32_t)i0, cols, c0,
                  gb + (int32_t)j0);
      *pairs += on_diag ? mi * (mi + 1) / 2 : mi * mj;
      slr_progress_update(prog, *pairs / unit);
    }
  }
}

/* Merge the packed lists `v`/`id` (rows x k, -1 = empty) into t. */
static void topk_merge(slr_topk *t, const float *v, const int32_t *id) {
  int k = t->k;
  for (int64_t r = 0; r < t->rows; r++)
    for (int q = 0; q < k; q++)
      if (id[r * k + q] >= 0) slr_topk_push(t, r, v[r * k + q], id[r * k + q]);
}

/* Pack a list set into v/id (rows x k, -1 = empty). */
static void topk_pack(const slr_topk *t, float *v, int32_t *id) {
  int k = t->k;
  for (int64_t r = 0; r < t->rows; r++)
    for (int q = 0; q < k; q++) {
      int in = q < t->cnt[r];
      v[r * k + q] = in ? t->v[r * k + q] : 0.0f;
      id[r * k + q] = in ? t->i[r * k + q] : -1;
    }
}

static int cmp_best_first(const void *pa, const void *pb) {
  const slr_pair_f *a = pa, *b = pb;
  if (a->v != b->v) return a->v > b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

int slr_block_layout(MPI_Comm comm, int64_t nrows, int64_t n, int64_t **offsets) {
  int size;
  SLR_MPI(MPI_Comm_size(comm, &size));
  int64_t *off = malloc((size_t)(size + 1) * sizeof(int64_t));
  int64_t *cnt = malloc((size_t)size * sizeof(int64_t));
  int rc = (off && cnt) ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory (block layout)");
  rc = slr_agree(comm, rc);
  if (!rc) {
    int mrc = MPI_Allgather(&nrows, 1, MPI_INT64_T, cnt, 1, MPI_INT64_T, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgather", __FILE__, __LINE__);
  }
  if (!rc) {
    off[0] = 0;
    for (int q = 0; q < size; q++) off[q + 1] = off[q] + cnt[q];
    if (off[size] != n)
      rc = SLR_FAIL(SLR_ERR, "the ranks hold %lld rows in all, but n = %lld",
                    (long long)off[size], (long long)n);
    else if (n >= INT32_MAX)
      rc = SLR_FAIL(SLR_ERR, "n = %lld rows: at most 2^31 - 2 are supported", (long long)n);
  }
  free(cnt);
  if (rc) {
    free(off);
    return rc;
  }
  *offsets = off;
  return 0;
}

/* ---- one slr_knn_compute call ---------------------------------------------- */

/* The state of one call: the layout, the lists, the ring buffers and, when
 * pruning, the low-dimensional coordinates of all rows. */
typedef struct {
  MPI_Comm comm;
  int rank, size, k, want_min;
  int64_t n, d, nrows, row0, maxrows, tile;
  int64_t *off;
  const float *x;
  slr_topk own, part;
  float *buf, *bufa, *bufb, *pv, *rv, *pmn, *rmn;
  int32_t *pid, *rid;
  /* pruning: zt = [P (x - mean), |residual|] of every row (n x p1), zn =
   * |zt|^2, gthr = a lower bound of each row's k-th similarity (its owner's
   * list after step 0), delta = the rounding allowance */
  int prune, p1;
  float *zt, *zn, *gthr, *bc;
  float delta;
  int64_t pairs, scored, bytes;
  double t_basis, t_seed, t_pilot, pilot;
  slr_progress prog; /* rank 0's share of the pairs, counted in units of prog_unit */
  int64_t prog_unit;
} knn_run;

static int run_alloc(knn_run *R) {
  int64_t blk = R->maxrows * R->d, lst = R->maxrows * R->k + 1;
  int rc = slr_topk_init(&R->own, R->nrows, R->k, R->want_min);
  if (!rc) rc = slr_topk_init(&R->part, R->maxrows, R->k, R->want_min);
  if (rc) return rc;
  R->buf = malloc((size_t)(R->tile * R->tile) * sizeof(float));
  R->bc = malloc((size_t)R->tile * sizeof(float));
  R->bufa = R->size > 1 ? malloc((size_t)blk * sizeof(float) + 1) : NULL;
  R->bufb = R->size / 2 > 1 ? malloc((size_t)blk * sizeof(float) + 1) : NULL;
  R->pv = malloc((size_t)lst * sizeof(float));
  R->rv = malloc((size_t)lst * sizeof(float));
  R->pid = malloc((size_t)lst * sizeof(int32_t));
  R->rid = malloc((size_t)lst * sizeof(int32_t));
  R->pmn = malloc((size_t)(R->maxrows + R->nrows + 1) * sizeof(float));
  R->rmn = R->pmn ? R->pmn + R->maxrows : NULL;
  if (!R->buf || !R->bc || (R->size > 1 && !R->bufa) || (R->size / 2 > 1 && !R->bufb) ||
      !R->pv || !R->rv || !R->pid || !R->rid || !R->pmn)
    return SLR_FAIL(SLR_ERR_NOMEM, "kNN: out of memory (tile %lld, block %lld x %lld)",
                    (long long)R->tile, (long long)R->maxrows, (long long)R->d);
  return 0;
}

static void run_free(knn_run *R) {
  slr_topk_free(&R->own);
  R->part.rows = R->maxrows;
  slr_topk_free(&R->part);
  free(R->buf);
  free(R->bc);
  free(R->bufa);
  free(R->bufb);
  free(R->pv);
  free(R->rv);
  free(R->pid);
  free(R->rid);
  free(R->pmn);
  free(R->off);
  free(R->zt);
  free(R->zn);
  free(R->gthr);
}

/* ---- pruning by a lower bound from the principal axes ----------------------- */

/* For rows x, y, an orthonormal basis P (p x d) and the mean m,
 *   |x - y|^2 = |P(x - y)|^2 + |e_x - e_y|^2 >= |P(x - y)|^2 + (|e_x| - |e_y|)^2,
 * e = (x - m) - P^T P (x - m) the residual. With zt = [P(x - m), |e_x|] the
 * bound is |zt_x|^2 + |zt_y|^2 - 2 zt_x . zt_y, one sgemm of p + 1 columns.
 * A pair is skipped when its bound exceeds 2 - 2 t + delta for both rows, t
 * a proven lower bound of the row's k-th similarity; the other pairs get
 * their exact inner product. */

/* The pairs of rows this rank forms (its block with itself, then each ring
 * step's pair of blocks; the pruned product counts whole tiles on the
 * diagonal): the total of its progress line. Local. */
static int64_t rank_pairs(const knn_run *R) {
  int64_t nr = R->nrows, total = R->prune ? nr * nr : nr * (nr + 1) / 2;
  for (int t = 1; t <= R->size / 2; t++) {
    int s = (R->rank + t) % R->size;
    int64_t ns = R->off[s + 1] - R->off[s];
    if (2 * t < R->size)
      total += nr * ns;
    else if (R->rank < R->size / 2)
      total += nr * (ns / 2);
    else
      total += ns * (nr - nr / 2);
  }
  return total;
}

/* The squared-distance limit of a row whose k-th similarity is at least t
 * (+inf while its list is not full). */
static inline float limit_of(float t, float delta) {
  return t == -INFINITY ? INFINITY : 2.0f - 2.0f * t + delta;
}

/* Gram-Schmidt twice in double: the float basis made orthonormal to double
 * precision before rounding. Local. */
static void orthonormalize(float *basis, int p, int64_t d, double *tmp) {
  for (int q = 0; q < p; q++) {
    double *v = tmp + q * d;
    for (int64_t j = 0; j < d; j++) v[j] = basis[q * d + j];
    for (int pass = 0; pass < 2; pass++)
      for (int a = 0; a < q; a++) {
        const double *u = tmp + a * d;
        double c = 0.0;
        for (int64_t j = 0; j < d; j++) c += u[j] * v[j];
        for (int64_t j = 0; j < d; j++) v[j] -= c * u[j];
      }
    double nrm = 0.0;
    for (int64_t j = 0; j < d; j++) nrm += v[j] * v[j];
    nrm = sqrt(nrm);
    for (int64_t j = 0; j < d; j++) v[j] /= nrm;
  }
  for (int64_t e = 0; e < p * d; e++) basis[e] = (float)tmp[e];
}

/* zt of this rank's rows into out (nrows x (p + 1)), in chunks of 256 rows:
 * z = (x - m) P^T, e = (x - m) - z P. Local. */
static int project_rows(const float *x, int64_t nrows, int64_t d, const float *mean,
                        const float *basis, int p, float *out) {
  int64_t ch = 256, p1 = p + 1;
  float *xc = malloc((size_t)(ch * d) * sizeof(float)), *z = malloc((size_t)(ch * p) * sizeof(float));
  if (!xc || !z) {
    free(xc);
    free(z);
    return SLR_FAIL(SLR_ERR_NOMEM, "kNN: out of memory (projection)");
  }
  for (int64_t r0 = 0; r0 < nrows; r0 += ch) {
    int64_t m = nrows - r0 < ch ? nrows - r0 : ch;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < d; j++) xc[i * d + j] = x[(r0 + i) * d + j] - mean[j];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, p, (int)d, 1.0f, xc, (int)d,
                basis, (int)d, 0.0f, z, p);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)d, p, -1.0f, z, p,
                basis, (int)d, 1.0f, xc, (int)d);
    for (int64_t i = 0; i < m; i++) {
      double e = 0.0;
      for (int64_t j = 0; j < d; j++) e += (double)xc[i * d + j] * xc[i * d + j];
      memcpy(out + (r0 + i) * p1, z + i * p, (size_t)p * sizeof(float));
      out[(r0 + i) * p1 + p] = (float)sqrt(e);
    }
  }
  free(xc);
  free(z);
  return 0;
}

/* The basis on the grid, zt of all rows (all-gathered) and their norms.
 * Collective on R->comm. */
static int prune_prepare(knn_run *R, int p) {
  double t0 = slr_now();
  int64_t d = R->d;
  R->p1 = p + 1;
  float *mean = malloc((size_t)d * sizeof(float)), *basis = malloc((size_t)(p * d) * sizeof(float));
  double *tmp = malloc((size_t)(p * d) * sizeof(double));
  float *mine = malloc((size_t)(R->nrows * R->p1) * sizeof(float) + 1);
  R->zt = malloc((size_t)(R->n * R->p1) * sizeof(float));
  R->zn = malloc((size_t)R->n * sizeof(float));
  R->gthr = malloc((size_t)R->n * sizeof(float));
  int rc = mean && basis && tmp && mine && R->zt && R->zn && R->gthr
               ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "kNN: out of memory (%lld x %d coordinates)",
                              (long long)R->n, R->p1);
  rc = slr_agree(R->comm, rc);
  slr_pca_opts po = {.solver = SLR_PCA_PSSYEVD, .max_rows = 1024};
  if (!rc) rc = slr_pca_basis(R->comm, R->x, R->nrows, d, p, &po, mean, basis, NULL, NULL);
  if (!rc) {
    orthonormalize(basis, p, d, tmp);
    rc = slr_agree(R->comm, project_rows(R->x, R->nrows, d, mean, basis, p, mine));
  }
  int *cnt = malloc((size_t)R->size * sizeof(int)), *dsp = malloc((size_t)R->size * sizeof(int));
  if (!rc && cnt && dsp) {
    for (int q = 0; q < R->size; q++) {
      cnt[q] = (int)((R->off[q + 1] - R->off[q]) * R->p1);
      dsp[q] = (int)(R->off[q] * R->p1);
    }
    int mrc = MPI_Allgatherv(mine, cnt[R->rank], MPI_FLOAT, R->zt, cnt, dsp, MPI_FLOAT, R->comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "kNN coordinates", __FILE__, __LINE__);
    R->bytes += (int64_t)cnt[R->rank] * (R->size - 1) * (int64_t)sizeof(float);
  } else if (!rc) {
    rc = SLR_FAIL(SLR_ERR_NOMEM, "kNN: out of memory");
  }
  for (int64_t i = 0; !rc && i < R->n; i++) {
    double s = 0.0;
    for (int c = 0; c < R->p1; c++) s += (double)R->zt[i * R->p1 + c] * R->zt[i * R->p1 + c];
    R->zn[i] = (float)s;
    R->gthr[i] = -INFINITY;
  }
  free(mean);
  free(basis);
  free(tmp);
  free(mine);
  free(cnt);
  free(dsp);
  R->t_basis = slr_now() - t0;
  return slr_agree(R->comm, rc);
}

/* The low-dimensional products of rows ga.. (m) and gb.. (nc) into s,
 * turned into minus the distance bound. Local. */
static void bound_tile(const knn_run *R, int64_t ga, int64_t m, int64_t gb, int64_t nc,
                       float *s) {
  int p1 = R->p1;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nc, p1, 1.0f,
              R->zt + ga * p1, p1, R->zt + gb * p1, p1, 0.0f, s, (int)nc);
  for (int64_t a = 0; a < m; a++) {
    float na = R->zn[ga + a];
    float *sa = s + a * nc;
    const float *nb = R->zn + gb;
    for (int64_t b = 0; b < nc; b++) sa[b] = 2.0f * sa[b] - na - nb[b];
  }
}

/* Seeds of step 0: each own row's k best candidates by the bound within the
 * own block, scored exactly; the smallest of the k exact similarities is a
 * lower bound of the row's k-th similarity (gthr). Local. */
static int seed_thresholds(knn_run *R) {
  slr_topk seed = {0};
  SLR_TRY(slr_topk_init(&seed, R->nrows, R->k, 0));
  int64_t tile = R->tile, nr = R->nrows, d = R->d;
  for (int64_t i0 = 0; i0 < nr; i0 += tile) {
    int64_t mi = nr - i0 < tile ? nr - i0 : tile;
    for (int64_t j0 = i0; j0 < nr; j0 += tile) {
      int64_t mj = nr - j0 < tile ? nr - j0 : tile;
      bound_tile(R, R->row0 + i0, mi, R->row0 + j0, mj, R->buf);
      tile_update(R->buf, mi, mj, mj, &seed, i0, (int32_t)(R->row0 + i0),
                  i0 == j0 ? NULL : &seed, j0, (int32_t)(R->row0 + j0));
    }
  }
  for (int64_t r = 0; r < nr; r++) {
    if (seed.cnt[r] < R->k) continue;
    float t = INFINITY;
    for (int q = 0; q < R->k; q++) {
      const float *y = R->x + (seed.i[r * R->k + q] - R->row0) * d;
      float v = cblas_sdot((int)d, R->x + r * d, 1, y, 1);
      t = v < t ? v : t;
    }
    R->gthr[R->row0 + r] = t;
  }
  slr_topk_free(&seed);
  return 0;
}

/* The fraction of pairs that would be scored exactly, estimated on up to
 * 256 own rows against the own block with the seed bounds (the same on
 * every rank). Collective on R->comm. */
static int survivor_fraction(knn_run *R, double *frac) {
  int64_t ns = R->nrows < 256 ? R->nrows : 256, tile = R->tile;
  int64_t cnt[2] = {0, 0};
  for (int64_t q = 0; q < ns; q++) {
    int64_t r = q * R->nrows / ns, g = R->row0 + r;
    float la = limit_of(R->gthr[g], R->delta);
    for (int64_t j0 = 0; j0 < R->nrows; j0 += tile) {
      int64_t mj = R->nrows - j0 < tile ? R->nrows - j0 : tile;
      bound_tile(R, g, 1, R->row0 + j0, mj, R->buf);
      for (int64_t b = 0; b < mj; b++) {
        float lb = limit_of(R->gthr[R->row0 + j0 + b], R->delta);
        cnt[0] += -R->buf[b] <= (la > lb ? la : lb);
      }
      cnt[1] += mj;
    }
  }
  SLR_MPI(MPI_Allreduce(MPI_IN_PLACE, cnt, 2, MPI_INT64_T, MPI_SUM, R->comm));
  *frac = cnt[1] > 0 ? (double)cnt[0] / (double)cnt[1] : 1.0;
  return 0;
}

/* The current limit of row r of list t (global row g): its own list's
 * threshold or gthr, whichever is higher. */
static inline float row_limit(const knn_run *R, const slr_topk *t, int64_t r, int64_t g) {
  float a = t->thr[r], b = R->gthr[g];
  return limit_of(a > b ? a : b, R->delta);
}

/* One tile of the pruned product: bounds in s (minus the bound, m x nc),
 * rows of a from local row r0 (list `rows`, global g_row0, full rows xa),
 * columns from c0 (list `cols` or NULL, global g_col0, full rows xb).
 * Local. */
static void prune_tile(knn_run *R, const float *s, int64_t m, int64_t nc, const float *xa,
                       slr_topk *rows, int64_t r0, int64_t g_row0, const float *xb,
                       slr_topk *cols, int64_t c0, int64_t g_col0) {
  int64_t d = R->d, scored = 0;
  float *lc = R->bc;
  for (int64_t b = 0; b < nc; b++) lc[b] = cols ? row_limit(R, cols, c0 + b, g_col0 + b) : -1.0f;
  for (int64_t a = 0; a < m; a++) {
    const float *sa = s + a * nc;
    int64_t r = r0 + a;
    float la = row_limit(R, rows, r, g_row0 + a);
    for (int64_t b0 = 0; b0 < nc; b0 += 16) {
      int64_t b1 = b0 + 16 < nc ? b0 + 16 : nc;
      int hit = 0;
      for (int64_t b = b0; b < b1; b++) hit |= (-sa[b] <= la) | (-sa[b] <= lc[b]);
      if (!hit) continue;
      for (int64_t b = b0; b < b1; b++) {
        if (!(-sa[b] <= la || -sa[b] <= lc[b])) continue;
        float v = cblas_sdot((int)d, xa + a * d, 1, xb + b * d, 1);
        scored++;
        if (v >= rows->thr[r]) {
          slr_topk_push(rows, r, v, (int32_t)(g_col0 + b));
          la = row_limit(R, rows, r, g_row0 + a);
        }
        if (cols && v >= cols->thr[c0 + b]) {
          slr_topk_push(cols, c0 + b, v, (int32_t)(g_row0 + a));
          lc[b] = row_limit(R, cols, c0 + b, g_col0 + b);
        }
      }
    }
  }
  R->pairs += m * nc;
  R->scored += scored;
  slr_progress_update(&R->prog, R->pairs / R->prog_unit);
}

/* The pair of row blocks a (ma rows, global ga, list ra from local row ra0)
 * and b (likewise; rb NULL: a's rows only), full product or pruned; with
 * `diag` a and b are the same block (tiles on and above the diagonal).
 * Local. */
static void pair_product(knn_run *R, const float *a, int64_t ma, int64_t ga, slr_topk *ra,
                         int64_t ra0, const float *b, int64_t mb, int64_t gb, slr_topk *rb,
                         int64_t rb0, int diag) {
  int64_t tile = R->tile, d = R->d;
  if (!R->prune) {
    R->scored += diag ? ma * (ma + 1) / 2 : ma * mb;
    block_product(a, ma, (int32_t)ga, ra, ra0, b, mb, (int32_t)gb, rb, rb0, d, diag, tile,
                  R->buf, &R->pairs, &R->prog, R->prog_unit);
    return;
  }
  for (int64_t i0 = 0; i0 < ma; i0 += tile) {
    int64_t mi = ma - i0 < tile ? ma - i0 : tile;
    for (int64_t j0 = diag ? i0 : 0; j0 < mb; j0 += tile) {
      int64_t mj = mb - j0 < tile ? mb - j0 : tile;
      bound_tile(R, ga + i0, mi, gb + j0, mj, R->buf);
      int on_diag = diag && i0 == j0;
      slr_topk *cols = diag ? (on_diag ? NULL : ra) : rb;
      int64_t c0 = diag ? j0 : rb0 + j0;
      prune_tile(R, R->buf, mi, mj, a + i0 * d, ra, ra0 + i0, ga + i0, b + j0 * d, cols, c0,
                 gb + j0);
    }
  }
}

/* The pilot: the fraction of pairs that would be scored, estimated on the
 * first 512 rows of each rank alone (their own axes from slr_pca_basis on
 * MPI_COMM_SELF, their exact products, each row's k'-th similarity among
 * them as the bound, k' = 1 + (k - 1) (m - 1) / (n - 1) rounded up: the row
 * itself and its share of the others): a few hundred
 * milliseconds, so that features with nothing to prune cost little.
 * Collective on R->comm. */
static int pilot_fraction(knn_run *R, int p, double *frac) {
  int64_t m = R->nrows < 512 ? R->nrows : 512, d = R->d, p1 = p + 1, cnt[2] = {0, 0};
  /* the row itself, then the others scaled to the pilot's size (rounded up:
   * a bound no tighter than the real one) */
  int kp = R->k == 1 || m < 2 ? 1 : 1 + (int)(((R->k - 1) * (m - 1) + R->n - 2) / (R->n - 1));
  kp = kp > m ? (int)m : kp;
  float *mean = malloc((size_t)d * sizeof(float)), *basis = malloc((size_t)(p * d) * sizeof(float));
  float *zt = malloc((size_t)(m * p1 + 1) * sizeof(float)), *s = malloc((size_t)(m * m + 1) * sizeof(float));
  double *tmp = malloc((size_t)(p * d) * sizeof(double));
  float *lim = malloc((size_t)(m + 1) * sizeof(float));
  slr_topk t = {0};
  int rc = mean && basis && zt && s && tmp && lim ? slr_topk_init(&t, m, kp, 0)
                                          : SLR_FAIL(SLR_ERR_NOMEM, "kNN: out of memory (pilot)");
  int ok = !rc && m > p;
  slr_pca_opts po = {.solver = SLR_PCA_PSSYEVD};
  if (ok) rc = slr_pca_basis(MPI_COMM_SELF, R->x, m, d, p, &po, mean, basis, NULL, NULL);
  if (ok && !rc) {
    orthonormalize(basis, p, d, tmp);
    rc = project_rows(R->x, m, d, mean, basis, p, zt);
  }
  if (ok && !rc) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)m, (int)d, 1.0f, R->x,
                (int)d, R->x, (int)d, 0.0f, s, (int)m);
    tile_update(s, m, m, m, &t, 0, 0, NULL, 0, 0);
    for (int64_t i = 0; i < m; i++) lim[i] = limit_of(t.cnt[i] == kp ? t.thr[i] : -INFINITY, R->delta);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < m; j++) {
        double lb = 0.0;
        for (int64_t c = 0; c < p1; c++) {
          double e = (double)zt[i * p1 + c] - zt[j * p1 + c];
          lb += e * e;
        }
        cnt[0] += lb <= (lim[i] > lim[j] ? lim[i] : lim[j]);
      }
    cnt[1] = m * m;
  }
  free(mean);
  free(basis);
  free(zt);
  free(s);
  free(tmp);
  free(lim);
  slr_topk_free(&t);
  rc = slr_agree(R->comm, rc);
  if (rc) return rc;
  SLR_MPI(MPI_Allreduce(MPI_IN_PLACE, cnt, 2, MPI_INT64_T, MPI_SUM, R->comm));
  *frac = cnt[1] > 0 ? (double)cnt[0] / (double)cnt[1] : 1.0;
  return 0;
}

/* Step 0 of the pruned product: seeds, the survivor estimate (a fraction
 * above max_frac falls back to the full product, the same on every rank),
 * the own block, then every row's bound shared. Collective on R->comm. */
static int prune_step0(knn_run *R, double max_frac, double *frac) {
  double t0 = slr_now();
  int rc = slr_agree(R->comm, seed_thresholds(R));
  if (!rc) rc = survivor_fraction(R, frac);
  R->t_seed = slr_now() - t0;
  if (rc) return rc;
  if (*frac > max_frac) {
    R->prune = 0;
    R->prog.total = rank_pairs(R) / R->prog_unit;
  }
  pair_product(R, R->x, R->nrows, R->row0, &R->own, 0, R->x, R->nrows, R->row0, NULL, 0, 1);
  if (!R->prune) return 0;
  for (int64_t r = 0; r < R->nrows; r++)
    if (R->own.thr[r] > R->gthr[R->row0 + r]) R->gthr[R->row0 + r] = R->own.thr[r];
  int *cnt = malloc((size_t)R->size * sizeof(int)), *dsp = malloc((size_t)R->size * sizeof(int));
  rc = cnt && dsp ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "kNN: out of memory");
  rc = slr_agree(R->comm, rc);
  if (!rc) {
    for (int q = 0; q < R->size; q++) {
      cnt[q] = (int)(R->off[q + 1] - R->off[q]);
      dsp[q] = (int)R->off[q];
    }
    int mrc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, R->gthr, cnt, dsp, MPI_FLOAT, R->comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "kNN bounds", __FILE__, __LINE__);
    R->bytes += R->nrows * (R->size - 1) * (int64_t)sizeof(float);
  }
  free(cnt);
  free(dsp);
  return slr_agree(R->comm, rc);
}

/* ---- the ring ---------------------------------------------------------------- */

/* Shift the visiting block one rank to the left: *cur becomes block rank +
 * t. Collective on R->comm. */
static int ring_shift(knn_run *R, int t, const float **cur) {
  int have = (R->rank + t - 1) % R->size, get = (R->rank + t) % R->size;
  int left = (R->rank - 1 + R->size) % R->size, right = (R->rank + 1) % R->size;
  float *nxt = *cur == R->bufa ? R->bufb : R->bufa;
  int64_t nsend = (R->off[have + 1] - R->off[have]) * R->d;
  MPI_Request req[2];
  int mrc = MPI_Irecv(nxt, (int)((R->off[get + 1] - R->off[get]) * R->d), MPI_FLOAT, right,
                      100 + t, R->comm, &req[0]);
  if (mrc == MPI_SUCCESS)
    mrc = MPI_Isend(*cur, (int)nsend, MPI_FLOAT, left, 100 + t, R->comm, &req[1]);
  if (mrc == MPI_SUCCESS) mrc = MPI_Waitall(2, req, MPI_STATUSES_IGNORE);
  if (mrc != MPI_SUCCESS) return slr_error_mpi(mrc, "kNN ring shift", __FILE__, __LINE__);
  R->bytes += nsend * (int64_t)sizeof(float);
  *cur = nxt;
  return 0;
}

/* Send the visiting rows' lists (block s, ns rows) to their owner, merge
 * the lists of my rows formed by the rank t to my left. Collective on
 * R->comm. */
static int exchange_lists(knn_run *R, int t, int s, int64_t ns) {
  int k = R->k, from = (R->rank - t + R->size) % R->size;
  topk_pack(&R->part, R->pv, R->pid);
  int mrc = MPI_Sendrecv(R->pv, (int)(ns * k), MPI_FLOAT, s, 200 + t, R->rv,
                         (int)(R->nrows * k), MPI_FLOAT, from, 200 + t, R->comm,
                         MPI_STATUS_IGNORE);
  if (mrc == MPI_SUCCESS)
    mrc = MPI_Sendrecv(R->pid, (int)(ns * k), MPI_INT32_T, s, 300 + t, R->rid,
                       (int)(R->nrows * k), MPI_INT32_T, from, 300 + t, R->comm,
                       MPI_STATUS_IGNORE);
  R->bytes += ns * k * (int64_t)(sizeof(float) + sizeof(int32_t));
  if (mrc == MPI_SUCCESS && R->want_min) {
    memcpy(R->pmn, R->part.mn, (size_t)ns * sizeof(float));
    mrc = MPI_Sendrecv(R->pmn, (int)ns, MPI_FLOAT, s, 400 + t, R->rmn, (int)R->nrows,
                       MPI_FLOAT, from, 400 + t, R->comm, MPI_STATUS_IGNORE);
    R->bytes += ns * (int64_t)sizeof(float);
  }
  if (mrc != MPI_SUCCESS) return slr_error_mpi(mrc, "kNN list exchange", __FILE__, __LINE__);
  topk_merge(&R->own, R->rv, R->rid);
  if (R->want_min)
    for (int64_t r = 0; r < R->nrows; r++)
      R->own.mn[r] = R->rmn[r] < R->own.mn[r] ? R->rmn[r] : R->own.mn[r];
  return 0;
}

/* Step t >= 1: my rows against block rank + t (for even p the middle pair
 * split in half between its two ranks). Collective on R->comm. */
static int ring_step(knn_run *R, int t, const float **cur) {
  SLR_TRY(ring_shift(R, t, cur));
  int s = (R->rank + t) % R->size;
  int64_t ns = R->off[s + 1] - R->off[s], gs = R->off[s], nr = R->nrows, d = R->d;
  R->part.rows = ns;
  slr_topk_reset(&R->part);
  if (2 * t < R->size) {
    pair_product(R, R->x, nr, R->row0, &R->own, 0, *cur, ns, gs, &R->part, 0, 0);
  } else if (R->rank < R->size / 2) {
    /* the middle pair: my rows x the first half of the partner's rows */
    pair_product(R, R->x, nr, R->row0, &R->own, 0, *cur, ns / 2, gs, &R->part, 0, 0);
  } else {
    /* ... and the partner's rows x the second half of mine */
    int64_t h = nr / 2;
    pair_product(R, *cur, ns, gs, &R->part, 0, R->x + h * d, nr - h, R->row0 + h, &R->own, h,
                 0);
  }
  return exchange_lists(R, t, s, ns);
}

/* The lists sorted nearest first into out. Local. */
static int knn_output(knn_run *R, slr_knn *out) {
  int k = R->k;
  int64_t nr = R->nrows;
  out->n = R->n;
  out->row0 = R->row0;
  out->nrows = nr;
  out->k = k;
  out->idx = malloc((size_t)(nr * k) * sizeof(int32_t) + 1);
  out->sim = malloc((size_t)(nr * k) * sizeof(float) + 1);
  if (R->want_min) {
    out->smin = malloc((size_t)nr * sizeof(float) + 1);
    if (out->smin) memcpy(out->smin, R->own.mn, (size_t)nr * sizeof(float));
  }
  slr_pair_f *tmp = malloc((size_t)k * sizeof(slr_pair_f));
  if (!out->idx || !out->sim || !tmp || (R->want_min && !out->smin)) {
    free(tmp);
    return SLR_FAIL(SLR_ERR_NOMEM, "kNN: out of memory (%lld x %d lists)", (long long)nr, k);
  }
  for (int64_t r = 0; r < nr; r++) {
    for (int q = 0; q < k; q++) {
      tmp[q].v = R->own.v[r * k + q];
      tmp[q].i = R->own.i[r * k + q];
    }
    qsort(tmp, (size_t)k, sizeof *tmp, cmp_best_first);
    for (int q = 0; q < k; q++) {
      out->idx[r * k + q] = tmp[q].i;
      out->sim[r * k + q] = tmp[q].v;
    }
  }
  free(tmp);
  return 0;
}

/* Whether to prune (the same on every rank): asked for, or in the automatic
 * mode with enough rows and dimensions; never with `farthest`. */
static int want_prune(const slr_knn_opts *o, int64_t n, int64_t d, int p) {
  slr_knn_method m = o ? o->method : SLR_KNN_AUTO;
  if ((o && o->farthest) || m == SLR_KNN_FULL || p < 1 || p >= d) return 0;
  if (m == SLR_KNN_PRUNED) return 1;
  return n >= 4096 && d >= 1024;
}

int slr_knn_compute(MPI_Comm comm, const float *x, int64_t nrows, int64_t n, int64_t d,
                    int k, const slr_knn_opts *opts, slr_knn *out) {
  memset(out, 0, sizeof *out);
  if (k < 1 || k > n || d < 1)
    return slr_agree(comm, SLR_FAIL(SLR_ERR, "kNN: k = %d must be in 1..n = %lld (d = %lld)",
                                    k, (long long)n, (long long)d));
  knn_run R = {.comm = comm, .k = k, .n = n, .d = d, .nrows = nrows, .x = x, .prog_unit = 1};
  SLR_MPI(MPI_Comm_rank(comm, &R.rank));
  SLR_MPI(MPI_Comm_size(comm, &R.size));
  SLR_TRY(slr_block_layout(comm, nrows, n, &R.off));
  R.tile = opts && opts->tile > 0 ? opts->tile : 1024;
  R.want_min = opts && opts->farthest;
  for (int q = 0; q < R.size; q++)
    if (R.off[q + 1] - R.off[q] > R.maxrows) R.maxrows = R.off[q + 1] - R.off[q];
  R.row0 = R.off[R.rank];
  int p = opts && opts->dims > 0 ? opts->dims : (d >= 1024 ? 64 : 32);
  if (p >= d) p = (int)(d - 1);
  R.prune = want_prune(opts, n, d, p);
  /* rounding allowance: unit rows, float products of length d (see the
   * header): 16 d eps covers the exact products, the bound and the norms */
  int rc = slr_agree(comm, run_alloc(&R));
  double frac = 1.0, max_frac = opts && opts->max_scored > 0 ? opts->max_scored : 0.05;
  R.delta = 16.0f * (float)d * FLT_EPSILON + 1e-6f;
  if (!rc && R.prune) {
    double t0 = slr_now();
    rc = pilot_fraction(&R, p, &R.pilot);
    R.t_pilot = slr_now() - t0;
    if (!rc && R.pilot > max_frac) R.prune = 0;
  }
  if (!rc && R.prune) rc = prune_prepare(&R, p);
  /* rank 0's share stands for every rank's (the blocks are balanced); a
   * line is printed only when the product runs longer than the interval
   * (SLR_PROGRESS_INTERVAL, default 10 s), in millions of pairs from 10^9 */
  int64_t total = rank_pairs(&R);
  R.prog_unit = total >= 1000000000 ? 1000000 : 1;
  slr_progress_begin(&R.prog, "kNN (rank 0's pairs)", total / R.prog_unit,
                     R.prog_unit > 1 ? "M pairs" : "pairs", 0);
  if (!rc && R.prune)
    rc = prune_step0(&R, max_frac, &frac);
  else if (!rc)
    pair_product(&R, x, nrows, R.row0, &R.own, 0, x, nrows, R.row0, NULL, 0, 1);
  const float *cur = x;
  for (int t = 1; t <= R.size / 2 && !rc; t++) rc = ring_step(&R, t, &cur);
  if (!rc && R.prog.t_last_print > R.prog.t_start) slr_progress_end(&R.prog);
  rc = slr_agree(comm, rc);
  if (!rc) rc = slr_agree(comm, knn_output(&R, out));
  if (rc) slr_knn_free(out);
  out->stats.pruned = R.prune;
  out->stats.est_scored = R.zt ? frac : 0.0;
  out->stats.pairs = R.pairs;
  out->stats.scored = R.scored;
  out->stats.bytes_sent = R.bytes;
  out->stats.t_basis = R.t_basis;
  out->stats.t_seed = R.t_seed;
  out->stats.t_pilot = R.t_pilot;
  out->stats.est_pilot = R.pilot;
  run_free(&R);
  return rc;
}
