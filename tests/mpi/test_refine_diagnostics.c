// ranks: 1 2 3
/* Refinement diagnostics (moved, reclaimed, joined and separated pairs,
 * splits, merges, NMI between epochs) against the brute-force NumPy and
 * scikit-learn reference (tools/ref/refine_diagnostics_ref.py), on 1, 2 and
 * 3 ranks; bad input seen by one rank only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/dist.h"
#include "slr/eval.h"
#include "slr/io.h"
#include "slr_test.h"

static int rank, size;

static int32_t *read_part(slr_h5 *f, const char *g, const char *what, int64_t row0, int64_t cnt) {
  char name[96];
  snprintf(name, sizeof name, "%s/%s", g, what);
  int32_t *v = malloc((size_t)(cnt + 1) * sizeof(int32_t));
  assert_int_equal(slr_h5_read_rows(f, name, SLR_I32, row0, cnt, v), 0);
  return v;
}

static int64_t attr(slr_h5 *f, const char *g, const char *name) {
  int64_t v = -1;
  assert_int_equal(slr_h5_attr_get_i64(f, g, name, &v), 0);
  return v;
}

#define EQ(field, key)                                                                  \
  do {                                                                                  \
    int64_t want_ = attr(&f, g, key);                                                   \
    if ((field) != want_) {                                                             \
      print_error("case %d: %s = %lld, expected %lld\n", ci, key, (long long)(field),   \
                  (long long)want_);                                                    \
      ok = 0;                                                                           \
    }                                                                                   \
  } while (0)

static void test_against_reference(void **state) {
  slr_h5 f;
  assert_int_equal(slr_h5_open(&f, MPI_COMM_WORLD, SLR_FIXTURE_DIR "/eval/refine_diagnostics.h5",
                               NULL, 1, SLR_H5_FOREIGN_OK),
                   0);
  int64_t count = attr(&f, "/", "count");
  assert_true(count >= 5);
  for (int ci = 0; ci < count; ci++) {
    char g[32], name[64];
    snprintf(g, sizeof g, "/case%d", ci);
    snprintf(name, sizeof name, "%s/truth", g);
    int nd;
    int64_t dims[SLR_H5_MAXDIMS];
    assert_int_equal(slr_h5_shape(&f, name, &nd, dims, NULL), 0);
    int64_t row0, cnt;
    slr_shard_rows(dims[0], rank, size, &row0, &cnt);
    int32_t *truth = read_part(&f, g, "truth", row0, cnt);
    int32_t *yd = read_part(&f, g, "y_dbscan", row0, cnt);
    int32_t *yr = read_part(&f, g, "y_refined", row0, cnt);
    snprintf(name, sizeof name, "%s/y_prev", g);
    int has_prev = slr_h5_exists(&f, name) == 1;
    int32_t *yp = has_prev ? read_part(&f, g, "y_prev", row0, cnt) : NULL;
    double share;
    assert_int_equal(slr_h5_attr_get_f64(&f, g, "share", &share), 0);
    slr_refine_diagnostics d;
    assert_int_equal(slr_refine_diagnostics_compute(MPI_COMM_WORLD, cnt, yd, yr, yp, truth, share,
                                                    &d),
                     0);
    int ok = 1;
    EQ(d.samples, "samples");
    EQ(d.moved, "moved");
    EQ(d.reclaimed, "reclaimed");
    EQ(d.dropped, "dropped");
    EQ(d.reassigned, "reassigned");
    EQ(d.reclaimed_right, "reclaimed_right");
    EQ(d.pairs_joined, "pairs_joined");
    EQ(d.pairs_joined_right, "pairs_joined_right");
    EQ(d.pairs_separated, "pairs_separated");
    EQ(d.pairs_separated_right, "pairs_separated_right");
    ok &= d.has_prev == has_prev;
    ok &= fabs(d.join_precision - (d.pairs_joined ? (double)d.pairs_joined_right /
                                                        (double)d.pairs_joined : 0)) < 1e-15;
    if (has_prev) {
      EQ(d.transition.splits, "splits");
      EQ(d.transition.merges, "merges");
      EQ(d.transition.clusters_prev, "clusters_prev");
      EQ(d.transition.clusters_cur, "clusters_cur");
      double nmi;
      assert_int_equal(slr_h5_attr_get_f64(&f, g, "nmi", &nmi), 0);
      if (fabs(d.transition.nmi - nmi) > 1e-10) {
        print_error("case %d: nmi %.12f, expected %.12f\n", ci, d.transition.nmi, nmi);
        ok = 0;
      }
    } else {
      ok &= d.transition.splits == 0 && d.transition.nmi == 0;
    }
    free(truth);
    free(yd);
    free(yr);
    free(yp);
    assert_all(ok);
  }
  slr_h5_close(&f);
}

/* identical labelings: nothing moved, NMI 1, no split or merge */
static void test_identity(void **state) {
  const int32_t y[] = {0, 0, 1, 1, -1, 2, 2, 2, -1, 3};
  const int32_t t[] = {0, 0, 1, 1, 4, 2, 2, 2, 5, 3};
  int64_t row0, cnt;
  slr_shard_rows(10, rank, size, &row0, &cnt);
  slr_refine_diagnostics d;
  assert_int_equal(slr_refine_diagnostics_compute(MPI_COMM_WORLD, cnt, y + row0, y + row0,
                                                  y + row0, t + row0, 0.2, &d),
                   0);
  assert_all(d.samples == 10 && d.moved == 0 && d.pairs_joined == 0 && d.pairs_separated == 0 &&
             d.transition.splits == 0 && d.transition.merges == 0 &&
             fabs(d.transition.nmi - 1) < 1e-12 && d.transition.clusters_cur == 4);
}

/* a bad label on the last rank only: every rank gets the error */
static void test_bad_input(void **state) {
  int32_t y[] = {0, 1, 0, 1, 0, -2};
  const int32_t t[] = {0, 1, 0, 1, 0, 1};
  int64_t row0, cnt;
  slr_shard_rows(6, rank, size, &row0, &cnt);
  slr_refine_diagnostics d;
  int rc = slr_refine_diagnostics_compute(MPI_COMM_WORLD, cnt, y + row0, y + row0, NULL,
                                          t + row0, 0.2, &d);
  assert_int_equal(rc, SLR_ERR_INPUT);
  y[5] = 0;
  slr_label_transition tr;
  assert_int_equal(slr_label_transition_compute(MPI_COMM_WORLD, cnt, y + row0, y + row0, 0.7, &tr),
                   SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "share 0.7"));
}

static int setup(void **state) {
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_against_reference, setup),
    cmocka_unit_test_setup(test_identity, setup),
    cmocka_unit_test_setup(test_bad_input, setup),
};
SLR_TEST_MAIN_MPI(tests)
