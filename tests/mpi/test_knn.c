// ranks: 1 2 3 4
/* cluster/knn: exact k nearest neighbours against a brute-force search in
 * double: exactly equal (ties by the lower index) on features whose inner
 * products are exact in float (many ties, duplicate rows), and equal up to
 * rounding on clustered random features; small tiles and uneven blocks (a
 * rank with no rows) included; the full product and the pruned one (which
 * must skip most pairs of clustered rows, and fall back on random rows);
 * row normalisation and its errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/cluster.h"
#include "slr_test.h"

static int rank, size;
/* the method of check_knn's calls; with pruning also the principal axes */
static slr_knn_method method = SLR_KNN_FULL;
static int dims = 0;
static int64_t last_pairs, last_scored;
static int last_pruned;

static void who(void) {
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
}

/* rows with four entries of +-0.5: unit norm, inner products multiples of 1/4 */
static void make_dyadic(float *x, int64_t n, int64_t d, uint64_t seed) {
  slr_rng r;
  slr_rng_init(&r, seed, 1, 0);
  for (int64_t i = 0; i < n; i++) {
    float *row = x + i * d;
    memset(row, 0, (size_t)d * sizeof(float));
    int put = 0;
    while (put < 4) {
      int64_t c = (int64_t)slr_rng_below(&r, (uint64_t)d);
      if (row[c] != 0.0f) continue;
      row[c] = slr_rng_below(&r, 2) ? 0.5f : -0.5f;
      put++;
    }
  }
}

/* clustered Gaussian rows, normalised */
static void make_blobs(float *x, int64_t n, int64_t d, int centers, uint64_t seed) {
  slr_rng r;
  slr_rng_init(&r, seed, 2, 0);
  float *c = malloc((size_t)(centers * d) * sizeof(float));
  for (int64_t i = 0; i < centers * d; i++) c[i] = slr_rng_normal(&r);
  for (int64_t i = 0; i < n; i++) {
    int64_t a = (int64_t)slr_rng_below(&r, (uint64_t)centers);
    for (int64_t j = 0; j < d; j++) x[i * d + j] = c[a * d + j] + 0.4f * slr_rng_normal(&r);
  }
  assert_int_equal(slr_l2_normalize(x, n, d, 0), 0);
  free(c);
}

static double dot(const float *a, const float *b, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; j++) s += (double)a[j] * (double)b[j];
  return s;
}

typedef struct {
  double v;
  int32_t i;
} cand;

