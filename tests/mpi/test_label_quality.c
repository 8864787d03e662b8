// ranks: 1 2 3
/* Label diagnostics (NMI, ARI, pairwise precision/recall, counts) against
 * scikit-learn (tools/ref/label_quality_ref.py), on 1, 2 and 3 ranks. */
#include <math.h>
#include <stdlib.h>

#include "slr/dist.h"
#include "slr/eval.h"
#include "slr/io.h"
#include "slr_test.h"

static void test_against_sklearn(void **state) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  slr_h5 f;
  assert_int_equal(slr_h5_open(&f, MPI_COMM_WORLD, SLR_FIXTURE_DIR "/eval/label_quality.h5",
                               NULL, 1, SLR_H5_FOREIGN_OK),
                   0);
  int64_t count;
  assert_int_equal(slr_h5_attr_get_i64(&f, "/", "count", &count), 0);
  for (int ci = 0; ci < count; ci++) {
    char g[32], name[64];
    snprintf(g, sizeof g, "/case%d", ci);
    snprintf(name, sizeof name, "%s/labels", g);
    int nd;
    int64_t dims[SLR_H5_MAXDIMS];
    assert_int_equal(slr_h5_shape(&f, name, &nd, dims, NULL), 0);
    int64_t row0, cnt;
    slr_shard_rows(dims[0], rank, size, &row0, &cnt);
    int32_t *lab = malloc((size_t)(cnt + 1) * 4), *truth = malloc((size_t)(cnt + 1) * 4);
    assert_int_equal(slr_h5_read_rows(&f, name, SLR_I32, row0, cnt, lab), 0);
    snprintf(name, sizeof name, "%s/truth", g);
    assert_int_equal(slr_h5_read_rows(&f, name, SLR_I32, row0, cnt, truth), 0);
    double nmi, ari, p, r;
    int64_t outl, clusters;
    slr_h5_attr_get_f64(&f, g, "nmi", &nmi);
    slr_h5_attr_get_f64(&f, g, "ari", &ari);
    slr_h5_attr_get_f64(&f, g, "precision", &p);
    slr_h5_attr_get_f64(&f, g, "recall", &r);
    slr_h5_attr_get_i64(&f, g, "outliers", &outl);
    slr_h5_attr_get_i64(&f, g, "clusters", &clusters);
    slr_label_quality q;
    assert_int_equal(slr_label_quality_compute(MPI_COMM_WORLD, cnt, lab, truth, &q), 0);
    int ok = fabs(q.nmi - nmi) < 1e-10 && fabs(q.ari - ari) < 1e-10 &&
             fabs(q.precision - p) < 1e-12 && fabs(q.recall - r) < 1e-12 &&
             q.outliers == outl && q.clusters == clusters && q.samples == dims[0];
    if (!ok)
      print_error("case %d: nmi %.12f/%.12f ari %.12f/%.12f p %.6f/%.6f r %.6f/%.6f\n", ci, q.nmi,
                  nmi, q.ari, ari, q.precision, p, q.recall, r);
    assert_all(ok);
    free(lab);
    free(truth);
  }
  slr_h5_close(&f);
}

static const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_sklearn)};
SLR_TEST_MAIN_MPI(tests)
