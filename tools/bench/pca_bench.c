/* Principal-axes benchmark (not a test): slr_pca_basis with ScaLAPACK on
 * the BLACS grid (pssyrk, psgemr2d, pssyevd) beside local LAPACK on the
 * all-reduced covariance (ssyevr: the p wanted pairs; ssyevd: all), on the
 * same random rows (N x D, a decaying spectrum), the same ranks, one after
 * the other. Prints the covariance and eigen times of each and the largest
 * difference of the eigenvalues from ssyevd's.
 *
 *   mpiexec -n P pca_bench D [N] [P_AXES] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "slr/dist.h"

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int64_t d = argc > 1 ? atoll(argv[1]) : 256;
  int64_t n = argc > 2 ? atoll(argv[2]) : 2 * d;
  int p = argc > 3 ? atoi(argv[3]) : 64;
  int64_t row0, nrows;
  slr_shard_rows(n, rank, size, &row0, &nrows);
  float *x = malloc((size_t)(nrows * d + 1) * sizeof(float));
  slr_rng r;
  slr_rng_init(&r, 5, (uint64_t)rank, 0);
  for (int64_t i = 0; i < nrows; i++)
    for (int64_t j = 0; j < d; j++) x[i * d + j] = slr_rng_normal(&r) / (float)(1.0 + 0.05 * j);
  float *mean = malloc((size_t)d * sizeof(float)), *basis = malloc((size_t)(p * d) * sizeof(float));
  float *w = malloc((size_t)p * sizeof(float)), *wref = malloc((size_t)p * sizeof(float));
  slr_pca_solver order[3] = {SLR_PCA_SYEVD, SLR_PCA_PSSYEVD, SLR_PCA_SYEVR};
  for (int s = 0; s < 3; s++) {
    slr_pca_opts o = {.solver = order[s]};
    slr_pca_stats st;
    MPI_Barrier(MPI_COMM_WORLD);
    if (slr_pca_basis(MPI_COMM_WORLD, x, nrows, d, p, &o, mean, basis, s ? w : wref, &st)) {
      if (!rank) fprintf(stderr, "%s\n", slr_error_text());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    double dif = 0.0;
    for (int q = 0; q < p && s; q++) dif = fmax(dif, fabs(w[q] - wref[q]) / wref[0]);
    if (!rank)
      printf("D %lld N %lld p %d ranks %d  %-8s covariance %.2f s  eigenpairs %.2f s  total %.2f s"
             "  eigenvalues vs ssyevd %.1e\n",
             (long long)d, (long long)n, p, size, slr_pca_solver_name(order[s]), st.t_cov,
             st.t_eig, st.t_total, dif);
    fflush(stdout);
  }
  free(x);
  free(mean);
  free(basis);
  free(w);
  free(wref);
  MPI_Finalize();
  return 0;
}
