/* cluster: exact k nearest neighbours (sgemm tiles on a ring of the ranks,
 * pruned by a bound from the principal axes), the k-reciprocal Jaccard
 * distance (sparse),
 * DBSCAN on sparse neighbourhoods (distributed), and agglomerative
 * clustering of weighted points for the SLR step. */
#ifndef SLR_CLUSTER_H
#define SLR_CLUSTER_H

#include <mpi.h>
#include <stdint.h>

#include "slr/core.h"
#include "slr/dist.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- distances, k nearest neighbours, k-reciprocal Jaccard, DBSCAN ---------- */

/* Feature rows are sharded over the ranks of `comm` in contiguous blocks in
 * rank order (any block sizes, a rank may hold none; slr_shard_rows gives the
 * usual balanced layout). `x` is this rank's (nrows, d) float32 block,
 * row-major; `n` is the global row count, the same on every rank. Neighbour
 * and column indices are global row indices (int32_t: n < 2^31).
 *
 * Similarities are inner products s(i,j) = f_i . f_j of L2-normalised rows,
 * so that the squared Euclidean distance is 2 - 2 s(i,j); "nearest" means the
 * largest s, ties broken by the lower index. */

/* Normalise each row to unit L2 norm (the norm in double, each value
 * divided in double and rounded to float, the same as NumPy's
 * (x / norm(x.astype(float64))).astype(float32)). Fails, naming the global
 * row, on a non-finite value or a zero row. Local (agree afterwards). */
int slr_l2_normalize(float *x, int64_t nrows, int64_t d, int64_t row0);

/* What one slr_knn_compute call did (rank-local). */
typedef struct {
  int pruned;          /* 1: the pruned product ran (0: the full one) */
  double est_scored;   /* the estimated fraction of pairs to score exactly (0 when
                          no basis was made) */
  int64_t pairs;       /* pairs of rows this rank met (a symmetric pair once) */
  int64_t scored;      /* of those, pairs given an exact inner product */
  int64_t bytes_sent;  /* bytes this rank sent (collectives: its own part to each
                          other rank) */
  double t_basis;      /* seconds for the principal axes and the coordinates */
  double t_seed;       /* seconds for the seeds and the estimate of step 0 */
  double est_pilot;    /* the pilot's estimate of that fraction */
  double t_pilot;      /* seconds for the pilot */
} slr_knn_stats;

/* The exact k nearest neighbours of this rank's rows among all n rows (the
 * row itself included, so it is usually the first). */
typedef struct {
  int64_t n;      /* global row count */
  int64_t row0;   /* first global row of this rank */
  int64_t nrows;  /* rows of this rank */
  int k;          /* neighbours per row */
  int32_t *idx;   /* (nrows, k) global indices, nearest first */
  float *sim;     /* (nrows, k) inner products f_i . f_j, same order */
  float *smin;    /* (nrows) smallest inner product of the row with any row
                     (the farthest item), when asked for; else NULL */
  slr_knn_stats stats;
} slr_knn;

typedef enum {
  SLR_KNN_AUTO = 0,  /* pruned when n >= 4096 and d >= 1024, with the fallback */
  SLR_KNN_FULL,      /* the full product */
  SLR_KNN_PRUNED,    /* pruned whatever the size (still with the fallback) */
} slr_knn_method;

/* Options of slr_knn_compute; zero-initialised means the defaults. */
typedef struct {
  int tile;            /* rows/columns of one product tile (default 1024) */
  int farthest;        /* also fill smin (used by the test-time re-ranking; needs
                          the full product) */
  slr_knn_method method;
  int dims;            /* principal axes p of the bound (default 64 for d >= 1024,
                          else 32) */
  double max_scored;   /* fall back to the full product when more than this
                          fraction of pairs would be scored exactly (0.05) */
} slr_knn_opts;

