/* eval: the quality of pseudo labels (below), and the Market-1501 retrieval
 * protocol (mAP, CMC, mINP) as fast-reid's
 * and OpenUnReID's eval_market1501 compute it, distributed over MPI ranks.
 *
 * Per query: the gallery is ordered by distance; gallery items with the
 * query's pid AND camera are dropped (junk); a match is an item with the
 * query's pid; a query without any match is skipped. AP is the
 * non-interpolated average precision, CMC the cumulative match curve clipped
 * at 1 (first SLR_EVAL_MAX_RANK ranks), mINP = #matches / (position of the
 * last match). Means are over the queries that have a match.
 *
 * Distances are on L2-normalised features (x / max(|x|, 1e-12)):
 * cosine 1 - cos(q, g), Euclidean |q - g|^2 = 2 - 2 cos(q, g) (the squared
 * distance, as fast-reid; same order). Equal distances are ordered by gallery
 * index (a stable sort); NumPy's default argsort in the peers is not stable,
 * so results on exact ties may differ from theirs.
 *
 * Distribution: queries and gallery are both row-sharded (each rank passes
 * a contiguous block of rows; the gallery blocks, in rank order, make the
 * global gallery order). Queries are taken in global blocks; each rank
 * computes the block's distances to its own gallery rows only (cblas_sgemm),
 * so no rank ever holds a query x gallery matrix: memory per rank is its
 * shards plus query_block x (local gallery rows) floats. The position of
 * each match is counted, not sorted: each rank counts its gallery items
 * that precede each match, and the counts are summed over ranks.
 *
 * Optional k-reciprocal re-ranking (opts.rerank), as the evaluators of
 * fast-reid (TEST.RERANK) and OpenUnReID (TEST.rerank) compute it: the
 * k-reciprocal Jaccard distance jac of Cluster Contrast / SpCL
 * (slr_jaccard_compute with k1, k2) over the joint set of the query and
 * gallery features (L2-normalised), then for each (query, gallery) pair
 *   final = (1 - lambda) jac + lambda d,
 * d the distance of the chosen metric (not re-scaled), jac = 1 for pairs
 * without shared support. Only the query rows of jac are formed; they are
 * sparse (only the pairs with shared support are stored) and go to the
 * ranks that hold the gallery items. Memory per rank: the joint kNN lists and sparse V rows of
 * the cluster module (O(n k1 + nnz(V))), the query pairs, and the
 * evaluation's blocks; never an n x n or query x gallery matrix. On one rank
 * the joint order is queries then gallery, as in the peers; on more ranks it
 * is each rank's queries then its gallery items, which matters only for
 * exact ties in the kNN lists.
 *
 * The second variant (rerank_variant = SLR_RERANK_ZHONG) is the peers'
 * re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda) function of
 * Zhong et al., called with the Euclidean distances |q - g| (or 1 - cos for
 * the cosine metric), which it squares: original distance D(i, j) = 2 - 2 s
 * ((1 - s)^2 for cosine), each row divided by its largest value over all
 * query + gallery items; k-reciprocal sets over k1 + 1 (and
 * round(k1/2) + 1) list entries; V = exp(-D) / sum; query expansion over
 * k2; final = (1 - lambda) jac + lambda D. The row maxima come from the
 * kNN pass (slr_knn_opts.farthest). */
#ifndef SLR_EVAL_H
#define SLR_EVAL_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "slr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLR_EVAL_MAX_RANK 50

typedef enum {
  SLR_METRIC_EUCLIDEAN = 0,
  SLR_METRIC_COSINE = 1,
} slr_metric;

/* "euclidean" | "cosine"; unknown names return SLR_ERR_USAGE with the value
 * in the message. Local. */
int slr_metric_parse(const char *name, slr_metric *out);
const char *slr_metric_name(slr_metric m);

/* Re-ranking variants (see above and docs/eval.md). */
typedef enum {
  SLR_RERANK_JACCARD = 0, /* the peers' evaluators: joint-set Jaccard + lambda d */
  SLR_RERANK_ZHONG = 1,   /* the peers' re_ranking() function (Zhong et al.) */
} slr_rerank_variant;

/* "jaccard" | "zhong"; unknown names return SLR_ERR_USAGE. Local. */
int slr_rerank_variant_parse(const char *name, slr_rerank_variant *out);
const char *slr_rerank_variant_name(slr_rerank_variant v);

typedef struct {
  slr_metric metric;
  int64_t query_block;   /* queries per block; 0: 256 */
  int64_t gallery_block; /* gallery rows per sgemm call; 0: 4096 */
  int progress;          /* print a progress line (rank 0) */
  int rerank;            /* k-reciprocal re-ranking (see above) */
  slr_rerank_variant rerank_variant; /* SLR_RERANK_JACCARD */
  int rerank_k1;         /* 20 */
  int rerank_k2;         /* 6 */
  double rerank_lambda;  /* 0.3, in [0, 1] */
} slr_eval_opts;

/* Defaults: Euclidean, default blocks, no progress line, no re-ranking
 * (with k1 = 20, k2 = 6, lambda = 0.3 set for when it is switched on).
 * Local. */
void slr_eval_opts_default(slr_eval_opts *o);

