/* Times the flat cut of n random sparse soft-label-like points of dimension
 * d: slr_agglo_cut_sparse (no n x n matrix) and, for n <= the dense limit,
 * the dense path (condensed distances, slr_agglo_tree_dist,
 * slr_agglo_cut_distance) side by side, with the labels compared. The sparse
 * cuts run first, so that the peak RSS printed after them is theirs.
 * Built by CMake (build/bench/agglomerative_bench), run by
 * tools/bench/agglomerative.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/cluster.h"

char *openblas_get_corename(void);

static double euclid(const int64_t *ip, const int32_t *ix, const double *v, int64_t a, int64_t b) {
  double s = 0;
  int64_t i = ip[a], j = ip[b];
  while (i < ip[a + 1] || j < ip[b + 1]) {
    double d;
    if (j >= ip[b + 1] || (i < ip[a + 1] && ix[i] < ix[j]))
      d = v[i++];
    else if (i >= ip[a + 1] || ix[j] < ix[i])
      d = -v[j++];
    else
      d = v[i++] - v[j++];
    s += d * d;
  }
  return sqrt(s);
}

int main(int argc, char **argv) {
  const int64_t n = argc > 1 ? atoll(argv[1]) : 5000, d = argc > 2 ? atoll(argv[2]) : 2000;
  const int64_t dense_max = argc > 3 ? atoll(argv[3]) : 5000;
  const double t = argc > 4 ? atof(argv[4]) : 0.5;
  int64_t *indptr = malloc((size_t)(n + 1) * sizeof(int64_t)), *w = malloc((size_t)n * 8);
  int32_t *indices = malloc((size_t)(5 * n) * sizeof(int32_t));
  double *values = malloc((size_t)(5 * n) * sizeof(double));
  slr_rng r;
  slr_rng_init(&r, 1, 0, 0);
  /* soft labels: alpha on one cluster, the rest over up to 4 nearby clusters */
  indptr[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    double row[5] = {0};
    int64_t cols[5], nc = 0, base = (int64_t)slr_rng_below(&r, (uint64_t)d);
    for (int c = 0; c < 5; c++) {
      int64_t col = c == 0 ? base : (base + (int64_t)slr_rng_below(&r, 6)) % d, k = 0;
      while (k < nc && cols[k] != col) k++;
      if (k == nc) cols[nc++] = col;
      row[k] += c == 0 ? 0.6 : 0.1 * slr_rng_uniform_double(&r);
    }
    for (int64_t a = 1; a < nc; a++) /* sort the columns */
      for (int64_t b = a; b > 0 && cols[b] < cols[b - 1]; b--) {
        int64_t tc = cols[b];
        cols[b] = cols[b - 1];
        cols[b - 1] = tc;
        double tv = row[b];
        row[b] = row[b - 1];
        row[b - 1] = tv;
      }
    for (int64_t k = 0; k < nc; k++) {
      indices[indptr[i] + k] = (int32_t)cols[k];
      values[indptr[i] + k] = row[k];
    }
    indptr[i + 1] = indptr[i] + nc;
    w[i] = 1 + (int64_t)slr_rng_below(&r, 8);
  }
  char model[256] = "?";
  FILE *f = fopen("/proc/cpuinfo", "r");
  int avx512 = 0;
  for (char line[4096]; f && fgets(line, sizeof line, f);) {
    if (strncmp(line, "model name", 10) == 0 && model[0] == '?')
      snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
    if (strncmp(line, "flags", 5) == 0 && strstr(line, "avx512f")) avx512 = 1;
  }
  if (f) fclose(f);
  model[strcspn(model, "\n")] = 0;
  printf("CPU %s, avx512f %s, OpenBLAS core %s\n", model, avx512 ? "yes" : "no",
         openblas_get_corename());
  printf("n=%lld points, d=%lld, nnz=%lld, threshold %g\n", (long long)n, (long long)d,
         (long long)indptr[n], t);
  const slr_sparse_points x = {n, d, indptr, indices, values, w, -1}; /* always sparse */
  int32_t *lab[4], *labd = malloc((size_t)n * sizeof(int32_t));
  int64_t k[4];
  for (int m = 0; m < 4; m++) {
    lab[m] = malloc((size_t)n * sizeof(int32_t));
    double t0 = slr_now();
    if (slr_agglo_cut_sparse(&x, (slr_linkage)m, SLR_AGGLO_EUCLIDEAN, t, lab[m], &k[m])) {
      fprintf(stderr, "%s\n", slr_error_message());
      return 1;
    }
    printf("sparse %-8s %8.3f s  %lld clusters  peak RSS %.0f MB\n",
           slr_linkage_name((slr_linkage)m), slr_now() - t0, (long long)k[m],
           (double)slr_peak_rss() / 1e6);
  }
  if (n > dense_max) return 0;
  double *dist = malloc((size_t)(n * (n - 1) / 2) * sizeof(double));
  slr_merge *z = malloc((size_t)n * sizeof *z);
  for (int m = 0; m < 4; m++) {
    double t0 = slr_now();
    for (int64_t a = 0, q = 0; a < n; a++)
      for (int64_t b = a + 1; b < n; b++) dist[q++] = euclid(indptr, indices, values, a, b);
    int64_t kd;
    if (slr_agglo_tree_dist(dist, n, 0, w, (slr_linkage)m, z) ||
        slr_agglo_cut_distance(z, n, t, labd, &kd)) {
      fprintf(stderr, "%s\n", slr_error_message());
      return 1;
    }
    printf("dense  %-8s %8.3f s  %lld clusters  peak RSS %.0f MB  labels %s\n",
           slr_linkage_name((slr_linkage)m), slr_now() - t0, (long long)kd,
           (double)slr_peak_rss() / 1e6,
           kd == k[m] && memcmp(labd, lab[m], (size_t)n * sizeof(int32_t)) == 0 ? "identical"
                                                                               : "DIFFER");
  }
  return 0;
}
