/* kNN benchmark (not a test): the full and the pruned product side by side
 * on the same features and ranks, with the pruning rate, the time of the
 * principal axes, the bytes sent per rank and a check that both give the
 * same neighbours (indices equal; similarities within 1e-5, since the full
 * product's come from sgemm and the pruned ones from sdot).
 *
 *   mpiexec -n P knn_bench FEATURES.h5 [K] [DIMS] [REPEATS]
 * DIMS 0 = the default axes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/cluster.h"
#include "slr/io.h"

static int run(MPI_Comm comm, const float *x, int64_t nrows, int64_t n, int64_t d, int k,
               const slr_knn_opts *o, slr_knn *out, double *sec) {
  MPI_Barrier(comm);
  double t0 = slr_now();
  int rc = slr_knn_compute(comm, x, nrows, n, d, k, o, out);
  double t = slr_now() - t0;
  MPI_Allreduce(&t, sec, 1, MPI_DOUBLE, MPI_MAX, comm);
  return rc;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 2) {
    if (!rank) fprintf(stderr, "usage: knn_bench FEATURES.h5 [K] [DIMS] [REPEATS]\n");
    MPI_Finalize();
    return 2;
  }
  int k = argc > 2 ? atoi(argv[2]) : 30, dims = argc > 3 ? atoi(argv[3]) : 0;
  int reps = argc > 4 ? atoi(argv[4]) : 1;
  slr_h5 h;
  int nd, type;
  int64_t dm[SLR_H5_MAXDIMS];
  if (slr_h5_open(&h, MPI_COMM_WORLD, argv[1], NULL, 0, SLR_H5_FOREIGN_OK) ||
      slr_h5_shape(&h, "/features", &nd, dm, &type)) {
    fprintf(stderr, "%s\n", slr_error_text());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  int64_t n = dm[0], d = dm[1], row0, nrows;
  slr_shard_rows(n, rank, size, &row0, &nrows);
  float *x = malloc((size_t)(nrows * d + 1) * sizeof(float));
  if (slr_h5_read_rows(&h, "/features", SLR_F32, row0, nrows, x)) MPI_Abort(MPI_COMM_WORLD, 1);
  slr_h5_close(&h);
  slr_l2_normalize(x, nrows, d, row0);
  for (int rep = 0; rep < reps; rep++) {
    slr_knn a, b;
    double ta, tb;
    slr_knn_opts full = {.method = SLR_KNN_FULL};
    slr_knn_opts pr = {.method = SLR_KNN_PRUNED, .dims = dims};
    if (run(MPI_COMM_WORLD, x, nrows, n, d, k, &pr, &b, &tb) ||
        run(MPI_COMM_WORLD, x, nrows, n, d, k, &full, &a, &ta)) {
      fprintf(stderr, "%s\n", slr_error_text());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int64_t diff = 0, vdiff = 0;
    for (int64_t e = 0; e < nrows * k; e++) {
      diff += a.idx[e] != b.idx[e];
      vdiff += fabsf(a.sim[e] - b.sim[e]) > 1e-5f;
    }
    int64_t s[6] = {diff, vdiff, b.stats.pairs, b.stats.scored, a.stats.bytes_sent,
                    b.stats.bytes_sent};
    int64_t mx[2] = {a.stats.bytes_sent, b.stats.bytes_sent};
    MPI_Allreduce(MPI_IN_PLACE, s, 6, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, mx, 2, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (!rank)
      printf("n %lld d %lld k %d ranks %d  full %.2f s  pruned %.2f s (basis %.2f s)  "
             "seed %.2f s  pilot %.2f s est %.4f  speed-up %.2fx  pruned=%d est %.4f  scored %.4f of pairs  "
             "different ids %lld values %lld  bytes/rank max full %.1f MB pruned %.1f MB\n",
             (long long)n, (long long)d, k, size, ta, tb, b.stats.t_basis, b.stats.t_seed, b.stats.t_pilot, b.stats.est_pilot, ta / tb,
             b.stats.pruned, b.stats.est_scored, (double)s[3] / (double)s[2],
             (long long)s[0], (long long)s[1], mx[0] / 1e6, mx[1] / 1e6);
    slr_knn_free(&a);
    slr_knn_free(&b);
  }
  free(x);
  MPI_Finalize();
  return 0;
}
