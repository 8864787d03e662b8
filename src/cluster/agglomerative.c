/* Agglomerative (hierarchical) clustering of weighted points for the SLR
 * step: single, complete, average and Ward linkage with the nearest-neighbour
 * chain on a dense symmetric distance matrix, and the two flat cuts of
 * scipy's fcluster ('distance' and 'maxclust'). The results equal scipy's
 * linkage + fcluster on the points expanded by their weights (see
 * include/slr/cluster.h and docs/eval.md). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/cluster.h"

static const char *const linkage_names[] = {"single", "complete", "average", "ward"};

int slr_linkage_parse(const char *name, slr_linkage *out) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, linkage_names[i]) == 0) {
      *out = (slr_linkage)i;
      return 0;
    }
  return SLR_FAIL(SLR_ERR_CONFIG,
                  "unknown linkage \"%s\" (expected single, complete, average or ward)", name);
}

const char *slr_linkage_name(slr_linkage method) {
  return (unsigned)method < 4 ? linkage_names[method] : "?";
}

static int check_args(int64_t n, const int64_t *w, slr_linkage method) {
  if (n < 0) return SLR_FAIL(SLR_ERR, "agglomerative clustering: n = %lld < 0", (long long)n);
  if ((unsigned)method > SLR_LINKAGE_WARD)
    return SLR_FAIL(SLR_ERR, "agglomerative clustering: unknown linkage %d", (int)method);
  for (int64_t i = 0; w && i < n; i++)
    if (w[i] < 1)
      return SLR_FAIL(SLR_ERR, "agglomerative clustering: weight of point %lld is %lld (< 1)",
                      (long long)i, (long long)w[i]);
  return 0;
}

/* Lance-Williams update: distance from cluster i to the union of x and y,
 * in the form (and operation order) of scipy's _hierarchy_distance_update. */
static inline double lance_williams(slr_linkage m, double d_xi, double d_yi, double d_xy,
                                    double nx, double ny, double ni) {
  switch (m) {
    case SLR_LINKAGE_SINGLE:
      return d_xi < d_yi ? d_xi : d_yi;
    case SLR_LINKAGE_COMPLETE:
      return d_xi > d_yi ? d_xi : d_yi;
    case SLR_LINKAGE_AVERAGE:
      return (nx * d_xi + ny * d_yi) / (nx + ny);
    case SLR_LINKAGE_WARD: {
      double t = 1.0 / (nx + ny + ni);
      double v = (ni + nx) * t * d_xi * d_xi + (ni + ny) * t * d_yi * d_yi - ni * t * d_xy * d_xy;
      return sqrt(v > 0 ? v : 0);
    }
  }
  return d_xi;
}

typedef struct {
  int64_t x, y; /* slots (each a point of its cluster) */
  double h;
} raw_merge;

static int cmp_height(const void *pa, const void *pb) {
  const raw_merge *a = pa, *b = pb;
  if (a->h < b->h) return -1;
  if (a->h > b->h) return 1;
  /* stable: the chain order */
  return a->x < b->x ? -1 : a->x > b->x;
}

