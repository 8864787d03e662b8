/* eval: retrieval evaluation and the quality of pseudo labels. */
#ifndef SLR_EVAL_H
#define SLR_EVAL_H

#include <mpi.h>
#include <stdint.h>

#include "slr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- quality of pseudo labels against true identities ------------------------ */

/* Label diagnostics over all samples. Outliers (-1) count as singleton
 * clusters, so that dropping samples is not rewarded; `coverage` says how
 * many samples are clustered. NMI is scikit-learn's
 * normalized_mutual_info_score (arithmetic mean of the entropies), ARI its
 * adjusted_rand_score; pairwise precision and recall are over sample pairs
 * (a pair is positive when both samples are in the same cluster). */
typedef struct {
  int64_t samples;
  int64_t clusters; /* clusters of the labels (outliers not counted) */
  int64_t outliers;
  int64_t identities; /* distinct true identities */
  double coverage;    /* fraction of samples in a cluster */
  double nmi, ari;
  double precision, recall, f1;
} slr_label_quality;

/* Labels and true identities (both int32, labels >= -1, identities >= 0) of
 * the local rows; the result is the same on every rank. Collective on comm. */
int slr_label_quality_compute(MPI_Comm comm, int64_t n, const int32_t *labels,
                              const int32_t *truth, slr_label_quality *q);

#ifdef __cplusplus
}
#endif
#endif
