/* Agglomerative (hierarchical) clustering of weighted points for the SLR
 * step: single, complete, average and Ward linkage with the
 * nearest-neighbour chain, on a dense distance matrix (slr_agglo_tree_dist)
 * or, for a flat cut at a distance threshold, on sparse non-negative points
 * without any n x n matrix (slr_agglo_cut_sparse), with the Euclidean,
 * cosine, Jensen-Shannon and Hellinger distances. The results equal scipy's
 * linkage + fcluster on the points expanded by their weights (see
 * include/slr/cluster.h and docs/eval.md). */
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

/* Sort the merges by height (stable) and relabel as scipy does: the cluster
 * made by row i is n + i, each row lists the smaller id first. wsum, parent
 * and id are scratch (n). */
static void relabel_scipy(raw_merge *rm, int64_t n, const int64_t *w, double *wsum,
                          int64_t *parent, int64_t *id, slr_merge *z) {
  qsort(rm, (size_t)(n - 1), sizeof *rm, cmp_height);
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
}

/* Every distance of the upper triangle finite. */
static int check_finite(const double *D, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i + 1; j < n; j++)
      if (!isfinite(D[i * n + j]))
        return SLR_FAIL(SLR_ERR,
                        "agglomerative clustering: the distance of points %lld and %lld is not "
                        "finite (coordinates too large?)",
                        (long long)i, (long long)j);
  return 0;
}

/* Merge slot x into slot y at height dmin: the Lance-Williams update of
 * y's row and column, y's size, x dropped from the active slots (kept in
 * increasing order). Returns the new number of active slots. */
static int64_t merge_rows(double *D, int64_t n, slr_linkage method, int64_t x, int64_t y,
                          double dmin, double *size, int64_t *order, int64_t nactive) {
  const double nx = size[x], ny = size[y];
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
  int64_t a = 0;
  while (order[a] != x) a++;
  memmove(order + a, order + a + 1, (size_t)(nactive - a - 1) * sizeof *order);
  return nactive - 1;
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
  }
  if ((rc = check_finite(D, n))) goto done;
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
    nactive = merge_rows(D, n, method, x, y, dmin, size, order, nactive);
  }
  relabel_scipy(rm, n, w, size, parent, id, z);
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

/* The sparse flat cut. Merges of height <= t never join two groups of
 * points that no chain of point pairs at distance <= t links (all four
 * linkages are reducible: d(i, j) > t, d(i, k) > t, d(j, k) <= t imply
 * d(i, j u k) > t), and a cluster whose nearest cluster is farther than t
 * never merges below t. So the nearest-neighbour chain runs with the
 * nearest cluster sought only among the clusters within t, found without a
 * distance matrix: those that share a column with the cluster (an inverted
 * index of the columns) and, for the Euclidean distances, those without a
 * shared column whose norms put them within t (two points without shared
 * support are sqrt(|a|^2 + |b|^2) apart; a list of the clusters whose
 * smallest norm, or centroid norm for Ward, is <= t). Cluster distances are
 * computed from the members when needed: single, complete and average over
 * the member pairs, Ward from the centroids (sqrt(2 nx ny / (nx + ny)) |cx -
 * cy|, which is what scipy's update gives). The merged cluster takes the
 * larger slot and ties go to the previous chain element, then to the lowest
 * slot, as scipy's nn_chain. Memory: O(nnz + n + d). */
typedef struct {
  const prepared *q;
  slr_linkage method;
  double t, t2;
  int64_t *colptr, *colpts;          /* the points of each column */
  int64_t *parent, *root_slot, *slot_root;
  int64_t *head, *next, *tail, *cnt; /* members of each slot */
  double *W, *nu2, *pnorm2;          /* cluster weight; low-list key; point norm^2 */
  char *active, *final;
  /* clusters that may be near without a shared column, by key nu2 then slot;
   * an entry is live while its slot is active, not final, and its key is
   * the slot's nu2 */
  struct sp_low { double key; int64_t slot; } *low;
  int64_t nlow, nsorted; /* [0, nsorted) sorted, then an unsorted tail */
  int64_t *mark, stamp, *cand, ncand, *chain;
  int64_t *shared;                   /* == stamp: the candidate shares a column */
  double *mx2;                       /* largest member norm^2 */
  int32_t **cidx;                    /* Ward: weighted sum of each cluster's members */
  double **cval;
  int64_t *clen;
} sp_state;