static int64_t uf_find(int64_t *parent, int64_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

/* The nearest-neighbour chain on D (n x n, symmetric, overwritten), with
 * cluster sizes from w; writes the sorted scipy-form rows to z. */
static int nn_chain(double *D, int64_t n, const int64_t *w, slr_linkage method, slr_merge *z) {
  if (n <= 1) return 0;
  double *size = NULL;
  int64_t *chain = NULL, *order = NULL, *parent = NULL, *id = NULL;
  raw_merge *rm = NULL;
  int rc = 0;
  size = malloc((size_t)n * sizeof *size);
  chain = malloc((size_t)n * sizeof *chain);
  order = malloc((size_t)n * sizeof *order); /* active slots, compacted */
  rm = malloc((size_t)(n - 1) * sizeof *rm);
  parent = malloc((size_t)n * sizeof *parent);
  id = malloc((size_t)n * sizeof *id);
  if (!size || !chain || !order || !rm || !parent || !id) {
    rc = SLR_FAIL(SLR_ERR_NOMEM, "agglomerative clustering: out of memory (n = %lld)",
                  (long long)n);
    goto done;
  }
  for (int64_t i = 0; i < n; i++) {
    size[i] = w ? (double)w[i] : 1.0;
    order[i] = i;
    for (int64_t j = i + 1; j < n && !rc; j++)
      if (!isfinite(D[i * n + j]))
        rc = SLR_FAIL(SLR_ERR,
                      "agglomerative clustering: the distance of points %lld and %lld is not "
                      "finite (coordinates too large?)",
                      (long long)i, (long long)j);
  }
  if (rc) goto done;
  int64_t nactive = n, len = 0;
  for (int64_t k = 0; k < n - 1; k++) {
    if (len == 0) chain[len++] = order[0];
    int64_t x, y;
    double dmin;
    for (;;) {
      x = chain[len - 1];
      const double *row = D + x * n;
      if (len > 1) {
        y = chain[len - 2];
        dmin = row[y];
      } else {
        y = -1;
        dmin = INFINITY;
      }
      /* scan the active slots in increasing index: the first strict
       * minimum wins, as in scipy */
      for (int64_t a = 0; a < nactive; a++) {
        int64_t i = order[a];
        if (i != x && row[i] < dmin) {
          dmin = row[i];
          y = i;
        }
      }
      if (len > 1 && y == chain[len - 2]) break;
      if (y < 0) {
        rc = SLR_FAIL(SLR_ERR, "agglomerative clustering: distances overflowed at merge %lld",
                      (long long)k);
        goto done;
      }
      chain[len++] = y;
    }
    len -= 2;
    if (x > y) {
      int64_t t = x;
      x = y;
      y = t;
    }
    rm[k].x = x;
    rm[k].y = y;
    rm[k].h = dmin;
    double nx = size[x], ny = size[y];
    double *rx = D + x * n, *ry = D + y * n;
    for (int64_t a = 0; a < nactive; a++) {
      int64_t i = order[a];
      if (i == x || i == y) continue;
      double v = lance_williams(method, rx[i], ry[i], dmin, nx, ny, size[i]);
      ry[i] = v;
      D[i * n + y] = v;
    }
    size[y] = nx + ny;
    size[x] = 0;
    /* drop x from the active list, keeping increasing order */
    int64_t a = 0;
    while (order[a] != x) a++;
    memmove(order + a, order + a + 1, (size_t)(nactive - a - 1) * sizeof *order);
    nactive--;
  }
  /* sort by height (stable) and relabel as scipy does: the cluster made by
   * row i is n + i, each row lists the smaller id first */
  qsort(rm, (size_t)(n - 1), sizeof *rm, cmp_height);
  double *wsum = size; /* reuse: total weight per root */
  for (int64_t i = 0; i < n; i++) {
    parent[i] = i;
    id[i] = i;
    wsum[i] = w ? (double)w[i] : 1.0;
  }
  for (int64_t k = 0; k < n - 1; k++) {
    int64_t rx = uf_find(parent, rm[k].x), ry = uf_find(parent, rm[k].y);
    int64_t ix = id[rx], iy = id[ry];
    z[k].a = ix < iy ? ix : iy;
    z[k].b = ix < iy ? iy : ix;
    z[k].height = rm[k].h;
    z[k].weight = (int64_t)(wsum[rx] + wsum[ry]);
    parent[rx] = ry;
    id[ry] = n + k;
    wsum[ry] += wsum[rx];
  }
done:
  free(size);
  free(chain);
  free(order);
  free(rm);
  free(parent);
  free(id);
  return rc;
}

/* Ward starts from the Ward distance of the two groups of copies. */
static void ward_scale(double *D, int64_t n, const int64_t *w, slr_linkage method) {
  if (method != SLR_LINKAGE_WARD || !w) return;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      if (i == j) continue;
      double wi = (double)w[i], wj = (double)w[j];
      D[i * n + j] *= sqrt(2.0 * wi * wj / (wi + wj));
    }
}

