/* refine: the SLR step (pseudo-label refinement), as docs/train.md defines
 * it. From the previous and current DBSCAN labels of the same samples:
 *   1. the IoU matrix C (K_prev x K_cur, sparse) between previous and current
 *      clusters, from pair counts all-reduced over ranks;
 *   2. the projection P = C with rows normalised to sum 1;
 *   3. soft labels s_i = alpha * onehot(y_cur(i)) + (1 - alpha) * P[y_prev(i)]
 *      (the onehot is zero for a current outlier, the projection zero for a
 *      previous outlier);
 *   4. hard labels: `none` keeps y_cur, `argmax` takes argmax s_i, and
 *      `hierarchical` runs agglomerative clustering on the soft labels (as
 *      points in R^K_cur, Euclidean) cut at a distance threshold. Samples with
 *      the same pair (y_prev, y_cur) have the same s_i, so the clustering runs
 *      on the distinct pairs weighted by their counts.
 * A sample with a zero soft label (outlier at both epochs) stays an outlier;
 * a current outlier that had a cluster at t-1 may be taken back into a
 * cluster when `reclaim_outliers` is set. Refined clusters are numbered
 * 0..K-1 in the order of their lowest global sample index (as DBSCAN numbers
 * its clusters), so the result does not depend on the rank count. */
#ifndef SLR_REFINE_H
#define SLR_REFINE_H

#include <mpi.h>
#include <stdint.h>

#include "slr/cluster.h"
#include "slr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SLR_REFINE_NONE = 0,
  SLR_REFINE_ARGMAX,
  SLR_REFINE_HIERARCHICAL,
} slr_refine_mode;

/* "none" | "argmax" | "hierarchical"; SLR_ERR_CONFIG naming the value
 * otherwise. Local. */
int slr_refine_mode_parse(const char *name, slr_refine_mode *out);
const char *slr_refine_mode_name(slr_refine_mode mode);

typedef struct {
  slr_refine_mode mode;
  double alpha;         /* weight of the current label, in [0, 1] */
  slr_linkage linkage;  /* hierarchical */
  double threshold;     /* hierarchical: merges of height <= threshold are kept */
  int reclaim_outliers; /* current outliers with a previous cluster may join one */
} slr_refine_params;

/* A compressed sparse row matrix: row r has the entries
 * indices[indptr[r] .. indptr[r+1]) (column indices ascending) and values. */
typedef struct {
  int64_t nrows, ncols;
  int64_t *indptr;  /* nrows + 1 */
  int32_t *indices; /* nnz */
  double *values;   /* nnz */
} slr_csr;

void slr_csr_free(slr_csr *m);
static inline int64_t slr_csr_nnz(const slr_csr *m) { return m->indptr ? m->indptr[m->nrows] : 0; }

typedef struct {
  int32_t *labels;   /* refined hard labels of the local rows, -1 = outlier */
  slr_csr soft;      /* soft labels of the local rows (n_local x K_cur) */
  slr_csr iou;       /* C, K_prev x K_cur, the same on every rank */
  int64_t k_prev, k_cur;  /* cluster counts of the inputs */
  int64_t nclusters;      /* refined clusters */
  int64_t noutliers;      /* refined outliers, over all ranks */
  int64_t npairs;         /* distinct (y_prev, y_cur) pairs, over all ranks */
  int64_t nclustered;     /* distinct pairs that entered the clustering */
} slr_refine_result;

void slr_refine_result_free(slr_refine_result *r);

/* The SLR step over the rows [row0, row0 + n) that this rank holds (rows
 * sharded contiguously over comm in rank order). y_prev is NULL at the first
 * adaptation epoch (no refinement: labels = y_cur, soft = onehot). Labels
 * are >= -1; cluster counts are max + 1 over all ranks. Errors (a label
 * below -1, bad parameters) are agreed over ranks. Collective on comm. */
int slr_refine(MPI_Comm comm, const slr_refine_params *p, int64_t row0, int64_t n,
               const int32_t *y_prev, const int32_t *y_cur, slr_refine_result *out);

#ifdef __cplusplus
}
#endif
#endif