/* Exact k nearest neighbours (1 <= k <= n). Each rank holds its rows and
 * one visiting block (two with 4 or more ranks); the blocks pass around a
 * ring of the ranks, each pair of blocks meets once (the product is
 * symmetric) and the running top-k lists of the other block's rows are sent
 * back to their owner.
 *
 * Full product: X X^T tile by tile with sgemm, never stored.
 *
 * Pruned product (the same neighbours): the p leading principal axes P of a
 * sample of about 1024 rows (slr_pca_basis: pssyrk + pssyevd on the BLACS
 * grid), orthonormalised in double, give every row zt = [P (x - mean),
 * |residual|] (all-gathered: n (p + 2) floats per rank), and
 * |zt_i - zt_j|^2 <= |x_i - x_j|^2 = 2 - 2 s(i,j). Step 0 seeds each row's
 * bound with the exact similarities of its k best candidates by the bound
 * in its own block; a pair is scored exactly (sdot) only when its bound is
 * within 2 - 2 t + delta of either row's current k-th similarity t (delta =
 * 16 d FLT_EPSILON covers float rounding of unit rows), so every skipped
 * pair is provably farther than the k-th neighbour. First a pilot
 * estimates the fraction of pairs to score on 512 rows per rank alone
 * (their own axes, their k'-th similarity among them as the bound, k' = 1
 * + (k - 1) (m - 1) / (n - 1) rounded up);
 * before step 0 it is estimated again on 256 rows per rank with the real
 * bounds; above `max_scored` either time the call falls back to the full
 * product (random features: the pilot costs a few hundred milliseconds).
 * Not used with `farthest`.
 *
 * Memory per rank: its rows, one or two visiting blocks, one tile, O(nrows
 * k), and with pruning n (p + 2) floats. `opts` may be NULL. Collective on
 * comm. */
int slr_knn_compute(MPI_Comm comm, const float *x, int64_t nrows, int64_t n, int64_t d,
                    int k, const slr_knn_opts *opts, slr_knn *out);
/* Local. */
void slr_knn_free(slr_knn *knn);

/* Rows of a sparse matrix held by this rank (CSR over global columns). */
typedef struct {
  int64_t n;        /* global rows = columns */
  int64_t row0;     /* first global row of this rank */
  int64_t nrows;
  int64_t *indptr;  /* (nrows + 1) */
  int32_t *indices; /* (nnz) global column indices, ascending within a row */
  float *values;    /* (nnz) */
} slr_sparse;

/* Local. */
void slr_sparse_free(slr_sparse *m);

/* k-reciprocal Jaccard distance, as compute_jaccard_distance of Cluster
 * Contrast and SpCL defines it (docs/cluster.md spells out each step):
 *   - rank[i, 0..k1-1]: the k1 nearest neighbours of i, i itself included;
 *   - R(i, k) = { j in rank[i, :k+1] : i in rank[j, :k+1] } for k = k1 and
 *     k = round-half-even(k1/2) (the slices see at most k1 columns);
 *   - expansion: for c in R(i, k1), add R(c, k1/2) when more than 2/3 of it
 *     lies in R(i, k1);
 *   - V[i, j] = softmax over the expanded set of -(2 - 2 f_i . f_j);
 *   - query expansion: V[i] = mean of V[j] over j in rank[i, :k2];
 *   - jac(i, j) = 1 - S / (2 - S), S = sum_c min(V[i,c], V[j,c]), clamped
 *     at 0; pairs without shared support have distance 1 and are not stored.
 * `knn` must hold at least k1 neighbours per row (from slr_knn_compute on
 * the same rows); `x` must be L2-normalised. The result keeps, for each of
 * this rank's rows, the pairs with shared support and distance <= max_dist
 * (max_dist >= 1 keeps every pair with shared support), self included; the
 * values are symmetric to the bit. Memory per rank: the kNN index lists of
 * all rows (n k1 int32) and the sparse V rows of all rows (replicated,
 * at most k2 k1 (k1/2 + 2) entries per row, typically a few hundred), plus the
 * kept pairs.
 * Used for pseudo labels (k1 = 30, k2 = 6) and, by the evaluation, for
 * test-time re-ranking (k1 = 20, k2 = 6, then (1 - lambda) jac + lambda d
 * with lambda = 0.3, taking jac = 1 for pairs not stored). Collective on comm. */
int slr_jaccard_compute(MPI_Comm comm, const float *x, int64_t d, const slr_knn *knn,
                        int k1, int k2, double max_dist, slr_sparse *out);

/* Options of slr_jaccard_compute_ex. Zero values give slr_jaccard_compute
 * (k1, k2 and max_dist as there). */
typedef struct {
  int k1, k2;
  double max_dist;
  /* only the local rows r with rows[r] != 0 get their distances (nrows
   * flags; NULL = all); the others are left empty. The sets, V and the query
   * expansion still cover all n rows, so the kept rows are equal to the bit
   * to the full computation's. */
  const unsigned char *rows;
  /* 1: the sets are taken over k + 1 list entries, R(i, k) = { j in
   * rank[i, :k+1] : i in rank[j, :k+1] } with the full lists (k1 + 1
   * neighbours, so `knn` needs k >= k1 + 1), as the re_ranking function of
   * Zhong et al. slices a full argsort; 0: as above (k1 entries). */
  int window_plus_one;
  /* weights V = softmax of -(2 - 2 f_i . f_j)^power / scale[r] (power 1 or
   * 2, 0 means 1; scale: nrows positive values of the local rows, NULL = 1) */
  int power;
  const float *scale;
} slr_jaccard_opts;