static int alloc_matrix(double **D, int64_t n) {
  size_t bytes = (size_t)n * (size_t)n * sizeof(double);
  *D = malloc(bytes ? bytes : 1);
  if (!*D)
    return SLR_FAIL(SLR_ERR_NOMEM,
                    "agglomerative clustering: out of memory for the %lld x %lld distance "
                    "matrix (%zu bytes)",
                    (long long)n, (long long)n, bytes);
  return 0;
}

int slr_agglo_tree_points(const double *x, int64_t n, int64_t d, const int64_t *w,
                          slr_linkage method, slr_merge *z) {
  SLR_TRY(check_args(n, w, method));
  if (d < 1) return SLR_FAIL(SLR_ERR, "agglomerative clustering: dimension %lld < 1", (long long)d);
  for (int64_t i = 0; i < n * d; i++)
    if (!isfinite(x[i]))
      return SLR_FAIL(SLR_ERR, "agglomerative clustering: coordinate %lld of point %lld is not finite",
                      (long long)(i % d), (long long)(i / d));
  if (n <= 1) return 0;
  double *D;
  SLR_TRY(alloc_matrix(&D, n));
  /* Gram matrix in the upper triangle, then squared distances from the norms */
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, (int)d, 1.0, x, (int)d, 0.0, D,
              (int)n);
  for (int64_t i = 0; i < n; i++) {
    double ni = D[i * n + i];
    for (int64_t j = i + 1; j < n; j++) {
      double nj = D[j * n + j];
      double s = ni + nj, d2 = s - 2.0 * D[i * n + j];
      /* close pairs lose digits to cancellation: recompute them directly */
      if (d2 < 1e-4 * s) {
        const double *a = x + i * d, *b = x + j * d;
        d2 = 0;
        for (int64_t c = 0; c < d; c++) d2 += (a[c] - b[c]) * (a[c] - b[c]);
      }
      D[i * n + j] = sqrt(d2 > 0 ? d2 : 0);
    }
  }
  for (int64_t i = 0; i < n; i++) {
    D[i * n + i] = 0;
    for (int64_t j = i + 1; j < n; j++) D[j * n + i] = D[i * n + j];
  }
  ward_scale(D, n, w, method);
  int rc = nn_chain(D, n, w, method, z);
  free(D);
  return rc;
}

