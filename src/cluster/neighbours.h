/* cluster: helpers shared by knn.c, jaccard.c and dbscan.c (running top-k
 * lists, the row-block layout); not a public API. */
#ifndef SLR_CLUSTER_NEIGHBOURS_H
#define SLR_CLUSTER_NEIGHBOURS_H

#include <mpi.h>
#include <stdint.h>

/* Running top-k lists of `rows` rows: a heap per row, the worst kept
 * candidate on top; thr[r] is its similarity once the row is full
 * (-inf before), so a candidate below thr[r] can be skipped at once. */
typedef struct {
  int64_t rows;
  int k;
  float *v;      /* (rows, k) */
  int32_t *i;    /* (rows, k) */
  int32_t *cnt;  /* (rows) */
  float *thr;    /* (rows) */
  float *mn;     /* (rows) smallest value offered, or NULL (not tracked) */
} slr_topk;

typedef struct {
  float v;
  int32_t i;
} slr_pair_f;

/* `track_min`: also keep the smallest value offered to each row (mn). */
int slr_topk_init(slr_topk *t, int64_t rows, int k, int track_min);
void slr_topk_reset(slr_topk *t);
void slr_topk_free(slr_topk *t);
/* Offer candidate (v, id) to row r: kept if it beats the worst kept one
 * (higher v, or equal v and lower id). */
void slr_topk_push(slr_topk *t, int64_t r, float v, int32_t id);

/* Global row offsets of the ranks' contiguous blocks (size + 1 entries,
 * malloc'ed); checks that they add up to n. Collective on comm. */
int slr_block_layout(MPI_Comm comm, int64_t nrows, int64_t n, int64_t **offsets);

#endif
