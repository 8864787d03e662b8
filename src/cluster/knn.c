/* cluster/knn: row normalisation and exact k nearest neighbours by inner
 * product, the N x N product formed tile by tile with sgemm and never
 * stored. Each rank owns a contiguous block of rows; the blocks pass around
 * a ring so that each pair of blocks is multiplied once, and the running
 * top-k lists of the visiting block's rows go back to their owner. */
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
                          int64_t d, int diag, int64_t tile, float *buf) {
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

int slr_knn_compute(MPI_Comm comm, const float *x, int64_t nrows, int64_t n, int64_t d,
                    int k, const slr_knn_opts *opts, slr_knn *out) {
  int rank, size;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  SLR_MPI(MPI_Comm_size(comm, &size));
  memset(out, 0, sizeof *out);
  if (k < 1 || k > n || d < 1)
    return slr_agree(comm, SLR_FAIL(SLR_ERR, "kNN: k = %d must be in 1..n = %lld (d = %lld)",
                                    k, (long long)n, (long long)d));
  int64_t *off = NULL;
  SLR_TRY(slr_block_layout(comm, nrows, n, &off));
  int64_t tile = opts && opts->tile > 0 ? opts->tile : 1024;
  int64_t maxrows = 0;
  for (int q = 0; q < size; q++)
    if (off[q + 1] - off[q] > maxrows) maxrows = off[q + 1] - off[q];
  int64_t row0 = off[rank];

  slr_topk own = {0}, part = {0};
  /* the visiting block: x itself at first, then one of two buffers (the
   * second only needed with 4 or more ranks) */
  float *buf = NULL, *bufa = NULL, *bufb = NULL, *pv = NULL, *rv = NULL;
  const float *cur = x;
  int32_t *pid = NULL, *rid = NULL;
  int want_min = opts && opts->farthest;
  float *pmn = NULL, *rmn = NULL;
  int rc = slr_topk_init(&own, nrows, k, want_min);
  if (!rc) rc = slr_topk_init(&part, maxrows, k, want_min);
  size_t blk = (size_t)(maxrows * d) * sizeof(float) + 1;
  size_t lst = (size_t)(maxrows * k) + 1;
  if (!rc) {
    buf = malloc((size_t)(tile * tile) * sizeof(float));
    bufa = size > 1 ? malloc(blk) : NULL;
    bufb = size / 2 > 1 ? malloc(blk) : NULL;
    pv = malloc(lst * sizeof(float));
    rv = malloc(lst * sizeof(float));
    pid = malloc(lst * sizeof(int32_t));
    rid = malloc(lst * sizeof(int32_t));
    pmn = malloc((size_t)(maxrows + nrows + 1) * sizeof(float));
    rmn = pmn ? pmn + maxrows : NULL;
    if (!buf || (size > 1 && !bufa) || (size / 2 > 1 && !bufb) || !pv || !rv || !pid || !rid ||
        !pmn)
      rc = SLR_FAIL(SLR_ERR_NOMEM, "kNN: out of memory (tile %lld, block %lld x %lld)",
                    (long long)tile, (long long)maxrows, (long long)d);
  }
  rc = slr_agree(comm, rc);
  if (rc) goto done;

  /* step 0: the own block against itself */
  block_product(x, nrows, (int32_t)row0, &own, 0, x, nrows, (int32_t)row0, NULL, 0, d, 1,
                tile, buf);

  int left = (rank - 1 + size) % size, right = (rank + 1) % size;
  for (int t = 1; t <= size / 2 && !rc; t++) {
    /* shift the visiting block one rank to the left: cur becomes block rank+t */
    int have = (rank + t - 1) % size, get = (rank + t) % size;
    float *nxt = cur == bufa ? bufb : bufa;
    MPI_Request req[2];
    int mrc = MPI_Irecv(nxt, (int)((off[get + 1] - off[get]) * d), MPI_FLOAT, right, 100 + t,
                        comm, &req[0]);
    if (mrc == MPI_SUCCESS)
      mrc = MPI_Isend(cur, (int)((off[have + 1] - off[have]) * d), MPI_FLOAT, left, 100 + t,
                      comm, &req[1]);
    if (mrc == MPI_SUCCESS) mrc = MPI_Waitall(2, req, MPI_STATUSES_IGNORE);
    if (mrc != MPI_SUCCESS) {
      rc = slr_error_mpi(mrc, "kNN ring shift", __FILE__, __LINE__);
      break;
    }
    cur = nxt;
    int s = get;
    int64_t ns = off[s + 1] - off[s];
    part.rows = ns;
    slr_topk_reset(&part);
    if (2 * t < size) {
      block_product(x, nrows, (int32_t)row0, &own, 0, cur, ns, (int32_t)off[s], &part, 0, d,
                    0, tile, buf);
    } else if (rank < size / 2) {
      /* the middle pair: my rows x the first half of the partner's rows */
      int64_t h = ns / 2;
      block_product(x, nrows, (int32_t)row0, &own, 0, cur, h, (int32_t)off[s], &part, 0, d,
                    0, tile, buf);
    } else {
      /* ... and the partner's rows x the second half of mine */
      int64_t h = nrows / 2;
      block_product(cur, ns, (int32_t)off[s], &part, 0, x + h * d, nrows - h,
                    (int32_t)(row0 + h), &own, h, d, 0, tile, buf);
    }
    /* send the partner's lists to their owner, merge the lists of my rows
     * formed by the rank t to my left */
    topk_pack(&part, pv, pid);
    int from = (rank - t + size) % size;
    int64_t nfrom = off[from + 1] - off[from];
    mrc = MPI_Sendrecv(pv, (int)(ns * k), MPI_FLOAT, s, 200 + t, rv, (int)(nrows * k),
                       MPI_FLOAT, from, 200 + t, comm, MPI_STATUS_IGNORE);
    if (mrc == MPI_SUCCESS)
      mrc = MPI_Sendrecv(pid, (int)(ns * k), MPI_INT32_T, s, 300 + t, rid, (int)(nrows * k),
                         MPI_INT32_T, from, 300 + t, comm, MPI_STATUS_IGNORE);
    if (mrc == MPI_SUCCESS && want_min) {
      memcpy(pmn, part.mn, (size_t)ns * sizeof(float));
      mrc = MPI_Sendrecv(pmn, (int)ns, MPI_FLOAT, s, 400 + t, rmn, (int)nrows, MPI_FLOAT, from,
                         400 + t, comm, MPI_STATUS_IGNORE);
    }
    if (mrc != MPI_SUCCESS) {
      rc = slr_error_mpi(mrc, "kNN list exchange", __FILE__, __LINE__);
      break;
    }
    (void)nfrom;
    topk_merge(&own, rv, rid);
    if (want_min)
      for (int64_t r = 0; r < nrows; r++) own.mn[r] = rmn[r] < own.mn[r] ? rmn[r] : own.mn[r];
  }
  rc = slr_agree(comm, rc);
  if (rc) goto done;

  /* sorted output, nearest first */
  out->n = n;
  out->row0 = row0;
  out->nrows = nrows;
  out->k = k;
  out->idx = malloc((size_t)(nrows * k) * sizeof(int32_t) + 1);
  out->sim = malloc((size_t)(nrows * k) * sizeof(float) + 1);
  if (want_min) {
    out->smin = malloc((size_t)nrows * sizeof(float) + 1);
    if (out->smin) memcpy(out->smin, own.mn, (size_t)nrows * sizeof(float));
  }
  slr_pair_f *tmp = malloc((size_t)k * sizeof(slr_pair_f));
  if (!out->idx || !out->sim || !tmp || (want_min && !out->smin)) {
    rc = SLR_FAIL(SLR_ERR_NOMEM, "kNN: out of memory (%lld x %d lists)", (long long)nrows, k);
  } else {
    for (int64_t r = 0; r < nrows; r++) {
      for (int q = 0; q < k; q++) {
        tmp[q].v = own.v[r * k + q];
        tmp[q].i = own.i[r * k + q];
      }
      qsort(tmp, (size_t)k, sizeof *tmp, cmp_best_first);
      for (int q = 0; q < k; q++) {
        out->idx[r * k + q] = tmp[q].i;
        out->sim[r * k + q] = tmp[q].v;
      }
    }
  }
  free(tmp);
  rc = slr_agree(comm, rc);
  if (rc) slr_knn_free(out);

done:
  slr_topk_free(&own);
  part.rows = maxrows;
  slr_topk_free(&part);
  free(buf);
  free(bufa);
  free(bufb);
  free(pv);
  free(rv);
  free(pid);
  free(rid);
  free(pmn);
  free(off);
  return rc;
}
