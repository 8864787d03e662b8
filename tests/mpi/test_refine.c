// ranks: 1 2 3
/* The SLR step against the NumPy/SciPy reference (tools/ref/refine_ref.py):
 * IoU matrix, soft labels and hard labels for every mode, on 1, 2 and 3
 * ranks; the first epoch; bad labels seen by one rank only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/config.h"
#include "slr/dist.h"
#include "slr/io.h"
#include "slr/refine.h"
#include "slr_test.h"

static int rank, size;

/* The second step of a chain: the refined labels of the first are y_prev. */
static int run_next(slr_h5 *f, const char *g, const slr_refine_params *p, int64_t row0,
                    int64_t cnt, const int32_t *refined) {
  char name[96];
  int32_t *yn = malloc((size_t)(cnt + 1) * 4), *want = malloc((size_t)(cnt + 1) * 4);
  snprintf(name, sizeof name, "%s/y_next", g);
  assert_int_equal(slr_h5_read_rows(f, name, SLR_I32, row0, cnt, yn), 0);
  snprintf(name, sizeof name, "%s/labels_next", g);
  assert_int_equal(slr_h5_read_rows(f, name, SLR_I32, row0, cnt, want), 0);
  slr_refine_result r;
  if (slr_refine(MPI_COMM_WORLD, p, row0, cnt, refined, yn, &r))
    fail_msg("chain %s: %s", g, slr_error_message());
  int ok = 1;
  for (int64_t i = 0; i < cnt; i++) ok &= r.labels[i] == want[i];
  if (!ok) print_error("chain %s: second step labels differ\n", g);
  slr_refine_result_free(&r);
  free(yn);
  free(want);
  return ok;
}

