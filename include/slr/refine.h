/* refine: the SLR step (pseudo-label refinement). From the previous and
 * current labels of the same samples:
 *   1. the IoU matrix C (K_prev x K_cur, sparse) between previous and current
 *      clusters, from pair counts all-reduced over ranks;
 *   2. the projection P of the previous clusters into the current label
 *      space (`projection`): `row` C with rows normalised to sum 1, `iou` C
 *      itself, `transition` |A_a & B_b| / |A_a| (the share of previous
 *      cluster a, outliers included, that went to current cluster b);
 *   3. soft labels s_i = alpha * onehot(y_cur(i)) + (1 - alpha) * P[y_prev(i)]
 *      (the onehot is zero for a current outlier, the projection zero for a
 *      previous outlier);
 *   4. hard labels: `none` keeps y_cur, `argmax` takes argmax s_i, and
 *      `hierarchical` runs agglomerative clustering on the soft labels
 *      (`distance`, `linkage`) cut at a distance threshold (`threshold`, or
 *      threshold * alpha with threshold_mode `alpha`). Samples with the same
 *      pair (y_prev, y_cur) have the same s_i, so the clustering runs on the
 *      distinct pairs weighted by their counts.
 * A sample with a zero soft label (outlier at both epochs) stays an outlier;
 * a current outlier that had a cluster at t-1 may be taken back into a
 * cluster when `reclaim_outliers` is set. Refined clusters are numbered
 * 0..K-1 in the order of their lowest global sample index (as DBSCAN numbers
 * its clusters), so the result does not depend on the rank count.
 *
 * y_prev is whatever labels the caller projects: the previous epoch's DBSCAN
 * labels (`previous: dbscan`), or its refined labels (`previous: refined`,
 * a recursive temporal ensemble: each epoch's refined labels carry the
 * earlier epochs forward). slr_refine does not know which; the training loop
 * passes the one `previous` names. */
#ifndef SLR_REFINE_H
#define SLR_REFINE_H

#include <mpi.h>
#include <stdint.h>

#include "slr/cluster.h"
#include "slr/config.h"
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

typedef enum {
  SLR_THRESHOLD_ABSOLUTE = 0, /* the threshold as given */
  SLR_THRESHOLD_ALPHA,        /* threshold * alpha (scales with the soft labels) */
} slr_refine_threshold_mode;

typedef enum {
  SLR_ALPHA_CONSTANT = 0, /* alpha at every epoch */
  SLR_ALPHA_LINEAR,       /* alpha to alpha_end over the adaptation epochs */
} slr_refine_alpha_schedule;

typedef enum {
  SLR_PROJECTION_ROW = 0,   /* C row-normalised */
  SLR_PROJECTION_IOU,       /* C */
  SLR_PROJECTION_TRANSITION /* |A_a & B_b| / |A_a| */
} slr_refine_projection;

typedef enum {
  SLR_PREVIOUS_DBSCAN = 0, /* project the previous epoch's DBSCAN labels */
  SLR_PREVIOUS_REFINED,    /* project the previous epoch's refined labels */
} slr_refine_previous;

typedef enum {
  SLR_MEMORY_REFINED = 0, /* cluster memory from the refined clusters */
  SLR_MEMORY_DBSCAN,      /* from the DBSCAN clusters */
} slr_refine_memory;

/* Zero-initialised fields are today's defaults except alpha and threshold.
 * slr_refine reads mode, alpha, linkage, threshold, reclaim_outliers,
 * distance, threshold_mode and projection; alpha is this step's alpha (the
 * caller sets it from slr_refine_alpha_at). The other fields are for the
 * training loop. */
typedef struct {
  slr_refine_mode mode;
  double alpha;         /* weight of the current label, in [0, 1] */
  slr_linkage linkage;  /* hierarchical */
  double threshold;     /* hierarchical: merges of height <= threshold are kept */
  int reclaim_outliers; /* current outliers with a previous cluster may join one */
  slr_agglo_metric distance;                /* hierarchical: between soft labels */
  slr_refine_threshold_mode threshold_mode; /* hierarchical */
  slr_refine_projection projection;
  slr_refine_alpha_schedule alpha_schedule; /* read by slr_refine_alpha_at */
  double alpha_end;                         /* linear: alpha at the last epoch */
  slr_refine_previous previous;             /* training: which labels are y_prev */
  slr_refine_memory memory;                 /* training: clusters of the memory */
  double soft_weight;                       /* training: soft-label loss weight */
} slr_refine_params;

/* The refine.* keys of a configuration, each name parsed once; an unknown
 * name is SLR_ERR_CONFIG naming the key and the value, and so are ward
 * linkage with the cosine or jensen_shannon distance and values out of
 * range. Local. */
int slr_refine_params_from_config(const slr_refine_cfg *c, slr_refine_params *p);

/* The alpha of adaptation epoch `epoch` (0 .. epochs - 1): alpha when
 * constant; linear: alpha + (alpha_end - alpha) * epoch / (epochs - 1),
 * epoch clamped to the range (alpha for epochs <= 1). Local. */
double slr_refine_alpha_at(const slr_refine_params *p, int64_t epoch, int64_t epochs);

/* The distance threshold slr_refine cuts at: threshold, or threshold *
 * alpha with threshold_mode alpha. Local. */
double slr_refine_threshold_at(const slr_refine_params *p);

/* A compressed sparse row matrix: row r has the entries
 * indices[indptr[r] .. indptr[r+1]) (column indices ascending) and values.
 * The SLR step's matrices (IoU, projection, soft labels) are small and kept
 * in double, so that the refinement matches the SciPy reference exactly;
 * the N x k Jaccard distances are slr_sparse (cluster.h), in float, where
 * memory at a million rows is what counts. */
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
  slr_csr proj;      /* P (the projection used), K_prev x K_cur, on every rank */
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
 * below -1, bad parameters) are agreed over ranks. Memory per rank: the
 * table of distinct (y_prev, y_cur) pairs (32 bytes each; the gather
 * holds at most min(N, sum over ranks of their distinct pairs) entries,
 * 32 MB at N = 1,000,000) and the pairs' sparse soft labels; the clustering
 * needs O(pairs x average support), no pairs x pairs matrix. Collective on
 * comm. */
int slr_refine(MPI_Comm comm, const slr_refine_params *p, int64_t row0, int64_t n,
               const int32_t *y_prev, const int32_t *y_cur, slr_refine_result *out);

/* ---- soft labels and the soft targets of training ---------------------------- */

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
  const slr_csr *proj;        /* K_prev x K_cur, the refinement's projection: not owned */
  slr_csr carry;              /* K_cur x k_mem */
  int32_t *cols;              /* scratch for one soft label */
  double *vals;
} slr_soft_targets;

/* y_prev NULL: no previous labels (the target is the current cluster's
 * carry). y_mem: the labels that index the memory (refined or current).
 * proj: the projection of this epoch's refinement (slr_refine_result.proj,
 * ignored without y_prev), kept by the caller while st lives. Local. */
int slr_soft_targets_init(slr_soft_targets *st, double alpha, const slr_csr *proj, int64_t n,
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
