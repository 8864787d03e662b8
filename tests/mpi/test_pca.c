// ranks: 1 2 3
/* dist/pca: the leading principal axes from ScaLAPACK on the BLACS grid
 * (pssyrk + pssyevd) and from local LAPACK (ssyevr / ssyevd)
 * against NumPy's float64 eigh (fixture pca.h5, tools/ref/pca_fixture.py),
 * on all rows and on the every-3rd and every-13th-row samples (the second
 * with fewer rows than dimensions: the dual form); bad arguments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/dist.h"
#include "slr/io.h"
#include "slr_test.h"

static void check_solver(slr_pca_solver solver, int64_t max_rows, const char *group) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  slr_h5 h;
  assert_int_equal(slr_h5_open(&h, MPI_COMM_WORLD, SLR_FIXTURE_DIR "/dist/pca.h5", NULL, 0,
                               SLR_H5_FOREIGN_OK), 0);
  int nd;
  int64_t dims[SLR_H5_MAXDIMS], p, cnt;
  int type;
  assert_int_equal(slr_h5_shape(&h, "/features", &nd, dims, &type), 0);
  assert_int_equal(slr_h5_attr_get_i64(&h, "/", "p", &p), 0);
  int64_t n = dims[0], d = dims[1], row0, nrows;
  slr_shard_rows(n, rank, size, &row0, &nrows);
  float *x = malloc((size_t)(nrows * d + 1) * sizeof(float));
  assert_int_equal(slr_h5_read_rows(&h, "/features", SLR_F32, row0, nrows, x), 0);
  char name[64];
  double *wref = NULL, *vref = NULL;
  snprintf(name, sizeof name, "/%s/eigval", group);
  assert_int_equal(slr_h5_read_all(&h, name, SLR_F64, (void **)&wref, &cnt), 0);
  snprintf(name, sizeof name, "/%s/eigvec", group);
  assert_int_equal(slr_h5_read_all(&h, name, SLR_F64, (void **)&vref, &cnt), 0);
  assert_int_equal(slr_h5_close(&h), 0);

  float *mean = malloc((size_t)d * sizeof(float)), *basis = malloc((size_t)(p * d) * sizeof(float));
  float *w = malloc((size_t)p * sizeof(float));
  slr_pca_opts o = {.solver = solver, .max_rows = max_rows};
  slr_pca_stats st;
  assert_all(slr_pca_basis(MPI_COMM_WORLD, x, nrows, d, (int)p, &o, mean, basis, w, &st) == 0);
  int64_t every = max_rows ? (n + max_rows - 1) / max_rows : 1;
  assert_int_equal(st.rows, (n + every - 1) / every);
  for (int64_t q = 0; q < p; q++) {
    assert_true(fabs(w[q] - wref[q]) <= 1e-4 * wref[0]);
    double dotv = 0.0, nrm = 0.0;
    for (int64_t j = 0; j < d; j++) {
      dotv += basis[q * d + j] * vref[q * d + j];
      nrm += (double)basis[q * d + j] * basis[q * d + j];
    }
    assert_true(fabs(nrm - 1.0) < 1e-5);
    assert_true(fabs(fabs(dotv) - 1.0) < 1e-4); /* the same axis, either sign */
  }
  /* replicated bit for bit */
  float *b0 = malloc((size_t)(p * d) * sizeof(float));
  memcpy(b0, basis, (size_t)(p * d) * sizeof(float));
  MPI_Bcast(b0, (int)(p * d), MPI_FLOAT, 0, MPI_COMM_WORLD);
  assert_all(memcmp(b0, basis, (size_t)(p * d) * sizeof(float)) == 0);
  free(b0);
  free(x);
  free(mean);
  free(basis);
  free(w);
  free(wref);
  free(vref);
}

static void test_pssyevd(void **state) { check_solver(SLR_PCA_PSSYEVD, 0, "all"); }
static void test_ssyevr(void **state) { check_solver(SLR_PCA_SYEVR, 0, "all"); }
static void test_ssyevd(void **state) { check_solver(SLR_PCA_SYEVD, 0, "all"); }
static void test_sample(void **state) {
  check_solver(SLR_PCA_PSSYEVD, 100, "every3");
  check_solver(SLR_PCA_SYEVD, 100, "every3");
  /* 20 rows of 40 dimensions: the Gram matrix on the grid */
  check_solver(SLR_PCA_PSSYEVD, 20, "every13");
  check_solver(SLR_PCA_SYEVR, 20, "every13");
}

static void test_bad(void **state) {
  float x[8] = {0}, mean[4], basis[32];
  assert_all(slr_pca_basis(MPI_COMM_WORLD, x, 2, 4, 5, NULL, mean, basis, NULL, NULL) != 0);
  assert_all(slr_pca_basis(MPI_COMM_WORLD, x, 2, 4, 0, NULL, mean, basis, NULL, NULL) != 0);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pssyevd),
      cmocka_unit_test(test_ssyevr),  cmocka_unit_test(test_ssyevd),
      cmocka_unit_test(test_sample),  cmocka_unit_test(test_bad),
  };
  return slr_test_main_mpi(&argc, &argv, __FILE__, tests, sizeof tests / sizeof tests[0]);
}
