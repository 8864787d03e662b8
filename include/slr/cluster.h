/* cluster: distances and exact k nearest neighbours (ScaLAPACK psgemm on
 * the BLACS grid, in panels), the k-reciprocal Jaccard distance (sparse),
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

/* ---- agglomerative clustering --------------------------------------------- */

/* Hierarchical clustering of weighted points, equal to
 * scipy.cluster.hierarchy.linkage (Euclidean metric) + fcluster run on the
 * expanded points, where a point of weight w stands for w identical samples.
 * A weighted point behaves as a cluster of w copies already merged at height
 * 0, so the Lance-Williams updates run on the distinct points with cluster
 * sizes = weights (for Ward the starting distance of two weighted points is
 * sqrt(2 wi wj / (wi + wj)) * |xi - xj|, which is scipy's Ward height of the
 * two groups of copies). The tree is built with the nearest-neighbour chain
 * (all four linkages are reducible): O(n^2) time and n^2 doubles of memory.
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

/* Dendrogram of n points x (n, d) row-major with weights w (n; NULL = all
 * 1; each >= 1). z receives n - 1 rows (nothing for n <= 1). Euclidean
 * distances are computed with a Gram product (cblas_dsyrk), pairs closer
 * than 1% of their norms exactly. Errors: n < 0, d < 1, a non-finite
 * coordinate, a weight < 1. Local. */
int slr_agglo_tree_points(const double *x, int64_t n, int64_t d, const int64_t *w,
                          slr_linkage method, slr_merge *z);

/* The same for sparse points (the SLR soft labels) in CSR form: row i has
 * the values values[indptr[i] .. indptr[i+1]) at the columns indices[...]
 * (any order, no column twice, 0 <= column < d). Distances from sparse dot
 * products, close pairs exactly, as above. Local. */
int slr_agglo_tree_csr(const int64_t *indptr, const int32_t *indices, const double *values,
                       int64_t n, int64_t d, const int64_t *w, slr_linkage method,
                       slr_merge *z);

/* The same from precomputed Euclidean distances between the n points:
 * `full` = 1: an n x n symmetric matrix (row-major, diagonal ignored);
 * `full` = 0: scipy's condensed form (the upper triangle by rows,
 * n (n - 1) / 2 values). Distances must be finite and >= 0. Local. */
int slr_agglo_tree_dist(const double *dist, int64_t n, int full, const int64_t *w,
                        slr_linkage method, slr_merge *z);

/* fcluster(Z, t, 'distance') on the expanded points: merges of height <= t
 * are kept (t >= 0). labels (n) are renumbered 0..K-1 in the order of first
 * appearance; *nclusters = K (may be NULL). Local. */
int slr_agglo_cut_distance(const slr_merge *z, int64_t n, double t, int32_t *labels,
                           int64_t *nclusters);

/* fcluster(Z, kmax, 'maxclust') on the expanded points (kmax >= 1): at most
 * kmax clusters, cut at the lowest merge height scipy's search settles on.
 * scipy's search never tests the lowest merge, so on the expanded points at
 * least the two lowest merges (of height 0 when weights > 1 leave copies to
 * merge) are kept even when kmax >= n; this is reproduced. w as given to
 * the tree (NULL = all 1). Local. */
int slr_agglo_cut_maxclust(const slr_merge *z, int64_t n, const int64_t *w, int64_t kmax,
                           int32_t *labels, int64_t *nclusters);

#ifdef __cplusplus
}
#endif
#endif
