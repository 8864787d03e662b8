/* One SLR step at scale: N samples of K identities, previous and current
 * labels drawn from the identities with a share of samples moved to a random
 * cluster and a share made outliers (each sample's draws keyed by its global
 * index, so the labels do not depend on the rank count), then slr_refine on
 * the rows of each rank. Prints the distinct pairs, the pair table's bytes,
 * the bytes a dense condensed distance matrix over the pairs would take,
 * wall time and peak RSS per rank. Built by CMake (build/bench/refine_bench),
 * run by tools/bench/refine.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/dist.h"
#include "slr/refine.h"

char *openblas_get_corename(void);

static int32_t draw(uint64_t seed, int64_t i, int64_t k, double move, double drop) {
  slr_rng r;
  slr_rng_init(&r, seed, 0, (uint64_t)i);
  slr_rng_init(&r, 99, (uint64_t)i, 0);
  const int64_t id = (int64_t)slr_rng_below(&r, (uint64_t)k); /* the identity */
  slr_rng_init(&r, seed, (uint64_t)i, 1);
  if (slr_rng_uniform_double(&r) < drop) return -1;
  if (slr_rng_uniform_double(&r) < move) return (int32_t)slr_rng_below(&r, (uint64_t)k);
  return (int32_t)id;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int64_t N = argc > 1 ? atoll(argv[1]) : 1000000, K = argc > 2 ? atoll(argv[2]) : 30000;
  const double move = argc > 3 ? atof(argv[3]) : 0.05, drop = argc > 4 ? atof(argv[4]) : 0.15;
  slr_config c;
  slr_config_defaults(&c);
  for (int a = 5; a < argc; a++)
    if (slr_config_set(&c, argv[a])) {
      fprintf(stderr, "%s\n", slr_error_message());
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
  slr_refine_params p;
  if (slr_refine_params_from_config(&c.refine, &p)) {
    fprintf(stderr, "%s\n", slr_error_message());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int64_t row0, cnt;
  slr_shard_rows(N, rank, size, &row0, &cnt);
  int32_t *yp = malloc((size_t)cnt * 4), *yc = malloc((size_t)cnt * 4);
  for (int64_t i = 0; i < cnt; i++) {
    yp[i] = draw(1, row0 + i, K, move, drop);
    yc[i] = draw(2, row0 + i, K, move, drop);
  }
  if (rank == 0) {
    printf("CPU avx512f %s, OpenBLAS core %s, %d ranks\n",
           system("grep -q avx512f /proc/cpuinfo") == 0 ? "yes" : "no", openblas_get_corename(),
           size);
    printf("N=%lld K=%lld moved %.2f outliers %.2f: refine.mode %s linkage %s distance %s "
           "threshold %g (%s) alpha %g\n",
           (long long)N, (long long)K, move, drop, slr_refine_mode_name(p.mode),
           slr_linkage_name(p.linkage), slr_agglo_metric_name(p.distance), c.refine.threshold,
           p.threshold_mode == SLR_THRESHOLD_ALPHA ? "alpha" : "absolute", c.refine.alpha);
  }
  const int64_t rss0 = slr_peak_rss();
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = slr_now();
  slr_refine_result r;
  if (slr_refine(MPI_COMM_WORLD, &p, row0, cnt, yp, yc, &r)) {
    fprintf(stderr, "%s\n", slr_error_message());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  const double dt = slr_now() - t0;
  double worst = dt;
  int64_t rss = slr_peak_rss(), rss_max = rss, rss0_max = rss0;
  MPI_Reduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Reduce(&rss, &rss_max, 1, MPI_INT64_T, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Reduce(&rss0, &rss0_max, 1, MPI_INT64_T, MPI_MAX, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    const double m = (double)r.npairs;
    printf("pairs %lld (clustered %lld), pair table %.1f MB; a condensed matrix over the "
           "clustered pairs would be %.1f GB\n",
           (long long)r.npairs, (long long)r.nclustered, m * 32 / 1e6,
           r.nclustered * (r.nclustered - 1.0) / 2 * 8 / 1e9);
    printf("refined: %lld clusters, %lld outliers (DBSCAN-like input: %lld clusters)\n",
           (long long)r.nclusters, (long long)r.noutliers, (long long)r.k_cur);
    printf("slr_refine %.2f s (slowest rank), peak RSS %.0f MB per rank (%.0f MB before)\n", worst,
           (double)rss_max / 1e6, (double)rss0_max / 1e6);
  }
  slr_refine_result_free(&r);
  free(yp);
  free(yc);
  MPI_Finalize();
  return 0;
}
