/* refine: the SLR step (pseudo-label refinement), as DESIGN.md §1 defines
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

/* ---- soft labels and the soft targets of training ---------------------------- */

/* The projection P of the IoU matrix C (K_prev x K_cur): rows normalised to
 * sum 1 (a row of zeros stays zero). *proj is allocated. Local. */
int slr_refine_projection(const slr_csr *iou, slr_csr *proj);

/* The soft label of a (previous, current) label pair, the one formula of
 * the SLR step: s = alpha e_cur + (1 - alpha) P[prev], with e_cur zero for
 * a current outlier (cur < 0) and P[prev] zero for a previous outlier
 * (prev < 0) or when proj is NULL (no previous labels). Writes the nonzero
 * entries in ascending column order into cols and vals (room for the
 * entries of P[prev] plus one) and returns their count. Local. */
int64_t slr_refine_soft_label(double alpha, const slr_csr *proj, int64_t prev, int64_t cur,
                              int32_t *cols, double *vals);

/* The soft targets of the training loss: each sample's soft label over the
 * current clusters, carried to the clusters of the memory (the refined
 * clusters, or the current ones) by the share of each current cluster that
 * went to each memory cluster, and normalised to sum 1. Built from the
 * whole label vectors, which every rank holds. */
typedef struct {
  double alpha;
  int64_t n, k_mem;           /* samples; clusters of the memory */
  const int32_t *y_prev;      /* (n) or NULL: not owned */
  const int32_t *y_cur;       /* (n): not owned */
  slr_csr proj;               /* K_prev x K_cur */
  slr_csr carry;              /* K_cur x k_mem */
  int32_t *cols;              /* scratch for one soft label */
  double *vals;
} slr_soft_targets;

/* y_prev NULL: no previous labels (the target is the current cluster's
 * carry). y_mem: the labels that index the memory (refined or current).
 * iou: the IoU matrix of this epoch's refinement (ignored without y_prev).
 * Local. */
int slr_soft_targets_init(slr_soft_targets *st, double alpha, const slr_csr *iou, int64_t n,
                          const int32_t *y_prev, const int32_t *y_cur, const int32_t *y_mem,
                          int64_t k_mem);
/* The target of sample i (0 <= i < n) into t (k_mem floats); returns 1, or
 * 0 (t all zero) when the sample has no soft label. Local. */
int slr_soft_targets_row(slr_soft_targets *st, int64_t i, float *t);
void slr_soft_targets_free(slr_soft_targets *st);

#ifdef __cplusplus
}
#endif
#endif