int slr_agglo_tree_csr(const int64_t *indptr, const int32_t *indices, const double *values,
                       int64_t n, int64_t d, const int64_t *w, slr_linkage method,
                       slr_merge *z) {
  SLR_TRY(check_args(n, w, method));
  if (d < 1) return SLR_FAIL(SLR_ERR, "agglomerative clustering: dimension %lld < 1", (long long)d);
  if (n > 0 && indptr[0] != 0)
    return SLR_FAIL(SLR_ERR, "agglomerative clustering: CSR indptr[0] = %lld, expected 0",
                    (long long)indptr[0]);
  for (int64_t i = 0; i < n; i++)
    if (indptr[i + 1] < indptr[i])
      return SLR_FAIL(SLR_ERR, "agglomerative clustering: CSR indptr decreases at row %lld",
                      (long long)i);
  /* per column: the value of row i (acc) and of row j (acc2), valid where
   * mark == i (mark2 == j) */
  double *acc = malloc((size_t)d * sizeof(double)), *acc2 = malloc((size_t)d * sizeof(double));
  int64_t *mark = malloc((size_t)d * sizeof(int64_t)), *mark2 = malloc((size_t)d * sizeof(int64_t));
  double *norm2 = malloc((size_t)(n ? n : 1) * sizeof(double));
  double *D = NULL;
  int rc = 0;
  if (!acc || !acc2 || !mark || !mark2 || !norm2)
    rc = SLR_FAIL(SLR_ERR_NOMEM, "agglomerative clustering: out of memory (d = %lld)",
                  (long long)d);
  for (int64_t c = 0; !rc && c < d; c++) mark[c] = mark2[c] = -1;
  for (int64_t i = 0; !rc && i < n; i++) {
    norm2[i] = 0;
    for (int64_t p = indptr[i]; p < indptr[i + 1]; p++) {
      int64_t c = indices[p];
      if (c < 0 || c >= d || mark[c] == i) {
        rc = SLR_FAIL(SLR_ERR, "agglomerative clustering: CSR row %lld has column %lld %s",
                      (long long)i, (long long)c, c < 0 || c >= d ? "out of range" : "twice");
        break;
      }
      if (!isfinite(values[p])) {
        rc = SLR_FAIL(SLR_ERR, "agglomerative clustering: coordinate %lld of point %lld is not "
                      "finite", (long long)c, (long long)i);
        break;
      }
      mark[c] = i;
      norm2[i] += values[p] * values[p];
    }
  }
  if (!rc && n > 1) rc = alloc_matrix(&D, n);
  if (!rc && n > 1) {
    for (int64_t c = 0; c < d; c++) mark[c] = -1;
    for (int64_t i = 0; i < n; i++) {
      for (int64_t p = indptr[i]; p < indptr[i + 1]; p++) {
        acc[indices[p]] = values[p];
        mark[indices[p]] = i;
      }
      D[i * n + i] = 0;
      for (int64_t j = i + 1; j < n; j++) {
        double dot = 0;
        for (int64_t p = indptr[j]; p < indptr[j + 1]; p++)
          if (mark[indices[p]] == i) dot += acc[indices[p]] * values[p];
        double s = norm2[i] + norm2[j], d2 = s - 2.0 * dot;
        if (d2 < 1e-4 * s) {
          /* close pair: the sum of squared differences over both supports */
          for (int64_t p = indptr[j]; p < indptr[j + 1]; p++) {
            acc2[indices[p]] = values[p];
            mark2[indices[p]] = j;
          }
          d2 = 0;
          for (int64_t p = indptr[i]; p < indptr[i + 1]; p++) {
            int64_t c = indices[p];
            double b = mark2[c] == j ? acc2[c] : 0.0;
            d2 += (values[p] - b) * (values[p] - b);
          }
          for (int64_t p = indptr[j]; p < indptr[j + 1]; p++)
            if (mark[indices[p]] != i) d2 += values[p] * values[p];
        }
        D[i * n + j] = D[j * n + i] = sqrt(d2 > 0 ? d2 : 0);
      }
    }
    ward_scale(D, n, w, method);
    rc = nn_chain(D, n, w, method, z);
  }
  free(acc);
  free(acc2);
  free(mark);
  free(mark2);
  free(norm2);
  free(D);
  return rc;
}

int slr_agglo_tree_dist(const double *dist, int64_t n, int full, const int64_t *w,
                        slr_linkage method, slr_merge *z) {
  SLR_TRY(check_args(n, w, method));
  if (n <= 1) return 0;
  double *D;
  SLR_TRY(alloc_matrix(&D, n));
  int64_t c = 0;
  for (int64_t i = 0; i < n; i++) {
    D[i * n + i] = 0;
    for (int64_t j = i + 1; j < n; j++, c++) {
      double v = full ? dist[i * n + j] : dist[c];
      if (!(v >= 0) || !isfinite(v)) {
        free(D);
        return SLR_FAIL(SLR_ERR, "agglomerative clustering: distance (%lld, %lld) is %g",
                        (long long)i, (long long)j, v);
      }
      D[i * n + j] = D[j * n + i] = v;
    }
  }
  ward_scale(D, n, w, method);
  int rc = nn_chain(D, n, w, method, z);
  free(D);
  return rc;
}

/* Union of the merges with height <= t, labels by first appearance. */
static int cut_at(const slr_merge *z, int64_t n, double t, int32_t *labels, int64_t *nclusters) {
  if (n <= 0) {
    if (nclusters) *nclusters = 0;
    return 0;
  }
  int64_t *parent = malloc((size_t)(2 * n) * sizeof *parent);
  int64_t *first = malloc((size_t)(2 * n) * sizeof *first);
  if (!parent || !first) {
    free(parent);
    free(first);
    return SLR_FAIL(SLR_ERR_NOMEM, "agglomerative cut: out of memory (n = %lld)", (long long)n);
  }
  for (int64_t i = 0; i < 2 * n; i++) parent[i] = i;
  /* node n + k joins its two children; rows with height <= t unite them
   * (heights are monotone for these linkages, so a kept row's subtree is
   * kept whole) */
  for (int64_t k = 0; k < n - 1; k++) {
    if (!(z[k].height <= t)) continue;
    int64_t r = uf_find(parent, n + k);
    int64_t ra = uf_find(parent, z[k].a), rb = uf_find(parent, z[k].b);
    parent[ra] = r;
    parent[rb] = r;
  }
  int32_t next = 0;
  for (int64_t i = 0; i < 2 * n; i++) first[i] = -1;
  for (int64_t i = 0; i < n; i++) {
    int64_t r = uf_find(parent, i);
    if (first[r] < 0) first[r] = next++;
    labels[i] = (int32_t)first[r];
  }
  if (nclusters) *nclusters = next;
  free(first);
  free(parent);
  return 0;
}

