/* Times slr_agglo_tree_points + a distance cut on n random sparse
 * soft-label-like points of dimension d (the size of the SLR step).
 * Built and run by tools/bench/agglomerative.sh. */
#include <stdio.h>
#include <stdlib.h>

#include "slr/cluster.h"

int main(int argc, char **argv) {
  int64_t n = argc > 1 ? atoll(argv[1]) : 5000, d = argc > 2 ? atoll(argv[2]) : 2000;
  double *x = calloc((size_t)(n * d), sizeof(double));
  int64_t *w = malloc((size_t)n * sizeof(int64_t));
  slr_rng r;
  slr_rng_init(&r, 1, 0, 0);
  /* soft labels: alpha on one cluster, the rest spread over a few others */
  for (int64_t i = 0; i < n; i++) {
    x[i * d + (int64_t)slr_rng_below(&r, (uint64_t)d)] += 0.6;
    for (int c = 0; c < 4; c++) x[i * d + (int64_t)slr_rng_below(&r, (uint64_t)d)] += 0.1;
    w[i] = 1 + (int64_t)slr_rng_below(&r, 8);
  }
  /* the same points in CSR form */
  int64_t *indptr = malloc((size_t)(n + 1) * sizeof(int64_t)), nnz = 0;
  int32_t *indices = malloc((size_t)(5 * n) * sizeof(int32_t));
  double *values = malloc((size_t)(5 * n) * sizeof(double));
  indptr[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    for (int64_t c = 0; c < d; c++)
      if (x[i * d + c] != 0) {
        indices[nnz] = (int32_t)c;
        values[nnz++] = x[i * d + c];
      }
    indptr[i + 1] = nnz;
  }
  slr_merge *z = malloc((size_t)n * sizeof *z);
  int32_t *lab = malloc((size_t)n * sizeof *lab);
  for (int form = 0; form < 2; form++)
    for (int m = 0; m < 4; m++) {
      double t0 = slr_now();
      int rc = form == 0 ? slr_agglo_tree_points(x, n, d, w, (slr_linkage)m, z)
                         : slr_agglo_tree_csr(indptr, indices, values, n, d, w, (slr_linkage)m, z);
      if (rc) {
        fprintf(stderr, "%s\n", slr_error_message());
        return 1;
      }
      int64_t k;
      slr_agglo_cut_distance(z, n, 0.5, lab, &k);
      printf("n=%lld d=%lld %-5s %-8s %.2f s  (%lld clusters at t=0.5)  peak RSS %.0f MB\n",
             (long long)n, (long long)d, form ? "csr" : "dense", slr_linkage_name((slr_linkage)m),
             slr_now() - t0, (long long)k, slr_peak_rss() / 1e6);
    }
  free(indptr);
  free(indices);
  free(values);
  free(x);
  free(w);
  free(z);
  free(lab);
  return 0;
}