typedef struct {
  double map;                     /* fraction, not percent */
  double minp;
  double cmc[SLR_EVAL_MAX_RANK];  /* cmc[0] = rank-1 */
  int64_t num_query;              /* all queries */
  int64_t num_valid;              /* queries with at least one match */
  int64_t num_gallery;
  /* seconds spent on this rank: distances (sgemm + transform), finding and
   * counting matches, communication */
  double time_distance, time_matches, time_comm;
  double time_rerank;  /* kNN + Jaccard + routing of the pairs (re-ranking) */
  int rerank;          /* re-ranked, with these parameters: */
  slr_rerank_variant rerank_variant;
  int rerank_k1, rerank_k2;
  double rerank_lambda;
} slr_eval_result;

/* Evaluate. On each rank: nq query rows qf (nq, dim) with pids qpid and
 * cameras qcam, and ng gallery rows gf (ng, dim), gpid, gcam; any rank may
 * hold 0 rows of either. Every rank gets the same result.
 * Errors (agreed over ranks): dim < 1 or different over ranks, a non-finite
 * feature value (named by global row), no query at all, no query with a
 * match; with re-ranking, k1 outside 1..(queries + gallery items), k2
 * outside 1..k1, lambda outside [0, 1]. Collective on comm. */
int slr_eval_market1501(MPI_Comm comm, int64_t dim, const float *qf, const int64_t *qpid,
                        const int64_t *qcam, int64_t nq, const float *gf,
                        const int64_t *gpid, const int64_t *gcam, int64_t ng,
                        const slr_eval_opts *opts, slr_eval_result *res);

/* The result as JSON text: {"metric", "rerank": false or {"variant", "k1",
 * "k2", "lambda"}, "num_query", "num_valid_query", "num_gallery", "mAP", "mINP",
 * "cmc": [50 values, rank 1 first]}, metrics as fractions. Returns an error if `len` is too small (1 KB is enough).
 * Local. */
int slr_eval_format_json(const slr_eval_result *r, slr_metric metric, char *buf, size_t len);

/* Print mAP, mINP and CMC at ranks 1, 5, 10, 20 in percent, one per line.
 * Local. */
void slr_eval_print(const slr_eval_result *r, FILE *out);

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

/* ---- what refinement changes, against true identities ---------------------- */

/* Consecutive epochs' labels y_prev -> y_cur of the same samples (outliers
 * -1 are in no cluster). A previous cluster a is split when at least two
 * current clusters each hold >= share of a's members (|A_a & B_b| >= share
 * |A_a|, |A_a| counting all of a's members, outliers now included); a
 * current cluster b is a merge when at least two previous clusters each
 * give >= share of b's members. NMI is scikit-learn's
 * normalized_mutual_info_score of the two labelings with every outlier a
 * singleton (as slr_label_quality). */
typedef struct {
  int64_t clusters_prev, clusters_cur; /* non-empty clusters */
  int64_t splits;                      /* previous clusters split */
  int64_t merges;                      /* current clusters that are merges */
  double share;                        /* as given */
  double nmi;
} slr_label_transition;

/* y_prev, y_cur (>= -1) of the local rows; share in (0, 0.5]; the result
 * is the same on every rank. Collective on comm. */
int slr_label_transition_compute(MPI_Comm comm, int64_t n, const int32_t *y_prev,
                                 const int32_t *y_cur, double share, slr_label_transition *t);

/* What refinement changed in an epoch, from the true identities (which
 * training never reads). Over all samples, with y_dbscan the epoch's DBSCAN
 * labels and y_refined its refined labels:
 *   - a refined cluster's DBSCAN cluster is the one that gives it most
 *     samples (the lowest id on ties; none if all its samples were DBSCAN
 *     outliers); a sample moved when it is `reclaimed` (DBSCAN outlier,
 *     refined into a cluster), `dropped` (in a DBSCAN cluster, refined
 *     outlier) or `reassigned` (both in clusters, its refined cluster's
 *     DBSCAN cluster is not its own);
 *   - a reclaimed sample is right when its refined cluster has samples that
 *     DBSCAN clustered and its true identity is the most frequent among
 *     those (the lowest id on ties);
 *   - a pair of samples is joined when refinement puts it in one cluster
 *     and DBSCAN did not, separated when DBSCAN put it in one cluster and
 *     refinement does not; a joined pair is right when both have the same
 *     identity, a separated pair when they differ; precision = right / all
 *     (0 when there is no such pair). Pairs are counted from contingency
 *     tables, never one by one.
 *   - with y_prev (the previous epoch's refined labels; NULL at the first
 *     epoch: has_prev = 0 and `transition` zero), the splits, merges and
 *     NMI of y_prev -> y_refined at `share`. */
typedef struct {
  int64_t samples;
  int64_t moved; /* reclaimed + dropped + reassigned */
  int64_t reclaimed, dropped, reassigned;
  int64_t reclaimed_right;
  double reclaimed_precision; /* reclaimed_right / reclaimed (0 if none) */
  int64_t pairs_joined, pairs_joined_right;
  double join_precision;
  int64_t pairs_separated, pairs_separated_right;
  double separate_precision;
  int has_prev;
  slr_label_transition transition;
} slr_refine_diagnostics;

/* Labels of the local rows (rows sharded over comm in any fixed way);
 * labels >= -1, identities >= 0; y_prev may be NULL (on every rank). The
 * tables gathered hold one entry per distinct (refined, DBSCAN, identity)
 * triple: at most the number of samples. The result is the same on every
 * rank. Collective on comm. */
int slr_refine_diagnostics_compute(MPI_Comm comm, int64_t n, const int32_t *y_dbscan,
                                   const int32_t *y_refined, const int32_t *y_prev,
                                   const int32_t *truth, double share,
                                   slr_refine_diagnostics *d);

#ifdef __cplusplus
}
#endif
#endif
