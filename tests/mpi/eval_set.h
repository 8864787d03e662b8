/* Shared by the evaluation tests (test_eval, test_rerank): a query/gallery
 * fixture (/query and /gallery, each with features, pids and camids) read
 * whole on every rank, this rank's balanced shares of it, and the evaluation
 * of the rows a rank holds. */
#ifndef EVAL_SET_H
#define EVAL_SET_H

#include <stdlib.h>

#include "slr/dist.h"
#include "slr/eval.h"
#include "slr/io.h"
#include "slr_test.h"

typedef struct {
  int64_t nq, ng, dim;
  float *qf, *gf;
  int64_t *qp, *qc, *gp, *gc;
} eval_set;

/* dataset `name` of f, whole, as type t (malloc'ed); *n gets the count.
 * Collective on f's communicator. */
static inline void *eval_read_all(slr_h5 *f, const char *name, slr_dtype t, int64_t *n) {
  void *p = NULL;
  assert_all(slr_h5_read_all(f, name, t, &p, n) == 0);
  return p;
}

/* the whole set of the file `path` on every rank. Collective on
 * MPI_COMM_WORLD. */
static inline void eval_set_load(eval_set *s, const char *path) {
  slr_h5 f;
  assert_all(slr_h5_open(&f, MPI_COMM_WORLD, path, NULL, 0, SLR_H5_FOREIGN_OK) == 0);
  int nd, type;
  int64_t dims[SLR_H5_MAXDIMS], n;
  assert_all(slr_h5_shape(&f, "/query/features", &nd, dims, &type) == 0);
  s->nq = dims[0];
  s->dim = dims[1];
  assert_all(slr_h5_shape(&f, "/gallery/features", &nd, dims, &type) == 0);
  s->ng = dims[0];
  s->qf = eval_read_all(&f, "/query/features", SLR_F32, &n);
  s->gf = eval_read_all(&f, "/gallery/features", SLR_F32, &n);
  s->qp = eval_read_all(&f, "/query/pids", SLR_I64, &n);
  s->qc = eval_read_all(&f, "/query/camids", SLR_I64, &n);
  s->gp = eval_read_all(&f, "/gallery/pids", SLR_I64, &n);
  s->gc = eval_read_all(&f, "/gallery/camids", SLR_I64, &n);
  slr_h5_close(&f);
}

/* the whole set, this rank and the rank count of MPI_COMM_WORLD, and this
 * rank's balanced shares: query rows [q0, q0+nq), gallery rows [g0, g0+ng).
 * Collective on MPI_COMM_WORLD. */
static inline void eval_set_load_sharded(eval_set *s, const char *path, int *rank, int *size,
                                         int64_t *q0, int64_t *nq, int64_t *g0, int64_t *ng) {
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  eval_set_load(s, path);
  slr_shard_rows(s->nq, *rank, *size, q0, nq);
  slr_shard_rows(s->ng, *rank, *size, g0, ng);
}

/* Local. */
static inline void eval_set_free(eval_set *s) {
  free(s->qf);
  free(s->gf);
  free(s->qp);
  free(s->qc);
  free(s->gp);
  free(s->gc);
}

/* evaluate with this rank holding query rows [q0, q0+nq) and gallery rows
 * [g0, g0+ng). Collective on MPI_COMM_WORLD. */
static inline int eval_set_run(const eval_set *s, int64_t q0, int64_t nq, int64_t g0, int64_t ng,
                               const slr_eval_opts *o, slr_eval_result *r) {
  return slr_eval_market1501(MPI_COMM_WORLD, s->dim, s->qf + q0 * s->dim, s->qp + q0, s->qc + q0,
                             nq, s->gf + g0 * s->dim, s->gp + g0, s->gc + g0, ng, o, r);
}

#endif
