// ranks: 1 2 3
/* cluster/jaccard + dbscan against the reference fixtures made by
 * tools/ref/make_cluster_fixtures.py (faiss kNN, a NumPy/PyTorch port of
 * the peers' compute_jaccard_distance, scikit-learn DBSCAN): kNN sets where
 * the peers' slices end, the Jaccard support exactly and the values within
 * 1e-5, the max_dist cut, and the DBSCAN labels exactly, from the Jaccard
 * matrix and through slr_cluster_labels. k1 = 30/k2 = 6, k1 = 5 (half size
 * 2.5 -> 2, run with 2 threads per rank) and k1 = 7 with k2 = 1 (no query
 * expansion). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/cluster.h"
#include "slr/io.h"
#include "slr_test.h"

static int rank, size;

typedef struct {
  int64_t n, d, row0, nrows;
  int k1, k2;
  float *x;        /* my rows */
  int32_t *knn;    /* (n, k1) */
  int64_t *jp;     /* (n + 1) */
  int32_t *ji;
  float *jv;
  int nset;
  double *eps;
  int32_t *ms;
  int32_t *labels; /* (nset, n) */
} fixture;

static void load(const char *name, fixture *f) {
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char path[1024];
  snprintf(path, sizeof path, "%s/cluster/%s", SLR_FIXTURE_DIR, name);
  slr_h5 h;
  assert_int_equal(slr_h5_open(&h, MPI_COMM_WORLD, path, NULL, 0, SLR_H5_FOREIGN_OK), 0);
  int nd, type;
  int64_t dims[SLR_H5_MAXDIMS], k1, k2, cnt;
  assert_int_equal(slr_h5_shape(&h, "/features", &nd, dims, &type), 0);
  f->n = dims[0];
  f->d = dims[1];
  assert_int_equal(slr_h5_attr_get_i64(&h, "/", "k1", &k1), 0);
  assert_int_equal(slr_h5_attr_get_i64(&h, "/", "k2", &k2), 0);
  f->k1 = (int)k1;
  f->k2 = (int)k2;
  slr_shard_rows(f->n, rank, size, &f->row0, &f->nrows);
  f->x = malloc((size_t)(f->nrows * f->d) * sizeof(float) + 1);
  assert_int_equal(slr_h5_read_rows(&h, "/features", SLR_F32, f->row0, f->nrows, f->x), 0);
  assert_int_equal(slr_h5_read_all(&h, "/knn", SLR_I32, (void **)&f->knn, &cnt), 0);
  assert_int_equal(slr_h5_read_all(&h, "/jaccard/indptr", SLR_I64, (void **)&f->jp, &cnt), 0);
  assert_int_equal(slr_h5_read_all(&h, "/jaccard/indices", SLR_I32, (void **)&f->ji, &cnt), 0);
  assert_int_equal(slr_h5_read_all(&h, "/jaccard/values", SLR_F32, (void **)&f->jv, &cnt), 0);
  assert_int_equal(slr_h5_read_all(&h, "/dbscan/eps", SLR_F64, (void **)&f->eps, &cnt), 0);
  f->nset = (int)cnt;
  assert_int_equal(slr_h5_read_all(&h, "/dbscan/min_samples", SLR_I32, (void **)&f->ms, &cnt), 0);
  assert_int_equal(slr_h5_read_all(&h, "/dbscan/labels", SLR_I32, (void **)&f->labels, &cnt), 0);
  assert_int_equal(cnt, f->nset * f->n);
  assert_int_equal(slr_h5_close(&h), 0);
}

static void unload(fixture *f) {
  free(f->x);
  free(f->knn);
  free(f->jp);
  free(f->ji);
  free(f->jv);
  free(f->eps);
  free(f->ms);
  free(f->labels);
}

static int same_set(const int32_t *a, const int32_t *b, int m) {
  for (int p = 0; p < m; p++) {
    int found = 0;
    for (int q = 0; q < m; q++) found |= a[p] == b[q];
    if (!found) return 0;
  }
  return 1;
}