static int64_t sp_find(sp_state *s, int64_t p) {
  while (s->parent[p] != p) {
    s->parent[p] = s->parent[s->parent[p]];
    p = s->parent[p];
  }
  return p;
}

static int64_t sp_slot(sp_state *s, int64_t p) { return s->root_slot[sp_find(s, p)]; }

static double sqnorm(const double *v, int64_t len) {
  double r = 0;
  for (int64_t i = 0; i < len; i++) r += v[i] * v[i];
  return r;
}

static void sp_free(sp_state *s) {
  if (s->cidx)
    for (int64_t i = 0; i < s->q->n; i++) {
      free(s->cidx[i]);
      free(s->cval[i]);
    }
  void *ptrs[] = {s->colptr, s->colpts, s->parent, s->root_slot, s->slot_root, s->head, s->next,
                  s->tail, s->cnt, s->W, s->nu2, s->pnorm2, s->active, s->final,
                  s->low, s->mark, s->cand, s->chain, s->cidx, s->cval, s->clen, s->shared,
                  s->mx2};
  for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) free(ptrs[i]);
}

static int cmp_low(const void *pa, const void *pb) {
  const struct sp_low *a = pa, *b = pb;
  if (a->key != b->key) return a->key < b->key ? -1 : 1;
  return (a->slot > b->slot) - (a->slot < b->slot);
}

static int sp_low_live(const sp_state *s, int64_t k) {
  const int64_t y = s->low[k].slot;
  return s->active[y] && !s->final[y] && s->low[k].key == s->nu2[y];
}

/* Add slot y (key nu2[y]): appended unsorted; the list is sorted again
 * (dead entries dropped) when the unsorted tail grows past a 16th of it. */
static void sp_low_insert(sp_state *s, int64_t y) {
  if (s->nlow == 2 * s->q->n || s->nlow - s->nsorted > 256 + s->nsorted / 16) {
    int64_t keep = 0;
    for (int64_t k = 0; k < s->nlow; k++)
      if (sp_low_live(s, k)) s->low[keep++] = s->low[k];
    qsort(s->low, (size_t)keep, sizeof *s->low, cmp_low);
    s->nlow = s->nsorted = keep;
  }
  s->low[s->nlow++] = (struct sp_low){s->nu2[y], y};
}

/* The weighted sum of a point, w * v (Euclidean distances). */
static int sp_centroid_init(sp_state *s, int64_t i) {
  const prepared *q = s->q;
  const int64_t p0 = q->indptr[i], len = q->indptr[i + 1] - p0;
  const double w = q->w ? (double)q->w[i] : 1.0;
  s->cidx[i] = malloc((size_t)len * sizeof(int32_t));
  s->cval[i] = malloc((size_t)len * sizeof(double));
  if (!s->cidx[i] || !s->cval[i]) return SLR_FAIL(SLR_ERR_NOMEM, "agglomerative: out of memory");
  memcpy(s->cidx[i], q->indices + p0, (size_t)len * sizeof(int32_t));
  for (int64_t e = 0; e < len; e++) s->cval[i][e] = w * q->values[p0 + e];
  s->clen[i] = len;
  return 0;
}

