// ranks: 1 2 3
/* cluster/dbscan against scikit-learn's labels on a sparse distance graph
 * with border points next to several clusters and distances exactly equal
 * to float32(eps) (tools/ref/make_cluster_fixtures.py), sharded evenly and
 * unevenly (a rank with no rows); eps >= 1 (every pair a neighbour) and
 * bad parameters. */
#include <stdlib.h>
#include <string.h>

#include "slr/cluster.h"
#include "slr/io.h"
#include "slr_test.h"

static int rank, size;
static int64_t n;
static int64_t *gp;
static int32_t *gi, *lab_ref, *ms;
static float *gv;
static double *eps;
static int nset;

static void load(void) {
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (gp) return;
  slr_h5 h;
  int64_t cnt;
  assert_int_equal(slr_h5_open(&h, MPI_COMM_WORLD, SLR_FIXTURE_DIR "/cluster/dbscan_graph.h5",
                               NULL, 0, SLR_H5_FOREIGN_OK), 0);
  assert_int_equal(slr_h5_read_all(&h, "/dist/indptr", SLR_I64, (void **)&gp, &cnt), 0);
  n = cnt - 1;
  assert_int_equal(slr_h5_read_all(&h, "/dist/indices", SLR_I32, (void **)&gi, &cnt), 0);
  assert_int_equal(slr_h5_read_all(&h, "/dist/values", SLR_F32, (void **)&gv, &cnt), 0);
  assert_int_equal(slr_h5_read_all(&h, "/dbscan/eps", SLR_F64, (void **)&eps, &cnt), 0);
  nset = (int)cnt;
  assert_int_equal(slr_h5_read_all(&h, "/dbscan/min_samples", SLR_I32, (void **)&ms, &cnt), 0);
  assert_int_equal(slr_h5_read_all(&h, "/dbscan/labels", SLR_I32, (void **)&lab_ref, &cnt), 0);
  assert_int_equal(slr_h5_close(&h), 0);
}

/* this rank's rows [row0, row0 + nrows) as an slr_sparse view */
static slr_sparse view(int64_t row0, int64_t nrows, int64_t *ptr) {
  slr_sparse m = {n, row0, nrows, ptr, gi, gv};
  for (int64_t r = 0; r <= nrows; r++) ptr[r] = gp[row0 + r];
  return m;
}

static void check_all(int64_t row0, int64_t nrows) {
  int64_t *ptr = malloc((size_t)(nrows + 1) * sizeof(int64_t));
  slr_sparse m = view(row0, nrows, ptr);
  int32_t *lab = malloc((size_t)n * sizeof(int32_t));
  for (int s = 0; s < nset; s++) {
    int64_t ncl;
    memset(lab, 0x55, (size_t)n * sizeof(int32_t));
    assert_all(slr_dbscan(MPI_COMM_WORLD, &m, eps[s], ms[s], lab, &ncl) == 0);
    const int32_t *want = lab_ref + s * n;
    int64_t bad = 0, want_ncl = 0;
    for (int64_t i = 0; i < n; i++) {
      bad += lab[i] != want[i];
      if (want[i] + 1 > want_ncl) want_ncl = want[i] + 1;
    }
    if (bad) fprintf(stderr, "eps %g min_samples %d: %lld labels differ\n", eps[s], ms[s], (long long)bad);
    assert_all(bad == 0 && ncl == want_ncl);
  }
  free(lab);
  free(ptr);
}

static void test_balanced(void **state) {
  load();
  int64_t row0, nrows;
  slr_shard_rows(n, rank, size, &row0, &nrows);
  check_all(row0, nrows);
}

static void test_uneven(void **state) {
  load();
  /* rank 0 a few rows, the last rank none (when there are 2+) */
  int64_t cut = size > 1 ? 37 : n, row0 = rank == 0 ? 0 : cut, nrows;
  if (rank == 0)
    nrows = cut;
  else if (rank == size - 1)
    nrows = 0, row0 = n;
  else
    nrows = n - cut;
  if (size == 2 && rank == 1) row0 = cut, nrows = n - cut;
  check_all(row0, nrows);
}

static void test_eps_one(void **state) {
  load();
  int64_t row0, nrows;
  slr_shard_rows(n, rank, size, &row0, &nrows);
  int64_t *ptr = malloc((size_t)(nrows + 1) * sizeof(int64_t));
  slr_sparse m = view(row0, nrows, ptr);
  int32_t *lab = malloc((size_t)n * sizeof(int32_t));
  int64_t ncl;
  assert_all(slr_dbscan(MPI_COMM_WORLD, &m, 1.0, 5, lab, &ncl) == 0);
  int ok = ncl == 1;
  for (int64_t i = 0; i < n; i++) ok &= lab[i] == 0;
  assert_all(ok);
  assert_all(slr_dbscan(MPI_COMM_WORLD, &m, 1.5, (int)n + 1, lab, &ncl) == 0);
  ok = ncl == 0;
  for (int64_t i = 0; i < n; i++) ok &= lab[i] == -1;
  assert_all(ok);
  assert_all(slr_dbscan(MPI_COMM_WORLD, &m, 0.0, 4, lab, &ncl) != 0);
  assert_all(slr_dbscan(MPI_COMM_WORLD, &m, 0.5, 0, lab, &ncl) != 0);
  free(lab);
  free(ptr);
}

static void test_release(void **state) {
  free(gp);
  free(gi);
  free(gv);
  free(eps);
  free(ms);
  free(lab_ref);
  gp = NULL;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_balanced),
    cmocka_unit_test(test_uneven),
    cmocka_unit_test(test_eps_one),
    cmocka_unit_test(test_release),
};
SLR_TEST_MAIN_MPI(tests)