int slr_agglo_cut_distance(const slr_merge *z, int64_t n, double t, int32_t *labels,
                           int64_t *nclusters) {
  if (!(t >= 0))
    return SLR_FAIL(SLR_ERR, "agglomerative cut: distance threshold %g (must be >= 0)", t);
  return cut_at(z, n, t, labels, nclusters);
}

int slr_agglo_cut_maxclust(const slr_merge *z, int64_t n, const int64_t *w, int64_t kmax,
                           int32_t *labels, int64_t *nclusters) {
  if (kmax < 1)
    return SLR_FAIL(SLR_ERR, "agglomerative cut: maximum cluster count %lld (must be >= 1)",
                    (long long)kmax);
  if (n <= 1) return cut_at(z, n, 0, labels, nclusters);
  /* the expanded tree: z0 merges of copies at height 0, then the rows of z
   * (sorted). MC(i) is the height of expanded row i. */
  int64_t z0 = 0;
  for (int64_t i = 0; w && i < n; i++) z0 += w[i] - 1;
  int64_t nexp = n + z0;
#define MC(i) ((i) < z0 ? 0.0 : z[(i)-z0].height)
  double thresh;
  if (nexp == 2) {
    thresh = kmax >= 2 ? -1.0 : MC(0);
  } else {
    /* scipy's binary search: the count at threshold h is nexp minus the
     * number of rows with height <= h; index 0 is never tested */
    int64_t lo = 0, hi = nexp - 1;
    while (hi - lo > 1) {
      int64_t mid = (lo + hi) >> 1;
      double h = MC(mid);
      int64_t kept = z0; /* rows of copies (height 0 <= h) */
      for (int64_t k = 0; k < n - 1; k++) kept += z[k].height <= h;
      if (nexp - kept > kmax)
        lo = mid;
      else
        hi = mid;
    }
    thresh = MC(hi);
  }
#undef MC
  if (thresh < 0) {
    /* every point its own cluster */
    for (int64_t i = 0; i < n; i++) labels[i] = (int32_t)i;
    if (nclusters) *nclusters = n;
    return 0;
  }
  return cut_at(z, n, thresh, labels, nclusters);
}

/* ---- sparse points: distances and the flat cut ---------------------------- */

static const char *const metric_names[] = {"euclidean", "cosine", "jensen_shannon", "hellinger"};

int slr_agglo_metric_parse(const char *name, slr_agglo_metric *out) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, metric_names[i]) == 0) {
      *out = (slr_agglo_metric)i;
      return 0;
    }
  return SLR_FAIL(SLR_ERR_CONFIG,
                  "unknown distance \"%s\" (expected euclidean, cosine, jensen_shannon or "
                  "hellinger)",
                  name);
}

const char *slr_agglo_metric_name(slr_agglo_metric metric) {
  return (unsigned)metric < 4 ? metric_names[metric] : "?";
}

/* Points with their values transformed so that one kernel per family gives
 * the distance: euclidean as given, hellinger sqrt(v / sum) / sqrt(2) (then
 * Euclidean), cosine v / |v| (then 1 - a.b), jensen_shannon v / sum. */
typedef struct {
  int64_t n, d;
  const int64_t *indptr;
  const int32_t *indices;
  double *values; /* owned */
  const int64_t *w;
  slr_agglo_metric metric;
  int euclid; /* euclidean or hellinger: the Euclidean kernel */
} prepared;