static void run_case(slr_h5 *f, int ci, int variants) {
  char g[64], name[96];
  snprintf(g, sizeof g, "/case%d", ci);
  int nd, type;
  int64_t dims[SLR_H5_MAXDIMS];
  snprintf(name, sizeof name, "%s/soft", g);
  assert_int_equal(slr_h5_shape(f, name, &nd, dims, &type), 0);
  const int64_t n = dims[0], kc = dims[1];
  int64_t row0, cnt;
  slr_shard_rows(n, rank, size, &row0, &cnt);
  int32_t *yp = malloc((size_t)(cnt + 1) * 4), *yc = malloc((size_t)(cnt + 1) * 4),
          *want = malloc((size_t)(cnt + 1) * 4);
  double *soft = malloc((size_t)(cnt * kc + 1) * 8);
  snprintf(name, sizeof name, "%s/y_prev", g);
  assert_int_equal(slr_h5_read_rows(f, name, SLR_I32, row0, cnt, yp), 0);
  snprintf(name, sizeof name, "%s/y_cur", g);
  assert_int_equal(slr_h5_read_rows(f, name, SLR_I32, row0, cnt, yc), 0);
  snprintf(name, sizeof name, "%s/labels", g);
  assert_int_equal(slr_h5_read_rows(f, name, SLR_I32, row0, cnt, want), 0);
  snprintf(name, sizeof name, "%s/soft", g);
  assert_int_equal(slr_h5_read_rows(f, name, SLR_F64, row0, cnt, soft), 0);
  double *iou = NULL;
  int64_t niou = 0;
  snprintf(name, sizeof name, "%s/iou", g);
  assert_int_equal(slr_h5_read_all(f, name, SLR_F64, (void **)&iou, &niou), 0);

  /* the parameters through the configuration path, as training builds them */
  slr_refine_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  char mode[32] = "", linkage[32] = "", distance[32] = "euclidean", projection[32] = "row",
       threshold_mode[32] = "absolute", alpha_schedule[32] = "constant";
  int64_t reclaim, epoch = 0, epochs = 1, chain = 0;
  assert_int_equal(slr_h5_attr_get_str(f, g, "mode", mode, sizeof mode), 0);
  assert_int_equal(slr_h5_attr_get_str(f, g, "linkage", linkage, sizeof linkage), 0);
  assert_int_equal(slr_h5_attr_get_f64(f, g, "alpha", &cfg.alpha), 0);
  assert_int_equal(slr_h5_attr_get_f64(f, g, "threshold", &cfg.threshold), 0);
  assert_int_equal(slr_h5_attr_get_i64(f, g, "reclaim", &reclaim), 0);
  cfg.reclaim_outliers = (int)reclaim;
  cfg.alpha_end = cfg.alpha;
  if (variants) {
    assert_int_equal(slr_h5_attr_get_str(f, g, "distance", distance, sizeof distance), 0);
    assert_int_equal(slr_h5_attr_get_str(f, g, "projection", projection, sizeof projection), 0);
    assert_int_equal(slr_h5_attr_get_str(f, g, "threshold_mode", threshold_mode,
                                         sizeof threshold_mode), 0);
    assert_int_equal(slr_h5_attr_get_str(f, g, "alpha_schedule", alpha_schedule,
                                         sizeof alpha_schedule), 0);
    assert_int_equal(slr_h5_attr_get_f64(f, g, "alpha_end", &cfg.alpha_end), 0);
    assert_int_equal(slr_h5_attr_get_i64(f, g, "epoch", &epoch), 0);
    assert_int_equal(slr_h5_attr_get_i64(f, g, "epochs", &epochs), 0);
    assert_int_equal(slr_h5_attr_get_i64(f, g, "chain", &chain), 0);
  }
  /* the names through the configuration's key table, as a YAML file gives them */
  assert_int_equal(slr_config_enum_parse("refine.mode", mode, &cfg.mode), 0);
  assert_int_equal(slr_config_enum_parse("refine.linkage", linkage, &cfg.linkage), 0);
  assert_int_equal(slr_config_enum_parse("refine.distance", distance, &cfg.distance), 0);
  assert_int_equal(slr_config_enum_parse("refine.projection", projection, &cfg.projection), 0);
  assert_int_equal(slr_config_enum_parse("refine.threshold_mode", threshold_mode,
                                         &cfg.threshold_mode), 0);
  assert_int_equal(slr_config_enum_parse("refine.alpha_schedule", alpha_schedule,
                                         &cfg.alpha_schedule), 0);
  slr_refine_params p;
  if (slr_refine_params_from_config(&cfg, &p)) fail_msg("case %d: %s", ci, slr_error_message());
  p.alpha = slr_refine_alpha_at(&p, epoch, epochs);
  slr_refine_result r;
  int rc = slr_refine(MPI_COMM_WORLD, &p, row0, cnt, yp, yc, &r);
  if (rc) fail_msg("case %d: %s", ci, slr_error_message());
  int ok = 1;
  int64_t outl = 0, kmax = -1;
  for (int64_t i = 0; i < cnt; i++) {
    if (r.labels[i] != want[i]) {
      if (ok) print_error("case %d (%s): sample %lld label %d, expected %d\n", ci, mode,
                          (long long)(row0 + i), r.labels[i], want[i]);
      ok = 0;
    }
    outl += want[i] < 0;
    if (want[i] > kmax) kmax = want[i];
  }
  /* soft labels: the CSR rows equal the dense reference rows */
  assert_int_equal(r.soft.nrows, cnt);
  assert_int_equal(r.soft.ncols, kc);
  for (int64_t i = 0; i < cnt; i++) {
    double dense[4096] = {0};
    for (int64_t t = r.soft.indptr[i]; t < r.soft.indptr[i + 1]; t++) {
      if (t > r.soft.indptr[i]) ok &= r.soft.indices[t] > r.soft.indices[t - 1];
      dense[r.soft.indices[t]] = r.soft.values[t];
    }
    for (int64_t j = 0; j < kc; j++) ok &= fabs(dense[j] - soft[i * kc + j]) < 1e-12;
  }
  /* IoU matrix, the same on every rank */
  assert_int_equal(r.iou.nrows * r.iou.ncols, niou);
  for (int64_t a = 0; a < r.iou.nrows; a++) {
    double dense[4096] = {0};
    for (int64_t t = r.iou.indptr[a]; t < r.iou.indptr[a + 1]; t++)
      dense[r.iou.indices[t]] = r.iou.values[t];
    for (int64_t b = 0; b < r.iou.ncols; b++)
      ok &= fabs(dense[b] - iou[a * r.iou.ncols + b]) < 1e-12;
  }
  int64_t g_outl = 0, g_kmax = -1;
  MPI_Allreduce(&outl, &g_outl, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&kmax, &g_kmax, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  ok &= r.noutliers == g_outl && r.nclusters == g_kmax + 1;
  /* P is the projection the soft labels were made with */
  for (int64_t a = 0; a < r.proj.nrows; a++) {
    double sum = 0;
    for (int64_t t = r.proj.indptr[a]; t < r.proj.indptr[a + 1]; t++) sum += r.proj.values[t];
    if (p.projection == SLR_PROJECTION_ROW && sum > 0) ok &= fabs(sum - 1) < 1e-12;
    if (p.projection != SLR_PROJECTION_ROW) ok &= sum <= 1 + 1e-12;
  }
  if (chain) ok &= run_next(f, g, &p, row0, cnt, r.labels);
  slr_refine_result_free(&r);
  free(yp);
  free(yc);
  free(want);
  free(soft);
  free(iou);
  assert_all(ok);
}

static void test_reference_cases(void **state) {
  slr_h5 f;
  assert_int_equal(slr_h5_open(&f, MPI_COMM_WORLD, SLR_FIXTURE_DIR "/refine/cases.h5", NULL, 1,
                               SLR_H5_FOREIGN_OK),
                   0);
  int64_t count = 0;
  assert_int_equal(slr_h5_attr_get_i64(&f, "/", "count", &count), 0);
  assert_true(count >= 8);
  for (int ci = 0; ci < count; ci++) run_case(&f, ci, 0);
  slr_h5_close(&f);
}

/* Every variant: distances, projections, threshold modes, the alpha
 * schedule, refined labels projected (a chain of two steps). */
static void test_variant_cases(void **state) {
  slr_h5 f;
  assert_int_equal(slr_h5_open(&f, MPI_COMM_WORLD, SLR_FIXTURE_DIR "/refine/variants.h5", NULL,
                               1, SLR_H5_FOREIGN_OK),
                   0);
  int64_t count = 0;
  assert_int_equal(slr_h5_attr_get_i64(&f, "/", "count", &count), 0);
  assert_true(count >= 20);
  for (int ci = 0; ci < count; ci++) run_case(&f, ci, 1);
  slr_h5_close(&f);
}

/* The first adaptation epoch: no previous labels, nothing is refined. */
static void test_first_epoch(void **state) {
  const int32_t y[] = {0, 1, -1, 1, 2, 0, -1, 2, 2, 3};
  int64_t row0, cnt;
  slr_shard_rows(10, rank, size, &row0, &cnt);
  slr_refine_params p = {.mode = SLR_REFINE_HIERARCHICAL, .alpha = 0.5, .linkage = SLR_LINKAGE_AVERAGE,
                         .threshold = 0.5, .reclaim_outliers = 1};
  slr_refine_result r;
  assert_int_equal(slr_refine(MPI_COMM_WORLD, &p, row0, cnt, NULL, y + row0, &r), 0);
  int ok = r.nclusters == 4 && r.noutliers == 2 && r.k_prev == 0 && r.k_cur == 4;
  for (int64_t i = 0; i < cnt; i++) {
    ok &= r.labels[i] == y[row0 + i];
    int64_t len = r.soft.indptr[i + 1] - r.soft.indptr[i];
    if (y[row0 + i] < 0)
      ok &= len == 0;
    else
      ok &= len == 1 && r.soft.indices[r.soft.indptr[i]] == y[row0 + i] &&
            r.soft.values[r.soft.indptr[i]] == 1.0;
  }
  slr_refine_result_free(&r);
  assert_all(ok);
}

/* alpha = 1: soft labels are one-hot, hierarchical with a threshold below
 * sqrt(2) gives back the current clusters, renumbered by first sample. */
static void test_alpha_one(void **state) {
  const int32_t yp[] = {0, 0, 1, 1, -1, 2, 2, 0};
  const int32_t yc[] = {2, 2, 0, 0, 1, 1, -1, 0};
  const int32_t want[] = {0, 0, 1, 1, 2, 2, -1, 1};
  int64_t row0, cnt;
  slr_shard_rows(8, rank, size, &row0, &cnt);
  slr_refine_params p = {.mode = SLR_REFINE_HIERARCHICAL, .alpha = 1.0, .linkage = SLR_LINKAGE_AVERAGE,
                         .threshold = 0.5, .reclaim_outliers = 1};
  slr_refine_result r;
  assert_int_equal(slr_refine(MPI_COMM_WORLD, &p, row0, cnt, yp + row0, yc + row0, &r), 0);
  int ok = r.nclusters == 3 && r.noutliers == 1;
  for (int64_t i = 0; i < cnt; i++) ok &= r.labels[i] == want[row0 + i];
  slr_refine_result_free(&r);
  assert_all(ok);
}

/* A bad label on the last rank only: every rank gets the error. */
static void test_bad_label(void **state) {
  int32_t y[] = {0, 1, 0, 1, 0, -2};
  int64_t row0, cnt;
  slr_shard_rows(6, rank, size, &row0, &cnt);
  slr_refine_params p = {.mode = SLR_REFINE_ARGMAX, .alpha = 0.5, .linkage = SLR_LINKAGE_AVERAGE,
                         .threshold = 0.5, .reclaim_outliers = 1};
  slr_refine_result r;
  int rc = slr_refine(MPI_COMM_WORLD, &p, row0, cnt, y + row0, y + row0, &r);
  assert_int_equal(rc, SLR_ERR_INPUT);
  assert_non_null(strstr(slr_error_text(), "label -2 of sample 5"));
  p.alpha = 1.5;
  rc = slr_refine(MPI_COMM_WORLD, &p, row0, cnt, y + row0, y + row0, &r);
  assert_int_equal(rc, SLR_ERR_CONFIG);
  assert_non_null(strstr(slr_error_text(), "refine.alpha 1.5"));
}

/* The configuration's names parse once; bad names and combinations name the
 * key and the value; the alpha schedule and the threshold modes. */
static void test_params(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  slr_refine_params p;
  assert_int_equal(slr_refine_params_from_config(&c.refine, &p), 0);
  /* the defaults: the zero values of the enums, and the threshold and outlier
   * rule chosen on the study's validation task (docs/study.md) */
  assert_int_equal(p.mode, SLR_REFINE_HIERARCHICAL);
  assert_int_equal(p.distance, SLR_AGGLO_EUCLIDEAN);
  assert_int_equal(p.projection, SLR_PROJECTION_ROW);
  assert_int_equal(p.threshold_mode, SLR_THRESHOLD_ABSOLUTE);
  assert_int_equal(p.alpha_schedule, SLR_ALPHA_CONSTANT);
  assert_int_equal(p.previous, SLR_PREVIOUS_DBSCAN);
  assert_int_equal(p.memory, SLR_MEMORY_REFINED);
  assert_true(p.alpha == 0.5 && p.threshold == 0.72 && p.reclaim_outliers == 0);
  /* an unknown value is refused by the key table, naming key and value */
  assert_int_equal(slr_config_set(&c, "refine.distance=manhattan"), SLR_ERR_CONFIG);
  assert_non_null(strstr(slr_error_text(), "manhattan"));
  assert_int_equal(slr_config_set(&c, "refine.distance=cosine"), 0);
  assert_int_equal(slr_config_set(&c, "refine.linkage=ward"), 0);
  assert_int_equal(slr_refine_params_from_config(&c.refine, &p), SLR_ERR_CONFIG);
  assert_non_null(strstr(slr_error_text(), "refine.linkage: \"ward\" needs"));
  assert_int_equal(slr_config_set(&c, "refine.distance=hellinger"), 0);
  assert_int_equal(slr_refine_params_from_config(&c.refine, &p), 0);
  assert_int_equal(p.distance, SLR_AGGLO_HELLINGER);
  assert_int_equal(p.linkage, SLR_LINKAGE_WARD);
  assert_int_equal(slr_config_set(&c, "refine.projection=column"), SLR_ERR_CONFIG);
  assert_non_null(strstr(slr_error_text(), "column"));
  assert_int_equal(slr_config_set(&c, "refine.projection=iou"), 0);
  assert_int_equal(slr_config_set(&c, "refine.memory=both"), SLR_ERR_CONFIG);
  assert_non_null(strstr(slr_error_text(), "both"));
  /* through the YAML path: --set with a bad value is rejected there */
  assert_int_equal(slr_config_set(&c, "refine.previous=last"), SLR_ERR_CONFIG);
  assert_int_equal(slr_config_set(&c, "refine.previous=refined"), 0);
  assert_int_equal(slr_config_set(&c, "refine.memory=dbscan"), 0);
  assert_int_equal(slr_config_set(&c, "refine.alpha_schedule=linear"), 0);
  assert_int_equal(slr_config_set(&c, "refine.alpha=0.8"), 0);
  assert_int_equal(slr_config_set(&c, "refine.alpha_end=0.2"), 0);
  assert_int_equal(slr_config_set(&c, "refine.threshold_mode=alpha"), 0);
  assert_int_equal(slr_config_set(&c, "refine.threshold=1.5"), 0);
  assert_int_equal(slr_refine_params_from_config(&c.refine, &p), 0);
  assert_int_equal(p.previous, SLR_PREVIOUS_REFINED);
  assert_int_equal(p.memory, SLR_MEMORY_DBSCAN);
  assert_true(fabs(slr_refine_alpha_at(&p, 0, 5) - 0.8) < 1e-15);
  assert_true(fabs(slr_refine_alpha_at(&p, 2, 5) - 0.5) < 1e-15);
  assert_true(fabs(slr_refine_alpha_at(&p, 4, 5) - 0.2) < 1e-15);
  assert_true(fabs(slr_refine_alpha_at(&p, 9, 5) - 0.2) < 1e-15);
  assert_true(fabs(slr_refine_alpha_at(&p, 3, 1) - 0.8) < 1e-15);
  p.alpha = slr_refine_alpha_at(&p, 2, 5);
  assert_true(fabs(slr_refine_threshold_at(&p) - 0.75) < 1e-15);
  p.alpha_schedule = SLR_ALPHA_CONSTANT;
  p.alpha = 0.8;
  assert_true(slr_refine_alpha_at(&p, 3, 5) == 0.8);
  p.threshold_mode = SLR_THRESHOLD_ABSOLUTE;
  assert_true(slr_refine_threshold_at(&p) == 1.5);
}

static int setup(void **state) {
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_reference_cases, setup),
    cmocka_unit_test_setup(test_variant_cases, setup),
    cmocka_unit_test_setup(test_params, setup),
    cmocka_unit_test_setup(test_first_epoch, setup),
    cmocka_unit_test_setup(test_alpha_one, setup),
    cmocka_unit_test_setup(test_bad_label, setup),
};
SLR_TEST_MAIN_MPI(tests)