static int cmp_cand(const void *pa, const void *pb) {
  const cand *a = pa, *b = pb;
  if (a->v != b->v) return a->v > b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

/* run the kNN over comm with the given per-rank row counts and check every
 * row against brute force; exact = compare indices exactly */
static int check_knn(const float *x, int64_t n, int64_t d, int k, int tile,
                     const int64_t *counts, int exact) {
  int64_t row0 = 0;
  for (int q = 0; q < rank; q++) row0 += counts[q];
  int64_t nrows = counts[rank];
  slr_knn knn;
  /* the farthest item too, in every other call */
  slr_knn_opts opts = {.tile = tile, .farthest = tile % 2 == 1 || tile == 64};
  if (method == SLR_KNN_PRUNED) {
    opts = (slr_knn_opts){.tile = tile, .method = method, .dims = dims, .max_scored = 1.0};
  }
  int rc = slr_knn_compute(MPI_COMM_WORLD, x + row0 * d, nrows, n, d, k, &opts, &knn);
  if (rc) {
    fprintf(stderr, "%s\n", slr_error_message());
    return 0;
  }
  int ok = knn.row0 == row0 && knn.nrows == nrows && knn.k == k;
  last_pairs = knn.stats.pairs;
  last_scored = knn.stats.scored;
  last_pruned = knn.stats.pruned;
  ok &= last_pruned == (method == SLR_KNN_PRUNED);
  cand *all = malloc((size_t)n * sizeof(cand));
  for (int64_t r = 0; r < nrows && ok; r++) {
    int64_t i = row0 + r;
    for (int64_t j = 0; j < n; j++) {
      all[j].v = dot(x + i * d, x + j * d, d);
      all[j].i = (int32_t)j;
    }
    qsort(all, (size_t)n, sizeof(cand), cmp_cand);
    if (opts.farthest)
      ok &= knn.smin != NULL && (exact ? knn.smin[r] == (float)all[n - 1].v
                                       : fabs(knn.smin[r] - all[n - 1].v) < 1e-5);
    else
      ok &= knn.smin == NULL;
    const int32_t *id = knn.idx + r * k;
    const float *sv = knn.sim + r * k;
    for (int q = 0; q < k; q++) {
      if (exact) {
        ok &= id[q] == all[q].i && sv[q] == (float)all[q].v;
      } else {
        /* the q-th value matches, and the neighbour returned is one whose
         * similarity is within rounding of it */
        ok &= fabs(sv[q] - all[q].v) < 1e-5;
        ok &= id[q] >= 0 && id[q] < n && fabs(dot(x + i * d, x + (int64_t)id[q] * d, d) - sv[q]) < 1e-5;
        if (q > 0) ok &= sv[q] <= sv[q - 1];
        for (int p = 0; p < q; p++) ok &= id[p] != id[q];
      }
    }
    if (!ok) fprintf(stderr, "[rank %d] row %lld differs\n", rank, (long long)i);
  }
  free(all);
  slr_knn_free(&knn);
  return ok;
}

static void balanced(int64_t n, int64_t *counts) {
  for (int q = 0; q < size; q++) {
    int64_t r0;
    slr_shard_rows(n, q, size, &r0, &counts[q]);
  }
}

/* uneven blocks: 13 rows on each rank but the last two, the rest on the
 * second last, none on the last (size > 1) */
static void uneven(int64_t n, int64_t *counts) {
  int64_t left = n;
  for (int q = 0; q < size; q++) {
    counts[q] = q == size - 1 ? 0 : (q < size - 2 ? 13 : left);
    left -= counts[q];
  }
}

static void test_exact_ties(void **state) {
  who();
  int64_t n = 301, d = 9;
  float *x = malloc((size_t)(n * d) * sizeof(float));
  make_dyadic(x, n, d, 11);
  int64_t counts[8];
  balanced(n, counts);
  assert_all(check_knn(x, n, d, 17, 0, counts, 1));
  assert_all(check_knn(x, n, d, 17, 7, counts, 1));
  /* two threads: the column updates of a tile are split over threads */
  slr_threads_set(2, 1);
  assert_all(check_knn(x, n, d, 17, 64, counts, 1));
  slr_threads_set(1, 1);
  assert_all(check_knn(x, n, d, 1, 5, counts, 1));
  assert_all(check_knn(x, n, d, (int)n, 64, counts, 1));
  /* uneven blocks, the last rank with none */
  if (size > 1) {
    uneven(n, counts);
    assert_all(check_knn(x, n, d, 12, 8, counts, 1));
  }
  free(x);
}

static void test_blobs(void **state) {
  who();
  int64_t n = 700, d = 24;
  float *x = malloc((size_t)(n * d) * sizeof(float));
  make_blobs(x, n, d, 12, 5);
  int64_t counts[8];
  balanced(n, counts);
  assert_all(check_knn(x, n, d, 31, 0, counts, 0));
  assert_all(check_knn(x, n, d, 31, 33, counts, 0));
  assert_all(check_knn(x, n, d, 31, 64, counts, 0));
  free(x);
}

/* the pruned product: exact ties, duplicate rows, few axes and many */
static void test_pruned_exact(void **state) {
  who();
  int64_t n = 301, d = 9;
  float *x = malloc((size_t)(n * d) * sizeof(float));
  make_dyadic(x, n, d, 11);
  /* duplicates: rows 0..59 repeated once, rows 60..69 three times */
  for (int64_t i = 0; i < 60; i++) memcpy(x + (120 + i) * d, x + i * d, (size_t)d * sizeof(float));
  for (int64_t i = 0; i < 30; i++)
    memcpy(x + (200 + i) * d, x + (60 + i % 10) * d, (size_t)d * sizeof(float));
  int64_t counts[8];
  balanced(n, counts);
  method = SLR_KNN_PRUNED;
  for (dims = 1; dims <= 8; dims += 3) {
    assert_all(check_knn(x, n, d, 17, 0, counts, 1));
    assert_all(check_knn(x, n, d, 4, 7, counts, 1));
  }
  dims = 0;
  assert_all(check_knn(x, n, d, 1, 5, counts, 1));
  assert_all(check_knn(x, n, d, (int)n, 64, counts, 1));
  if (size > 1) {
    uneven(n, counts);
    assert_all(check_knn(x, n, d, 12, 8, counts, 1));
  }
  method = SLR_KNN_FULL;
  free(x);
}

static void test_pruned_blobs(void **state) {
  who();
  int64_t n = 900, d = 48;
  float *x = malloc((size_t)(n * d) * sizeof(float));
  make_blobs(x, n, d, 8, 7);
  int64_t counts[8];
  balanced(n, counts);
  method = SLR_KNN_PRUNED;
  dims = 8;
  assert_all(check_knn(x, n, d, 10, 0, counts, 0));
  /* most pairs of clustered rows are skipped */
  int64_t pr[2] = {last_pairs, last_scored};
  MPI_Allreduce(MPI_IN_PLACE, pr, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) fprintf(stderr, "pruned blobs: %lld of %lld pairs scored\n", (long long)pr[1], (long long)pr[0]);
  assert_true(pr[1] < pr[0] / 3);
  dims = 3;
  assert_all(check_knn(x, n, d, 31, 100, counts, 0));
  dims = 0;
  method = SLR_KNN_FULL;
  free(x);
}

/* random rows: nothing to prune, the automatic choice falls back */
static void test_pruned_fallback(void **state) {
  who();
  int64_t n = 600, d = 64, row0, cnt;
  float *x = malloc((size_t)(n * d) * sizeof(float));
  slr_rng r;
  slr_rng_init(&r, 3, 4, 0);
  for (int64_t i = 0; i < n * d; i++) x[i] = slr_rng_normal(&r);
  assert_int_equal(slr_l2_normalize(x, n, d, 0), 0);
  slr_shard_rows(n, rank, size, &row0, &cnt);
  slr_knn a, b;
  slr_knn_opts o = {.method = SLR_KNN_PRUNED, .dims = 8};
  assert_all(slr_knn_compute(MPI_COMM_WORLD, x + row0 * d, cnt, n, d, 10, &o, &a) == 0);
  assert_all(slr_knn_compute(MPI_COMM_WORLD, x + row0 * d, cnt, n, d, 10, NULL, &b) == 0);
  assert_int_equal(a.stats.pruned, 0);
  assert_true(a.stats.est_pilot > 0.05);
  assert_all(memcmp(a.idx, b.idx, (size_t)(cnt * 10) * sizeof(int32_t)) == 0);
  assert_all(memcmp(a.sim, b.sim, (size_t)(cnt * 10) * sizeof(float)) == 0);
  slr_knn_free(&a);
  slr_knn_free(&b);
  free(x);
}

static void test_normalize(void **state) {
  who();
  float x[6] = {3, 4, 0, 1, 1, 1};
  assert_int_equal(slr_l2_normalize(x, 2, 3, 0), 0);
  assert_true(x[0] == (float)(3.0 / 5.0) && x[1] == (float)(4.0 / 5.0) && x[2] == 0.0f);
  assert_true(x[3] == (float)(1.0 / sqrt(3.0)));
  float z[4] = {1, 0, 0, 0};
  assert_int_not_equal(slr_l2_normalize(z, 2, 2, 10), 0);
  assert_non_null(strstr(slr_error_text(), "row 11"));
  float nanrow[2] = {NAN, 1};
  assert_int_not_equal(slr_l2_normalize(nanrow, 1, 2, 4), 0);
  assert_non_null(strstr(slr_error_text(), "row 4"));
  assert_non_null(strstr(slr_error_text(), "non-finite"));
}

static void test_bad_k(void **state) {
  who();
  int64_t n = 10, d = 2, row0, cnt;
  float x[20];
  for (int i = 0; i < 20; i++) x[i] = (float)(i % 3) + 1.0f;
  slr_shard_rows(n, rank, size, &row0, &cnt);
  slr_knn knn;
  assert_all(slr_knn_compute(MPI_COMM_WORLD, x + row0 * d, cnt, n, d, 11, NULL, &knn) != 0);
  assert_all(slr_knn_compute(MPI_COMM_WORLD, x + row0 * d, cnt, n + 1, d, 3, NULL, &knn) != 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_normalize),
    cmocka_unit_test(test_exact_ties),
    cmocka_unit_test(test_blobs),
    cmocka_unit_test(test_pruned_exact),
    cmocka_unit_test(test_pruned_blobs),
    cmocka_unit_test(test_pruned_fallback),
    cmocka_unit_test(test_bad_k),
};
SLR_TEST_MAIN_MPI(tests)