/* Bytes this rank sent in its last slr_jaccard_compute(_ex) call (the ring
 * of row blocks, and for each all-gather its own part times the other
 * ranks). Local. */
int64_t slr_jaccard_bytes_sent(void);

/* slr_jaccard_compute with the options above (the generalisations used by
 * the test-time re-ranking). Collective on comm. */
int slr_jaccard_compute_ex(MPI_Comm comm, const float *x, int64_t d, const slr_knn *knn,
                           const slr_jaccard_opts *o, slr_sparse *out);

/* DBSCAN on a sparse precomputed distance matrix, with the labels of
 * scikit-learn's DBSCAN(eps, min_samples, metric='precomputed') on the
 * dense matrix whose missing entries are 1: j is a neighbour of i when
 * d(i,j) <= eps, i itself always counted; i is core when it has at least
 * min_samples neighbours; clusters are the connected components of the
 * core-core neighbour graph, numbered 0, 1, ... in the order of their
 * lowest-index core point; a non-core point with core neighbours joins the
 * lowest-numbered of their clusters; the others get -1. The matrix must be
 * symmetric (as slr_jaccard_compute's is); stored entries > eps are ignored.
 * With eps >= 1 every pair is a neighbour. `labels` (n int32) receives the
 * labels of all rows on every rank (replicated); n_clusters may be NULL.
 * Rank-local neighbourhoods, union-find per rank, a tree merge of the
 * forests across ranks: O(n) memory per rank beyond the matrix.
 * Collective on comm. */
int slr_dbscan(MPI_Comm comm, const slr_sparse *dist, double eps, int min_samples,
               int32_t *labels, int64_t *n_clusters);

/* Parameters of the pseudo-label clustering (peer defaults). */
typedef struct {
  int k1;           /* 30 */
  int k2;           /* 6 */
  double eps;       /* 0.6 */
  int min_samples;  /* 4 */
} slr_cluster_params;

/* Local. */
void slr_cluster_params_default(slr_cluster_params *p);

/* Timings and sizes of one slr_cluster_labels call (rank-local except
 * where said). */
typedef struct {
  double t_knn, t_jaccard, t_dbscan;  /* seconds */
  int64_t nnz_jaccard;                /* pairs kept, summed over ranks */
  int64_t n_clusters, n_outliers;
  slr_knn_stats knn;                  /* the kNN call's (rank-local) */
  int64_t bytes_jaccard;              /* bytes this rank sent in the Jaccard step */
} slr_cluster_stats;

/* Pseudo labels of one adaptation epoch: kNN (k = k1), k-reciprocal Jaccard
 * (pairs with distance <= eps only), DBSCAN. `x` is this rank's block of
 * L2-normalised rows (contiguous blocks in rank order, see above); `labels`
 * (n int32, -1 = outlier) is filled on every rank (replicated). `stats` may
 * be NULL. Fails on n < k1 or bad parameters. Collective on comm. */
int slr_cluster_labels(MPI_Comm comm, const float *x, int64_t nrows, int64_t n, int64_t d,
                       const slr_cluster_params *p, int32_t *labels,
                       slr_cluster_stats *stats);

/* slr_cluster_labels with options for the kNN step (NULL = defaults, as
 * slr_cluster_labels). Collective on comm. */
int slr_cluster_labels_opts(MPI_Comm comm, const float *x, int64_t nrows, int64_t n, int64_t d,
                            const slr_cluster_params *p, const slr_knn_opts *knn_opts,
                            int32_t *labels, slr_cluster_stats *stats);


/* ---- agglomerative clustering --------------------------------------------- */

/* Hierarchical clustering of weighted points, equal to
 * scipy.cluster.hierarchy.linkage (Euclidean metric) + fcluster run on the
 * expanded points, where a point of weight w stands for w identical samples.
 * A weighted point behaves as a cluster of w copies already merged at height
 * 0, so the Lance-Williams updates run on the distinct points with cluster
 * sizes = weights (for Ward the starting distance of two weighted points is
 * sqrt(2 wi wj / (wi + wj)) * |xi - xj|, which is scipy's Ward height of the
 * two groups of copies). slr_agglo_tree_dist builds the whole tree with the
 * nearest-neighbour chain (all four linkages are reducible): O(n^2) time and
 * n^2 doubles of memory; slr_agglo_cut_sparse gives the flat cut at a
 * threshold of sparse points in O(nnz + n + d) memory.
 * Ties in distance are broken as scipy's nn_chain breaks them only when they
 * are met in the same order; partitions are compared on tie-free inputs. */

