/* Soft labels, the one formula of the SLR step (s = alpha e_cur + (1 -
 * alpha) P[prev]), used by slr_refine and by the soft targets that
 * training takes from them: the soft label over the current clusters
 * carried to the clusters of the memory. */
#include <stdlib.h>
#include <string.h>

#include "slr/refine.h"

int64_t slr_refine_soft_label(double alpha, const slr_csr *proj, int64_t prev, int64_t cur,
                              int32_t *cols, double *vals) {
  int64_t e = 0;
  int placed = cur < 0 || alpha == 0.0;
  if (proj && prev >= 0 && prev < proj->nrows) {
    for (int64_t t = proj->indptr[prev]; t < proj->indptr[prev + 1]; t++) {
      const int32_t col = proj->indices[t];
      if (!placed && cur < col) {
        cols[e] = (int32_t)cur;
        vals[e++] = alpha;
        placed = 1;
      }
      double v = (1.0 - alpha) * proj->values[t];
      if (col == cur) {
        v += alpha;
        placed = 1;
      }
      if (v == 0.0) continue;
      cols[e] = col;
      vals[e++] = v;
    }
  }
  if (!placed) {
    cols[e] = (int32_t)cur;
    vals[e++] = alpha;
  }
  return e;
}

/* carry[b][r] = |{i : y_cur = b, y_mem = r}| / |{i : y_cur = b, y_mem >= 0}| */
static int build_carry(slr_soft_targets *st, int64_t k_cur, const int32_t *y_mem) {
  slr_csr *m = &st->carry;
  const int64_t K = st->k_mem, n = st->n;
  m->nrows = k_cur;
  m->ncols = K;
  m->indptr = calloc((size_t)k_cur + 1, sizeof(int64_t));
  /* (y_cur, y_mem) pairs sorted by y_cur through a counting sort */
  int32_t *by_cur = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
  int64_t *fill = calloc((size_t)k_cur + 1, sizeof(int64_t));
  int32_t *seen = malloc(sizeof(int32_t) * (size_t)(K > 0 ? K : 1));
  int64_t *cnt = calloc((size_t)(K > 0 ? K : 1), sizeof(int64_t));
  int rc = m->indptr && by_cur && fill && seen && cnt ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the soft targets");
  for (int64_t i = 0; !rc && i < n; i++)
    if (st->y_cur[i] >= 0 && y_mem[i] >= 0) fill[st->y_cur[i] + 1]++;
  for (int64_t b = 0; !rc && b < k_cur; b++) fill[b + 1] += fill[b];
  int64_t total = rc ? 0 : fill[k_cur];
  for (int64_t i = 0; !rc && i < n; i++)
    if (st->y_cur[i] >= 0 && y_mem[i] >= 0) by_cur[fill[st->y_cur[i]]++] = y_mem[i];
  /* fill[b] is now the end of cluster b's run; an upper bound of the nnz is total */
  if (!rc) {
    m->indices = malloc(sizeof(int32_t) * (size_t)(total > 0 ? total : 1));
    m->values = malloc(sizeof(double) * (size_t)(total > 0 ? total : 1));
    if (!m->indices || !m->values) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the soft targets");
  }
  int64_t e = 0, start = 0;
  for (int64_t b = 0; !rc && b < k_cur; b++) {
    const int64_t end = fill[b];
    int64_t ns = 0;
    for (int64_t t = start; t < end; t++)
      if (cnt[by_cur[t]]++ == 0) seen[ns++] = by_cur[t];
    /* ascending memory clusters */
    for (int64_t x = 1; x < ns; x++)
      for (int64_t y = x; y > 0 && seen[y - 1] > seen[y]; y--) {
        int32_t tmp = seen[y];
        seen[y] = seen[y - 1];
        seen[y - 1] = tmp;
      }
    for (int64_t x = 0; x < ns; x++) {
      m->indices[e] = seen[x];
      m->values[e++] = (double)cnt[seen[x]] / (double)(end - start);
      cnt[seen[x]] = 0;
    }
    m->indptr[b + 1] = e;
    start = end;
  }
  free(by_cur);
  free(fill);
  free(seen);
  free(cnt);
  return rc;
}

int slr_soft_targets_init(slr_soft_targets *st, double alpha, const slr_csr *proj, int64_t n,
                          const int32_t *y_prev, const int32_t *y_cur, const int32_t *y_mem,
                          int64_t k_mem) {
  memset(st, 0, sizeof *st);
  st->alpha = y_prev ? alpha : 1.0;
  st->n = n;
  st->k_mem = k_mem;
  st->y_prev = y_prev;
  st->y_cur = y_cur;
  int64_t k_cur = 0;
  for (int64_t i = 0; i < n; i++)
    if (y_cur[i] + 1 > k_cur) k_cur = y_cur[i] + 1;
  int rc = 0;
  st->proj = y_prev ? proj : NULL;
  rc = build_carry(st, k_cur, y_mem);
  int64_t width = 1;
  for (int64_t r = 0; !rc && st->proj && r < st->proj->nrows; r++)
    if (st->proj->indptr[r + 1] - st->proj->indptr[r] + 1 > width)
      width = st->proj->indptr[r + 1] - st->proj->indptr[r] + 1;
  if (!rc) {
    st->cols = malloc(sizeof(int32_t) * (size_t)width);
    st->vals = malloc(sizeof(double) * (size_t)width);
    if (!st->cols || !st->vals) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the soft targets");
  }
  if (rc) slr_soft_targets_free(st);
  return rc;
}

int slr_soft_targets_row(slr_soft_targets *st, int64_t i, float *t) {
  memset(t, 0, sizeof(float) * (size_t)st->k_mem);
  if (i < 0 || i >= st->n) return 0;
  const int64_t a = st->y_prev ? st->y_prev[i] : -1, b = st->y_cur[i];
  const int64_t len =
      slr_refine_soft_label(st->alpha, st->proj, a, b, st->cols, st->vals);
  double total = 0;
  const slr_csr *c = &st->carry;
  for (int64_t e = 0; e < len; e++) {
    const int64_t col = st->cols[e];
    if (col >= c->nrows) continue;
    for (int64_t v = c->indptr[col]; v < c->indptr[col + 1]; v++) {
      const double w = st->vals[e] * c->values[v];
      t[c->indices[v]] += (float)w;
      total += w;
    }
  }
  if (total <= 0) {
    memset(t, 0, sizeof(float) * (size_t)st->k_mem);
    return 0;
  }
  for (int64_t r = 0; r < st->k_mem; r++) t[r] = (float)(t[r] / total);
  return 1;
}

void slr_soft_targets_free(slr_soft_targets *st) {
  slr_csr_free(&st->carry);
  free(st->cols);
  free(st->vals);
  memset(st, 0, sizeof *st);
}