static int sp_init(sp_state *s, const prepared *q, slr_linkage method, double t) {
  const int64_t n = q->n, d = q->d, nnz = q->indptr[n];
  memset(s, 0, sizeof *s);
  *s = (sp_state){.q = q, .method = method, .t = t, .t2 = t * t};
#define ALLOC(f, cnt) (s->f = calloc((size_t)(cnt) + 1, sizeof *s->f)) != NULL
  int ok = ALLOC(colptr, d + 1) && ALLOC(colpts, nnz) && ALLOC(parent, n) && ALLOC(root_slot, n) &&
           ALLOC(slot_root, n) && ALLOC(head, n) && ALLOC(next, n) && ALLOC(tail, n) &&
           ALLOC(cnt, n) && ALLOC(W, n) && ALLOC(nu2, n) && ALLOC(pnorm2, n) && ALLOC(active, n) &&
           ALLOC(final, n) && ALLOC(low, 2 * n) && ALLOC(mark, n) &&
           ALLOC(cand, n) && ALLOC(chain, n) && ALLOC(shared, n) && ALLOC(mx2, n);
  if (ok && q->euclid) ok = ALLOC(cidx, n) && ALLOC(cval, n) && ALLOC(clen, n);
#undef ALLOC
  if (!ok) return SLR_FAIL(SLR_ERR_NOMEM, "agglomerative clustering: out of memory (%lld points)",
                           (long long)n);
  for (int64_t e = 0; e < nnz; e++) s->colptr[q->indices[e] + 1]++;
  for (int64_t c = 0; c < d; c++) s->colptr[c + 1] += s->colptr[c];
  int64_t *fill = malloc((size_t)(d + 1) * sizeof *fill); /* next free place per column */
  if (!fill) return SLR_FAIL(SLR_ERR_NOMEM, "agglomerative clustering: out of memory (d = %lld)",
                             (long long)d);
  memcpy(fill, s->colptr, (size_t)(d + 1) * sizeof *fill);
  for (int64_t i = 0; i < n; i++)
    for (int64_t e = q->indptr[i]; e < q->indptr[i + 1]; e++) s->colpts[fill[q->indices[e]]++] = i;
  free(fill);
  for (int64_t i = 0; i < n; i++) {
    s->parent[i] = s->root_slot[i] = s->slot_root[i] = s->head[i] = s->tail[i] = i;
    s->next[i] = -1;
    s->W[i] = q->w ? (double)q->w[i] : 1.0;
    s->active[i] = 1;
    s->mark[i] = -1;
    s->cnt[i] = 1;
    const int64_t p0 = q->indptr[i];
    s->pnorm2[i] = s->nu2[i] = s->mx2[i] = sqnorm(q->values + p0, q->indptr[i + 1] - p0);
    if (q->euclid) SLR_TRY(sp_centroid_init(s, i));
    if (q->euclid && s->nu2[i] <= s->t2 * (1 + 1e-12)) s->low[s->nlow++] = (struct sp_low){s->nu2[i], i};
  }
  qsort(s->low, (size_t)s->nlow, sizeof *s->low, cmp_low);
  s->nsorted = s->nlow;
  return 0;
}

/* |cx - cy|^2 for the centroids of slots x and y (from their weighted sums). */
static double sp_centroid_d2(const sp_state *s, int64_t x, int64_t y) {
  const double wx = s->W[x], wy = s->W[y];
  const int32_t *ia = s->cidx[x], *ib = s->cidx[y];
  const double *va = s->cval[x], *vb = s->cval[y];
  const int64_t na = s->clen[x], nb = s->clen[y];
  double d2 = 0;
  for (int64_t i = 0, j = 0; i < na || j < nb;) {
    double v;
    if (j >= nb || (i < na && ia[i] < ib[j]))
      v = va[i++] / wx;
    else if (i >= na || ib[j] < ia[i])
      v = -vb[j++] / wy;
    else {
      v = va[i] / wx - vb[j] / wy;
      i++;
      j++;
    }
    d2 += v * v;
  }
  return d2;
}

/* Ward distance of slots x < y. */
static double sp_ward(sp_state *s, int64_t x, int64_t y) {
  const double wx = s->W[x], wy = s->W[y];
  if (s->cnt[x] == 1 && s->cnt[y] == 1)
    return point_dist(s->q, s->head[x], s->head[y]) * sqrt(2.0 * wx * wy / (wx + wy));
  return sqrt(2.0 * wx * wy / (wx + wy) * sp_centroid_d2(s, x, y));
}

/* The linkage distance of slots x and y, or INFINITY when it is > t. */
static double sp_dist(sp_state *s, int64_t x, int64_t y) {
  if (x > y) {
    const int64_t tmp = x;
    x = y;
    y = tmp;
  }
  double d;
  if (s->method == SLR_LINKAGE_WARD) {
    d = sp_ward(s, x, y);
  } else if (s->cnt[x] == 1 && s->cnt[y] == 1) {
    d = point_dist(s->q, s->head[x], s->head[y]);
  } else if (s->q->euclid && sqrt(sp_centroid_d2(s, x, y)) > s->t * (1 + 1e-9)) {
    /* the mean (and so the largest) member distance is >= |cx - cy| */
    return INFINITY;
  } else {
    const slr_linkage m = s->method;
    const double wxy = s->W[x] * s->W[y];
    double acc = m == SLR_LINKAGE_SINGLE ? INFINITY : 0;
    for (int64_t a = s->head[x]; a >= 0; a = s->next[a]) {
      double inner = 0;
      for (int64_t b = s->head[y]; b >= 0; b = s->next[b]) {
        const double g = point_dist(s->q, a, b);
        if (m == SLR_LINKAGE_SINGLE && g < acc) acc = g;
        if (m == SLR_LINKAGE_COMPLETE && g > acc) acc = g;
        if (m == SLR_LINKAGE_AVERAGE) inner += (s->q->w ? (double)s->q->w[b] : 1.0) * g;
      }
      if (m == SLR_LINKAGE_AVERAGE) acc += (s->q->w ? (double)s->q->w[a] : 1.0) * inner;
      /* the sum only grows, the maximum too: stop once past t */
      if (m == SLR_LINKAGE_COMPLETE && acc > s->t) return INFINITY;
      if (m == SLR_LINKAGE_AVERAGE && acc / wxy > s->t) return INFINITY;
    }
    d = m == SLR_LINKAGE_AVERAGE ? acc / wxy : acc;
  }
  return d <= s->t ? d : INFINITY;
}