static void run_fixture(const char *name) {
  fixture f;
  load(name, &f);
  slr_knn knn;
  assert_all(slr_knn_compute(MPI_COMM_WORLD, f.x, f.nrows, f.n, f.d, f.k1, NULL, &knn) == 0);

  /* kNN: the same sets wherever the peers slice the lists */
  int kh = (int)rint(f.k1 / 2.0), wh = kh + 1 < f.k1 ? kh + 1 : f.k1;
  int ok = 1;
  for (int64_t r = 0; r < f.nrows; r++) {
    const int32_t *mine = knn.idx + r * f.k1, *ref = f.knn + (f.row0 + r) * f.k1;
    ok &= same_set(mine, ref, f.k2) && same_set(mine, ref, wh) && same_set(mine, ref, f.k1);
  }
  assert_all(ok);

  /* Jaccard: the same support, values within 1e-5 */
  slr_sparse jac;
  assert_all(slr_jaccard_compute(MPI_COMM_WORLD, f.x, f.d, &knn, f.k1, f.k2, 1.0, &jac) == 0);
  double maxerr = 0.0;
  for (int64_t r = 0; r < f.nrows && ok; r++) {
    int64_t i = f.row0 + r;
    int64_t a0 = jac.indptr[r], a1 = jac.indptr[r + 1], b0 = f.jp[i], b1 = f.jp[i + 1];
    if (a1 - a0 != b1 - b0) {
      fprintf(stderr, "row %lld: %lld pairs, reference %lld\n", (long long)i,
              (long long)(a1 - a0), (long long)(b1 - b0));
      ok = 0;
      break;
    }
    for (int64_t e = 0; e < a1 - a0; e++) {
      ok &= jac.indices[a0 + e] == f.ji[b0 + e];
      double err = fabs((double)jac.values[a0 + e] - (double)f.jv[b0 + e]);
      if (err > maxerr) maxerr = err;
    }
  }
  if (!ok) fprintf(stderr, "%s: Jaccard support differs\n", name);
  assert_all(ok);
  if (maxerr >= 1e-5) fprintf(stderr, "%s: max Jaccard error %.3g\n", name, maxerr);
  assert_all(maxerr < 1e-5);

  /* the max_dist cut keeps exactly the pairs at or under it */
  slr_sparse cut;
  assert_all(slr_jaccard_compute(MPI_COMM_WORLD, f.x, f.d, &knn, f.k1, f.k2, 0.55, &cut) == 0);
  for (int64_t r = 0; r < f.nrows; r++) {
    int64_t e = cut.indptr[r];
    for (int64_t a = jac.indptr[r]; a < jac.indptr[r + 1]; a++)
      if (jac.values[a] <= 0.55) {
        ok &= e < cut.indptr[r + 1] && cut.indices[e] == jac.indices[a] &&
              cut.values[e] == jac.values[a];
        e++;
      }
    ok &= e == cut.indptr[r + 1];
  }
  assert_all(ok);
  slr_sparse_free(&cut);

  /* only every third global row formed: those rows equal to the bit, the
   * others empty */
  unsigned char *want_rows = malloc((size_t)f.nrows + 1);
  for (int64_t r = 0; r < f.nrows; r++) want_rows[r] = (f.row0 + r) % 3 == 1;
  slr_sparse part;
  slr_jaccard_opts jo = {.k1 = f.k1, .k2 = f.k2, .max_dist = 1.0, .rows = want_rows};
  assert_all(slr_jaccard_compute_ex(MPI_COMM_WORLD, f.x, f.d, &knn, &jo, &part) == 0);
  for (int64_t r = 0; r < f.nrows; r++) {
    int64_t len = part.indptr[r + 1] - part.indptr[r];
    if (!want_rows[r]) {
      ok &= len == 0;
      continue;
    }
    int64_t a0 = jac.indptr[r];
    ok &= len == jac.indptr[r + 1] - a0;
    for (int64_t e = 0; ok && e < len; e++)
      ok &= part.indices[part.indptr[r] + e] == jac.indices[a0 + e] &&
            part.values[part.indptr[r] + e] == jac.values[a0 + e];
  }
  if (!ok) fprintf(stderr, "%s: masked Jaccard rows differ\n", name);
  assert_all(ok);
  slr_sparse_free(&part);
  free(want_rows);

  /* DBSCAN labels, from the matrix and through the whole pipeline */
  int32_t *lab = malloc((size_t)f.n * sizeof(int32_t));
  for (int s = 0; s < f.nset; s++) {
    const int32_t *want = f.labels + s * f.n;
    int64_t ncl = -1, want_ncl = 0;
    for (int64_t i = 0; i < f.n; i++)
      if (want[i] + 1 > want_ncl) want_ncl = want[i] + 1;
    assert_all(slr_dbscan(MPI_COMM_WORLD, &jac, f.eps[s], f.ms[s], lab, &ncl) == 0);
    int same = ncl == want_ncl && memcmp(lab, want, (size_t)f.n * sizeof(int32_t)) == 0;
    if (!same) fprintf(stderr, "%s eps %g ms %d: labels differ\n", name, f.eps[s], f.ms[s]);
    assert_all(same);
    slr_cluster_params p = {f.k1, f.k2, f.eps[s], f.ms[s]};
    slr_cluster_stats st;
    memset(lab, 0x7f, (size_t)f.n * sizeof(int32_t));
    assert_all(slr_cluster_labels(MPI_COMM_WORLD, f.x, f.nrows, f.n, f.d, &p, lab, &st) == 0);
    assert_all(memcmp(lab, want, (size_t)f.n * sizeof(int32_t)) == 0);
    assert_all(st.n_clusters == want_ncl);
  }
  free(lab);
  slr_sparse_free(&jac);
  slr_knn_free(&knn);
  unload(&f);
}

static void test_k30(void **state) { run_fixture("jaccard_k30.h5"); }
/* also with two threads per rank (the Jaccard rows are split over threads) */
static void test_k5(void **state) {
  slr_threads_set(2, 1);
  run_fixture("jaccard_k5.h5");
  slr_threads_set(1, 1);
}
static void test_k7_no_qe(void **state) { run_fixture("jaccard_k7.h5"); }

static void test_bad_params(void **state) {
  fixture f;
  load("jaccard_k7.h5", &f);
  slr_knn knn;
  assert_all(slr_knn_compute(MPI_COMM_WORLD, f.x, f.nrows, f.n, f.d, 7, NULL, &knn) == 0);
  slr_sparse jac;
  assert_all(slr_jaccard_compute(MPI_COMM_WORLD, f.x, f.d, &knn, 8, 2, 1.0, &jac) != 0);
  assert_all(slr_jaccard_compute(MPI_COMM_WORLD, f.x, f.d, &knn, 7, 8, 1.0, &jac) != 0);
  slr_cluster_params p;
  slr_cluster_params_default(&p);
  p.k1 = (int)f.n + 1;
  int32_t *lab = malloc((size_t)f.n * sizeof(int32_t));
  assert_all(slr_cluster_labels(MPI_COMM_WORLD, f.x, f.nrows, f.n, f.d, &p, lab, NULL) != 0);
  assert_all(strstr(slr_error_text(), "fewer than k1") != NULL);
  free(lab);
  slr_knn_free(&knn);
  unload(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_k30),
    cmocka_unit_test(test_k5),
    cmocka_unit_test(test_k7_no_qe),
    cmocka_unit_test(test_bad_params),
};
SLR_TEST_MAIN_MPI(tests)
