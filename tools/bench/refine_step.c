/* The SLR step at benchmark scale (not a test): slr_refine (hierarchical,
 * the public API as it is) on the labels of an `slr cluster` run against
 * synthetic previous labels: each current cluster split in two by sample
 * index parity with probability 1/3, 10 % of the samples moved to a random
 * cluster, 5 % made outliers (seeded, the same on every rank). Prints the
 * distinct pairs m, the time, and the peak memory of the busiest rank.
 *
 *   mpiexec -n P refine_step LABELS.h5 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/io.h"
#include "slr/refine.h"
#include "bench_prev_labels.h"

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  slr_h5 h;
  int32_t *cur = NULL;
  int64_t n = 0;
  if (argc < 2 || slr_h5_open(&h, MPI_COMM_WORLD, argv[1], NULL, 0, SLR_H5_FOREIGN_OK) ||
      slr_h5_read_all(&h, "/labels", SLR_I32, (void **)&cur, &n)) {
    if (!rank) fprintf(stderr, "usage: refine_step LABELS.h5 (%s)\n", slr_error_text());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  slr_h5_close(&h);
  int32_t *prev = malloc((size_t)n * sizeof(int32_t));
  bench_prev_labels(cur, n, prev);
  int64_t row0, nrows;
  slr_shard_rows(n, rank, size, &row0, &nrows);
  slr_refine_params p = bench_refine_params();
  slr_refine_result res;
  memset(&res, 0, sizeof res);
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = slr_now();
  int rc = slr_refine(MPI_COMM_WORLD, &p, row0, nrows, prev + row0, cur + row0, &res);
  double t = slr_now() - t0;
  int64_t rss = slr_peak_rss(), rss_max = 0;
  MPI_Reduce(&rss, &rss_max, 1, MPI_INT64_T, MPI_MAX, 0, MPI_COMM_WORLD);
  if (!rank) {
    if (rc)
      printf("refine failed: %s\n", slr_error_text());
    else
      printf("refine: n %lld ranks %d  K_prev %lld K_cur %lld  distinct pairs m %lld  clustered %lld"
             "  condensed matrix %.1f MB  time %.2f s  peak memory of the busiest rank %.1f MiB"
             "  refined clusters %lld\n",
             (long long)n, size, (long long)res.k_prev, (long long)res.k_cur,
             (long long)res.npairs, (long long)res.nclustered,
             (double)res.nclustered * (double)(res.nclustered - 1) / 2.0 * 8.0 / 1e6, t,
             (double)rss_max / 1048576.0, (long long)res.nclusters);
  }
  slr_refine_result_free(&res);
  free(cur);
  free(prev);
  MPI_Finalize();
  return rc ? 1 : 0;
}