static int check_points(const slr_sparse_points *x) {
  if (x->n < 0 || x->d < 1)
    return SLR_FAIL(SLR_ERR, "agglomerative clustering: %lld points of dimension %lld",
                    (long long)x->n, (long long)x->d);
  if (x->n > 0 && x->indptr[0] != 0)
    return SLR_FAIL(SLR_ERR, "agglomerative clustering: CSR indptr[0] = %lld, expected 0",
                    (long long)x->indptr[0]);
  for (int64_t i = 0; i < x->n; i++) {
    if (x->indptr[i + 1] <= x->indptr[i])
      return SLR_FAIL(SLR_ERR, "agglomerative clustering: CSR row %lld is empty or indptr "
                      "decreases", (long long)i);
    for (int64_t p = x->indptr[i]; p < x->indptr[i + 1]; p++) {
      const int64_t c = x->indices[p];
      if (c < 0 || c >= x->d || (p > x->indptr[i] && c <= x->indices[p - 1]))
        return SLR_FAIL(SLR_ERR, "agglomerative clustering: CSR row %lld has column %lld %s",
                        (long long)i, (long long)c,
                        c < 0 || c >= x->d ? "out of range" : "out of order or twice");
      if (!isfinite(x->values[p]) || x->values[p] < 0)
        return SLR_FAIL(SLR_ERR, "agglomerative clustering: coordinate %lld of point %lld is %g "
                        "(must be finite and >= 0)", (long long)c, (long long)i, x->values[p]);
    }
  }
  return check_args(x->n, x->w, SLR_LINKAGE_SINGLE);
}

static int prepare(const slr_sparse_points *x, slr_agglo_metric metric, prepared *q) {
  const int64_t nnz = x->n > 0 ? x->indptr[x->n] : 0;
  *q = (prepared){x->n, x->d, x->indptr, x->indices, NULL, x->w, metric,
                  metric == SLR_AGGLO_EUCLIDEAN || metric == SLR_AGGLO_HELLINGER};
  q->values = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(double));
  if (!q->values)
    return SLR_FAIL(SLR_ERR_NOMEM, "agglomerative clustering: out of memory (%lld values)",
                    (long long)nnz);
  for (int64_t i = 0; i < x->n; i++) {
    const int64_t p0 = x->indptr[i], p1 = x->indptr[i + 1];
    double sum = 0, sq = 0;
    for (int64_t p = p0; p < p1; p++) {
      sum += x->values[p];
      sq += x->values[p] * x->values[p];
    }
    if (metric != SLR_AGGLO_EUCLIDEAN && !(sum > 0)) {
      free(q->values);
      return SLR_FAIL(SLR_ERR, "agglomerative clustering: point %lld is zero (the %s distance "
                      "needs non-zero points)", (long long)i, metric_names[metric]);
    }
    for (int64_t p = p0; p < p1; p++) {
      const double v = x->values[p];
      switch (metric) {
        case SLR_AGGLO_EUCLIDEAN: q->values[p] = v; break;
        case SLR_AGGLO_COSINE: q->values[p] = v / sqrt(sq); break;
        case SLR_AGGLO_JENSEN_SHANNON: q->values[p] = v / sum; break;
        case SLR_AGGLO_HELLINGER: q->values[p] = sqrt(v / sum) / sqrt(2.0); break;
      }
    }
  }
  return 0;
}

/* Euclidean distance between two sorted sparse vectors. */
static double euclid_sparse(const int32_t *ia, const double *va, int64_t na, const int32_t *ib,
                            const double *vb, int64_t nb) {
  double s = 0;
  int64_t i = 0, j = 0;
  while (i < na || j < nb) {
    double d;
    if (j >= nb || (i < na && ia[i] < ib[j]))
      d = va[i++];
    else if (i >= na || ib[j] < ia[i])
      d = -vb[j++];
    else
      d = va[i++] - vb[j++];
    s += d * d;
  }
  return sqrt(s);
}

static const double LN2 = 0.69314718055994530942;