/* The linkage distance of slots x and y without a shared column, from the
 * norms alone (Euclidean distances), or INFINITY when it is > t. */
static double sp_dist_disjoint(sp_state *s, int64_t x, int64_t y) {
  double d;
  switch (s->method) {
    case SLR_LINKAGE_SINGLE: d = sqrt(s->nu2[x] + s->nu2[y]); break;
    case SLR_LINKAGE_COMPLETE: d = sqrt(s->mx2[x] + s->mx2[y]); break;
    case SLR_LINKAGE_WARD: {
      const double wx = s->W[x], wy = s->W[y];
      d = sqrt(2.0 * wx * wy / (wx + wy) * (s->nu2[x] + s->nu2[y]));
      break;
    }
    default: {
      if (x > y) {
        const int64_t tmp = x;
        x = y;
        y = tmp;
      }
      if (s->cnt[x] == 1 && s->cnt[y] == 1) {
        d = sqrt(s->pnorm2[s->head[x]] + s->pnorm2[s->head[y]]);
        break;
      }
      const double wxy = s->W[x] * s->W[y];
      const int64_t *w = s->q->w;
      double acc = 0;
      for (int64_t a = s->head[x]; a >= 0; a = s->next[a]) {
        double inner = 0;
        for (int64_t b = s->head[y]; b >= 0; b = s->next[b])
          inner += (w ? (double)w[b] : 1.0) * sqrt(s->pnorm2[a] + s->pnorm2[b]);
        acc += (w ? (double)w[a] : 1.0) * inner;
        if (acc / wxy > s->t) return INFINITY;
      }
      d = acc / wxy;
    }
  }
  return d <= s->t ? d : INFINITY;
}

/* The clusters that may be within t of slot x, into s->cand. */
static void sp_candidates(sp_state *s, int64_t x) {
  const prepared *q = s->q;
  const double lim = s->t2 * (1 + 1e-12);
  s->stamp++;
  s->ncand = 0;
  s->mark[x] = s->stamp;
  for (int64_t p = s->head[x]; p >= 0; p = s->next[p])
    for (int64_t e = q->indptr[p]; e < q->indptr[p + 1]; e++) {
      const int64_t c = q->indices[e];
      for (int64_t k = s->colptr[c]; k < s->colptr[c + 1]; k++) {
        const int64_t y = sp_slot(s, s->colpts[k]);
        if (s->mark[y] == s->stamp || s->final[y]) continue;
        s->mark[y] = s->shared[y] = s->stamp;
        s->cand[s->ncand++] = y;
      }
    }
  if (!q->euclid || s->nu2[x] > lim) return;
  /* without a shared column: sqrt(nu2[x] + nu2[y]) bounds the distance;
   * the sorted part is scanned up to the first too far, the short tail whole */
  for (int64_t k = 0; k < s->nlow; k++) {
    if (s->nu2[x] + s->low[k].key > lim) {
      if (k < s->nsorted) k = s->nsorted - 1; /* the rest of the sorted part is farther */
      continue;
    }
    const int64_t y = s->low[k].slot;
    if (!sp_low_live(s, k) || s->mark[y] == s->stamp) continue;
    s->mark[y] = s->stamp;
    s->cand[s->ncand++] = y;
  }
}

/* The nearest cluster of x within t (-1: none); ties go to prev, then to
 * the lowest slot. */
