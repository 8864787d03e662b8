/* eval: helpers shared by the files of the module (not a public API). */
#ifndef SLR_EVAL_INTERNAL_H
#define SLR_EVAL_INTERNAL_H

#include <mpi.h>
#include <stdint.h>

/* The k-reciprocal Jaccard distances of every query to the gallery items
 * this rank holds, grouped by global query: the pairs of query q are
 * qptr[q] .. qptr[q + 1] - 1, with the local gallery index g[e] and the
 * distance jac[e]. Pairs not listed have distance 1. */
typedef struct {
  int64_t nq_tot;
  int64_t *qptr; /* (nq_tot + 1) */
  int32_t *g;
  float *jac;
  /* SLR_RERANK_ZHONG: the original distance d of query q enters the blend
   * as (d * qinv[q])^power (qinv = 1 / the query's largest distance to any
   * item); NULL for SLR_RERANK_JACCARD */
  float *qinv;   /* (nq_tot) */
  int power;
} slr_rerank_pairs;

/* Joint set = every rank's query rows then its gallery rows, blocks in rank
 * order; rows L2-normalised (x / max(|x|, 1e-12)); exact kNN, the Jaccard
 * rows of the query rows only (slr_jaccard_compute_ex), each pair sent to
 * the rank that holds its gallery item. `variant` is an slr_rerank_variant.
 * Collective on comm. */
int slr_rerank_pairs_compute(MPI_Comm comm, int64_t dim, const float *qf, int64_t nq,
                             const float *gf, int64_t ng, int variant, int metric, int k1,
                             int k2, slr_rerank_pairs *out);
/* Local. */
void slr_rerank_pairs_free(slr_rerank_pairs *p);

#endif
