/* The synthetic previous labels and the SLR step settings shared by the
 * benchmarks that run one SLR step at scale (refine_step.c, cluster_step.c):
 * from current labels `cur` (n, -1 = outlier) with k clusters, each cluster
 * whose id is a multiple of 3 split in two by sample index parity, 10 % of the
 * samples moved to a random cluster, 5 % made outliers (seeded, the same on
 * every rank). Local. */
#ifndef SLR_BENCH_PREV_LABELS_H
#define SLR_BENCH_PREV_LABELS_H
#include <stdint.h>
#include <string.h>

#include "slr/refine.h"

static inline void bench_prev_labels(const int32_t *cur, int64_t n, int32_t *prev) {
  int32_t k = 0;
  for (int64_t i = 0; i < n; i++) k = cur[i] + 1 > k ? cur[i] + 1 : k;
  slr_rng r;
  slr_rng_init(&r, 14, 0, 0);
  for (int64_t i = 0; i < n; i++) {
    uint64_t u = slr_rng_below(&r, 100);
    int32_t c = cur[i];
    if (c >= 0 && c % 3 == 0 && (i & 1)) c += k; /* split */
    if (u < 10 && k > 0) c = (int32_t)slr_rng_below(&r, (uint64_t)k);
    if (u >= 95) c = -1;
    prev[i] = c;
  }
}

/* hierarchical, average linkage, Euclidean, threshold 0.5, alpha 0.9 */
static inline slr_refine_params bench_refine_params(void) {
  slr_refine_params p;
  memset(&p, 0, sizeof p);
  p.mode = SLR_REFINE_HIERARCHICAL;
  p.alpha = 0.9;
  p.linkage = SLR_LINKAGE_AVERAGE;
  p.threshold = 0.5;
  return p;
}
#endif