static int64_t sp_nearest(sp_state *s, int64_t x, int64_t prev) {
  sp_candidates(s, x);
#define DIST(y) (s->shared[y] == s->stamp ? sp_dist(s, x, y) : sp_dist_disjoint(s, x, y))
  double best = prev >= 0 ? DIST(prev) : INFINITY;
  int64_t by = prev >= 0 && best <= s->t ? prev : -1;
  for (int64_t k = 0; k < s->ncand; k++) {
    const int64_t y = s->cand[k];
    if (y == prev) continue;
    const double d = DIST(y);
#undef DIST
    if (d < best || (d == best && d <= s->t && by != prev && y < by)) {
      best = d;
      by = y;
    }
  }
  return best <= s->t ? by : -1;
}

/* The sum of the weighted sums of slots lo and hi into hi. */
static int sp_centroid_merge(sp_state *s, int64_t lo, int64_t hi) {
  const int64_t na = s->clen[lo], nb = s->clen[hi];
  int32_t *idx = malloc((size_t)(na + nb) * sizeof(int32_t));
  double *val = malloc((size_t)(na + nb) * sizeof(double));
  if (!idx || !val) {
    free(idx);
    free(val);
    return SLR_FAIL(SLR_ERR_NOMEM, "agglomerative clustering: out of memory");
  }
  const int32_t *ia = s->cidx[lo], *ib = s->cidx[hi];
  const double *va = s->cval[lo], *vb = s->cval[hi];
  int64_t e = 0;
  for (int64_t i = 0, j = 0; i < na || j < nb; e++) {
    if (j >= nb || (i < na && ia[i] < ib[j])) {
      idx[e] = ia[i];
      val[e] = va[i++];
    } else if (i >= na || ib[j] < ia[i]) {
      idx[e] = ib[j];
      val[e] = vb[j++];
    } else {
      idx[e] = ia[i];
      val[e] = va[i++] + vb[j++];
    }
  }
  free(s->cidx[lo]);
  free(s->cval[lo]);
  free(s->cidx[hi]);
  free(s->cval[hi]);
  s->cidx[lo] = NULL;
  s->cval[lo] = NULL;
  s->cidx[hi] = idx;
  s->cval[hi] = val;
  s->clen[hi] = e;
  if (s->method == SLR_LINKAGE_WARD) s->nu2[hi] = sqnorm(val, e) / (s->W[hi] * s->W[hi]);
  return 0;
}

/* Merge slot lo into slot hi (lo < hi). */
static int sp_merge(sp_state *s, int64_t lo, int64_t hi) {
  int64_t rl = s->slot_root[lo], rh = s->slot_root[hi];
  if (s->cnt[lo] > s->cnt[hi]) { /* the larger cluster's tree is the root */
    const int64_t t = rl;
    rl = rh;
    rh = t;
  }
  s->parent[rl] = rh;
  s->root_slot[rh] = hi;
  s->slot_root[hi] = rh;
  s->next[s->tail[hi]] = s->head[lo];
  s->tail[hi] = s->tail[lo];
  s->W[hi] += s->W[lo];
  s->cnt[hi] += s->cnt[lo];
  s->active[lo] = 0;
  const double old_key = s->nu2[hi];
  if (s->q->euclid) SLR_TRY(sp_centroid_merge(s, lo, hi));
  if (s->method != SLR_LINKAGE_WARD && s->nu2[lo] < s->nu2[hi]) s->nu2[hi] = s->nu2[lo];
  if (s->mx2[lo] > s->mx2[hi]) s->mx2[hi] = s->mx2[lo];
  const double lim = s->t2 * (1 + 1e-12);
  if (s->q->euclid && s->nu2[hi] <= lim && (s->nu2[hi] != old_key || old_key > lim))
    sp_low_insert(s, hi); /* a new key, or new in the list */
  return 0;
}

/* Whether every merge is certainly <= t: the distances are bounded (1 for
 * cosine and jensen_shannon, sqrt(|a|^2 + |b|^2) for the Euclidean ones,
 * so is every linkage but Ward). */
static int sp_all_within(const sp_state *s) {
  if (s->method == SLR_LINKAGE_WARD) return 0;
  if (!s->q->euclid) return s->t >= 1 + 1e-12;
  double mx = 0;
  for (int64_t i = 0; i < s->q->n; i++)
    if (s->pnorm2[i] > mx) mx = s->pnorm2[i];
  return s->t2 >= 2 * mx * (1 + 1e-12);
}

/* Single linkage: the connected components of the points at distance <=
 * t. Pairs with a shared column come from the columns; without one, a pair
 * is within t when sqrt(|a|^2 + |b|^2) <= t, and then both are within t of
 * the point of smallest norm, so joining every point within t of that point
 * gives the same components. */