/* Jensen-Shannon distance (base 2) of two sorted sparse distributions. */
static double js_sparse(const int32_t *ia, const double *va, int64_t na, const int32_t *ib,
                        const double *vb, int64_t nb) {
  double s = 0;
  int64_t i = 0, j = 0;
  while (i < na || j < nb) {
    if (j >= nb || (i < na && ia[i] < ib[j])) {
      s += va[i++] * LN2;
    } else if (i >= na || ib[j] < ia[i]) {
      s += vb[j++] * LN2;
    } else {
      const double p = va[i++], q = vb[j++], m = 0.5 * (p + q);
      s += p * log(p / m) + q * log(q / m);
    }
  }
  s /= 2 * LN2;
  return sqrt(s > 0 ? s : 0);
}

/* The distance of points a and b under q's metric. */
static double point_dist(const prepared *q, int64_t a, int64_t b) {
  const int64_t pa = q->indptr[a], pb = q->indptr[b];
  const int64_t na = q->indptr[a + 1] - pa, nb = q->indptr[b + 1] - pb;
  const int32_t *ia = q->indices + pa, *ib = q->indices + pb;
  const double *va = q->values + pa, *vb = q->values + pb;
  if (q->euclid) return euclid_sparse(ia, va, na, ib, vb, nb);
  if (q->metric == SLR_AGGLO_JENSEN_SHANNON) return js_sparse(ia, va, na, ib, vb, nb);
  double dot = 0;
  for (int64_t i = 0, j = 0; i < na && j < nb;) {
    if (ia[i] < ib[j])
      i++;
    else if (ib[j] < ia[i])
      j++;
    else
      dot += va[i++] * vb[j++];
  }
  const double d = 1.0 - dot;
  return d > 0 ? d : 0;
}

static int check_cut_args(const slr_sparse_points *x, slr_linkage method, slr_agglo_metric metric,
                          double t) {
  if ((unsigned)metric > SLR_AGGLO_HELLINGER)
    return SLR_FAIL(SLR_ERR, "agglomerative clustering: unknown distance %d", (int)metric);
  if ((unsigned)method > SLR_LINKAGE_WARD)
    return SLR_FAIL(SLR_ERR, "agglomerative clustering: unknown linkage %d", (int)method);
  if (method == SLR_LINKAGE_WARD && metric != SLR_AGGLO_EUCLIDEAN && metric != SLR_AGGLO_HELLINGER)
    return SLR_FAIL(SLR_ERR_CONFIG, "agglomerative clustering: ward linkage needs a Euclidean "
                    "distance (euclidean or hellinger), not %s", metric_names[metric]);
  if (!(t >= 0))
    return SLR_FAIL(SLR_ERR, "agglomerative cut: distance threshold %g (must be >= 0)", t);
  return check_points(x);
}

/* The dense path: the condensed distances, the tree, the cut. */
static int cut_dense(const prepared *q, slr_linkage method, double t, int32_t *labels,
                     int64_t *nclusters) {
  const int64_t n = q->n;
  double *dist = malloc((size_t)(n * (n - 1) / 2) * sizeof(double));
  slr_merge *z = malloc((size_t)(n - 1) * sizeof *z);
  int rc = dist && z ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "agglomerative clustering: out of memory for "
                                    "%lld points", (long long)n);
  for (int64_t a = 0, c = 0; !rc && a < n; a++)
    for (int64_t b = a + 1; b < n; b++) dist[c++] = point_dist(q, a, b);
  if (!rc) rc = slr_agglo_tree_dist(dist, n, 0, q->w, method, z);
  if (!rc) rc = cut_at(z, n, t, labels, nclusters);
  free(dist);
  free(z);
  return rc;
}

int slr_agglo_cut_sparse(const slr_sparse_points *x, slr_linkage method, slr_agglo_metric metric,
                         double t, int32_t *labels, int64_t *nclusters) {
  SLR_TRY(check_cut_args(x, method, metric, t));
  if (x->n <= 1) {
    if (x->n == 1) labels[0] = 0;
    if (nclusters) *nclusters = x->n;
    return 0;
  }
  prepared q;
  SLR_TRY(prepare(x, metric, &q));
  int rc = cut_dense(&q, method, t, labels, nclusters);
  free(q.values);
  return rc;
}