typedef enum {
  SLR_LINKAGE_SINGLE = 0,
  SLR_LINKAGE_COMPLETE,
  SLR_LINKAGE_AVERAGE,
  SLR_LINKAGE_WARD,
} slr_linkage;

/* "single", "complete", "average", "ward" <-> slr_linkage. parse returns
 * SLR_ERR_CONFIG (message names the value) for an unknown name. Local. */
int slr_linkage_parse(const char *name, slr_linkage *out);
const char *slr_linkage_name(slr_linkage method);

/* One row of the dendrogram in scipy's linkage-matrix form: clusters a < b
 * are merged at `height`; an id < n is a point, n + i the cluster made by
 * row i. Rows are sorted by height (stable). `weight` is the total weight
 * of the new cluster (scipy's count on the expanded points). */
typedef struct {
  int64_t a, b;
  double height;
  int64_t weight;
} slr_merge;

/* Dendrogram of n points from their Euclidean distances:
 * `full` = 1: an n x n symmetric matrix (row-major, diagonal ignored);
 * `full` = 0: scipy's condensed form (the upper triangle by rows,
 * n (n - 1) / 2 values), with weights w (n; NULL = all 1; each >= 1). z
 * receives n - 1 rows (nothing for n <= 1). Distances must be finite and
 * >= 0. Local. */
int slr_agglo_tree_dist(const double *dist, int64_t n, int full, const int64_t *w,
                        slr_linkage method, slr_merge *z);

/* fcluster(Z, t, 'distance') on the expanded points: merges of height <= t
 * are kept (t >= 0). labels (n) are renumbered 0..K-1 in the order of first
 * appearance; *nclusters = K (may be NULL). Local. */
int slr_agglo_cut_distance(const slr_merge *z, int64_t n, double t, int32_t *labels,
                           int64_t *nclusters);

/* Distances between sparse non-negative points (the SLR soft labels):
 *   euclidean       |a - b|;
 *   cosine          1 - a.b / (|a| |b|);
 *   jensen_shannon  scipy's jensenshannon(a, b, base=2) on the points
 *                   normalised to sum 1 (the square root of the
 *                   Jensen-Shannon divergence in bits);
 *   hellinger       |sqrt(p) - sqrt(q)| / sqrt(2) on the points p, q
 *                   normalised to sum 1.
 * Two points with no shared support are sqrt(|a|^2 + |b|^2) apart
 * (euclidean) or exactly 1 apart (the other three, whose values lie in
 * [0, 1]); points with shared support are closer than that. */
typedef enum {
  SLR_AGGLO_EUCLIDEAN = 0,
  SLR_AGGLO_COSINE,
  SLR_AGGLO_JENSEN_SHANNON,
  SLR_AGGLO_HELLINGER,
} slr_agglo_metric;

/* "euclidean" | "cosine" | "jensen_shannon" | "hellinger"; SLR_ERR_CONFIG
 * naming the value otherwise. Local. */
int slr_agglo_metric_parse(const char *name, slr_agglo_metric *out);
const char *slr_agglo_metric_name(slr_agglo_metric metric);

/* Sparse non-negative weighted points in CSR form: row i has the values
 * values[indptr[i] .. indptr[i+1]) at the columns indices[...] (ascending,
 * 0 <= column < d), each row non-empty; w[i] >= 1 (NULL = all 1). */
typedef struct {
  int64_t n, d;
  const int64_t *indptr;
  const int32_t *indices;
  const double *values;
  const int64_t *w;
  /* slr_agglo_cut_sparse: up to this many points (0: 2048; -1: never), the
   * dense path serves when more than an eighth of the points have a point
   * without a shared column within the threshold (Euclidean distances),
   * where the sparse search is slow */
  int64_t dense_max;
} slr_sparse_points;

/* The flat clusters of linkage(metric) + fcluster(t, 'distance') on the
 * expanded points (as slr_agglo_tree_dist + slr_agglo_cut_distance on the
 * distances of `metric`), computed without an n x n matrix (see
 * docs/eval.md). labels (n) are numbered 0..K-1 in the order of first
 * appearance; *nclusters = K (may be NULL). Ward needs the euclidean or the
 * hellinger distance (both are Euclidean distances between points).
 * Errors: bad CSR, a non-finite or negative value, an empty row, t < 0, Ward
 * with cosine or jensen_shannon. Local. */
int slr_agglo_cut_sparse(const slr_sparse_points *x, slr_linkage method, slr_agglo_metric metric,
                         double t, int32_t *labels, int64_t *nclusters);

#ifdef __cplusplus
}
#endif
#endif