static void sp_single(sp_state *s) {
  const prepared *q = s->q;
  const int64_t n = q->n;
  int64_t p0 = 0;
  for (int64_t i = 1; i < n; i++)
    if (s->pnorm2[i] < s->pnorm2[p0]) p0 = i;
  for (int64_t i = 0; q->euclid && i < n; i++)
    if (i != p0 && sqrt(s->pnorm2[i] + s->pnorm2[p0]) <= s->t) {
      const int64_t a = sp_find(s, i), b = sp_find(s, p0);
      if (a != b) s->parent[a] = b;
    }
  for (int64_t c = 0; c < q->d; c++)
    for (int64_t i = s->colptr[c]; i < s->colptr[c + 1]; i++)
      for (int64_t j = i + 1; j < s->colptr[c + 1]; j++) {
        const int64_t a = sp_find(s, s->colpts[i]), b = sp_find(s, s->colpts[j]);
        if (a != b && point_dist(q, s->colpts[i], s->colpts[j]) <= s->t) s->parent[a] = b;
      }
}

/* The nearest-neighbour chain restricted to merges <= t. */
static int sp_run(sp_state *s) {
  const int64_t n = s->q->n;
  int64_t start = 0, len = 0;
  if (sp_all_within(s)) {
    for (int64_t i = 0; i + 1 < n; i++) SLR_TRY(sp_merge(s, i, i + 1));
    return 0;
  }
  if (s->method == SLR_LINKAGE_SINGLE) {
    sp_single(s);
    return 0;
  }
  for (;;) {
    if (len == 0) {
      while (start < n && (!s->active[start] || s->final[start])) start++;
      if (start == n) return 0;
      s->chain[len++] = start;
    }
    const int64_t x = s->chain[len - 1], prev = len > 1 ? s->chain[len - 2] : -1;
    const int64_t y = sp_nearest(s, x, prev);
    if (y < 0) {
      s->final[x] = 1;
      len--;
    } else if (y == prev) {
      SLR_TRY(sp_merge(s, x < y ? x : y, x < y ? y : x));
      len -= 2;
    } else if (len < n) {
      s->chain[len++] = y;
    } else {
      /* a chain longer than n means inconsistent distances (not finite?) */
      return SLR_FAIL(SLR_ERR, "agglomerative clustering: the nearest-neighbour chain does not "
                      "close (%lld points)", (long long)n);
    }
  }
}

/* The dense path (condensed distances, the tree, the cut): for few points
 * in the regime where most clusters are candidates of most others. */
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

/* Whether more than an eighth of the points have a point without a shared
 * column within t (Euclidean distances). */
static int near_dense(const prepared *q, double t) {
  if (!q->euclid) return 0;
  double *n2 = malloc((size_t)q->n * sizeof(double)), pmin = INFINITY;
  if (!n2) return 0;
  for (int64_t i = 0; i < q->n; i++) {
    n2[i] = sqnorm(q->values + q->indptr[i], q->indptr[i + 1] - q->indptr[i]);
    if (n2[i] < pmin) pmin = n2[i];
  }
  int64_t low = 0;
  for (int64_t i = 0; i < q->n; i++) low += n2[i] + pmin <= t * t;
  free(n2);
  return low > q->n / 8;
}

static int cut_sparse(const prepared *q, slr_linkage method, double t, int32_t *labels,
                      int64_t *nclusters) {
  sp_state s;
  int rc = sp_init(&s, q, method, t);
  if (!rc) rc = sp_run(&s);
  if (!rc) {
    /* labels by first appearance of each final slot */
    int32_t next = 0;
    for (int64_t i = 0; i < q->n; i++) s.mark[i] = -1;
    for (int64_t i = 0; i < q->n; i++) {
      const int64_t y = sp_slot(&s, i);
      if (s.mark[y] < 0) s.mark[y] = next++;
      labels[i] = (int32_t)s.mark[y];
    }
    if (nclusters) *nclusters = next;
  }
  sp_free(&s);
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
  const int64_t dense_max = x->dense_max == 0 ? 2048 : x->dense_max;
  const int dense = x->n <= dense_max && method != SLR_LINKAGE_SINGLE && near_dense(&q, t);
  int rc = dense ? cut_dense(&q, method, t, labels, nclusters)
                 : cut_sparse(&q, method, t, labels, nclusters);
  free(q.values);
  return rc;
}
