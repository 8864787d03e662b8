/* Configuration: defaults, loading, overrides, and every kind of bad input
 * named exactly (file, line, key, value) with the config error code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/config.h"
#include "slr_test.h"

static char *dir;

static char *write_cfg(const char *name, const char *text) {
  static char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  slr_test_write(path, text);
  return path;
}

static void expect_error(int rc, const char *needle1, const char *needle2) {
  assert_int_equal(rc, SLR_ERR_CONFIG);
  const char *m = slr_error_message();
  if (!strstr(m, needle1) || (needle2 && !strstr(m, needle2)))
    fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", m, needle1, needle2 ? needle2 : "");
}

static void test_defaults(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  assert_int_equal(slr_config_validate(&c), 0);
  assert_int_equal(c.cluster.k1, 30);
  assert_int_equal(c.cluster.k2, 6);
  assert_true(c.cluster.eps == 0.6);
  assert_true(c.solver.lr == 3.5e-4);
  assert_int_equal(c.data.height, 256);
  assert_int_equal(c.train.stages.n, 2);
  assert_string_equal(c.train.stages.v[1], "adapt");
  assert_int_equal(c.solver.pretrain.milestones.n, 2);
  assert_int_equal(c.solver.pretrain.milestones.v[1], 70);
  assert_string_equal(c.refine.mode, "hierarchical");
}

static void test_load_and_set(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  const char *p = write_cfg("ok.yaml",
                            "# a comment\n"
                            "data:\n"
                            "  source: {format: msmt17, root: /data/msmt}\n"
                            "  height: 128\n"
                            "solver:\n"
                            "  lr: 1e-3\n"
                            "  pretrain:\n"
                            "    milestones: [5, 9]\n"
                            "train:\n"
                            "  stages: [adapt]\n"
                            "refine:\n"
                            "  mode: argmax\n"
                            "  reclaim_outliers: no\n");
  assert_int_equal(slr_config_load(&c, p), 0);
  assert_string_equal(c.data.source.format, "msmt17");
  assert_string_equal(c.data.source.root, "/data/msmt");
  assert_int_equal(c.data.height, 128);
  assert_true(c.solver.lr == 1e-3);
  assert_int_equal(c.solver.pretrain.milestones.n, 2);
  assert_int_equal(c.solver.pretrain.milestones.v[0], 5);
  assert_int_equal(c.train.stages.n, 1);
  assert_int_equal(c.refine.reclaim_outliers, 0);
  assert_int_equal(slr_config_set(&c, "cluster.eps=0.45"), 0);
  assert_true(c.cluster.eps == 0.45);
  assert_int_equal(slr_config_set(&c, "solver.adapt.milestones=[3, 4, 5]"), 0);
  assert_int_equal(c.solver.adapt.milestones.n, 3);
  assert_int_equal(slr_config_set(&c, "data.target.root=\"/a b/c\""), 0);
  assert_string_equal(c.data.target.root, "/a b/c");
  assert_int_equal(slr_config_set(&c, "model.pretrained="), 0);
  assert_string_equal(c.model.pretrained, "");
}

/* the written configuration reads back to the same configuration */
static void test_round_trip(void **state) {
  slr_config a, b;
  slr_config_defaults(&a);
  assert_int_equal(slr_config_set(&a, "data.source.root=/x: y"), 0);
  assert_int_equal(slr_config_set(&a, "refine.alpha=0.1"), 0);
  assert_int_equal(slr_config_set(&a, "run.log_level=debug"), 0);
  assert_int_equal(slr_config_set(&a, "data.target.train_list=true"), 0);
  assert_int_equal(slr_config_save(&a, dir), 0);
  char path[1024];
  snprintf(path, sizeof path, "%s/config.yaml", dir);
  slr_config_defaults(&b);
  assert_int_equal(slr_config_load(&b, path), 0);
  char *ta = slr_config_to_string(&a), *tb = slr_config_to_string(&b);
  assert_string_equal(ta, tb);
  assert_non_null(strstr(ta, "alpha: 0.1\n"));
  assert_string_equal(b.data.source.root, "/x: y");
  assert_string_equal(b.data.target.train_list, "true");
  free(ta);
  free(tb);
}

static void test_unknown_key(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  const char *p = write_cfg("unknown.yaml", "cluster:\n  k1: 20\n  epsilon: 0.5\n");
  expect_error(slr_config_load(&c, p), "unknown.yaml:3", "unknown key \"cluster.epsilon\"");
  p = write_cfg("unknown2.yaml", "clusters:\n  k1: 20\n");
  expect_error(slr_config_load(&c, p), "unknown2.yaml:1", "\"clusters\"");
}

static void test_wrong_type(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  const char *p = write_cfg("type.yaml", "solver:\n  lr: fast\n");
  expect_error(slr_config_load(&c, p), "type.yaml:2: solver.lr: \"fast\"", "is not a number");
  p = write_cfg("type2.yaml", "cluster:\n\n  k1: 2.5\n");
  expect_error(slr_config_load(&c, p), "type2.yaml:3: cluster.k1: \"2.5\"", "not an integer");
  p = write_cfg("type3.yaml", "eval:\n  rerank: maybe\n");
  expect_error(slr_config_load(&c, p), "type3.yaml:2: eval.rerank: \"maybe\"", "boolean");
  p = write_cfg("type4.yaml", "refine:\n  mode: best\n");
  expect_error(slr_config_load(&c, p), "type4.yaml:2: refine.mode: \"best\"",
               "none|argmax|hierarchical");
  p = write_cfg("type5.yaml", "cluster: 3\n");
  expect_error(slr_config_load(&c, p), "type5.yaml:1: cluster: \"3\"", "section");
  p = write_cfg("type6.yaml", "cluster:\n  k1: [1, 2]\n");
  expect_error(slr_config_load(&c, p), "type6.yaml:2: cluster.k1", "single value");
}

static void test_out_of_range(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  const char *p = write_cfg("range.yaml", "refine:\n  alpha: 1.5\n");
  expect_error(slr_config_load(&c, p), "range.yaml:2: refine.alpha: \"1.5\"", "out of range");
  p = write_cfg("range2.yaml", "cluster:\n  k1: 0\n");
  expect_error(slr_config_load(&c, p), "range2.yaml:2: cluster.k1: \"0\"", "out of range");
  p = write_cfg("range3.yaml", "solver:\n  adapt:\n    milestones: [10, -1]\n");
  expect_error(slr_config_load(&c, p), "range3.yaml:3: solver.adapt.milestones: \"-1\"",
               "out of range");
}

static void test_bad_set(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  expect_error(slr_config_set(&c, "solver.lr=abc"), "solver.lr: \"abc\"", "not a number");
  expect_error(slr_config_set(&c, "no.such=1"), "unknown key \"no.such\"", NULL);
  expect_error(slr_config_set(&c, "solver.lr"), "--set solver.lr", "KEY=VALUE");
  expect_error(slr_config_set(&c, "=3"), "--set =3", "KEY=VALUE");
  expect_error(slr_config_set(&c, "cluster.eps=2"), "cluster.eps: \"2\"", "out of range");
  expect_error(slr_config_set(&c, "cluster.eps="), "cluster.eps: \"\"", "empty");
  expect_error(slr_config_set(&c, "solver=1"), "\"solver\" is a section", NULL);
  expect_error(slr_config_set(&c, "train.stages=[adapt, finetune]"),
               "train.stages: \"finetune\"", "pretrain|adapt");
  /* a failed --set leaves the value as it was */
  assert_true(c.cluster.eps == 0.6);
}

static void test_missing_file(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  char p[1024];
  snprintf(p, sizeof p, "%s/nope.yaml", dir);
  expect_error(slr_config_load(&c, p), "nope.yaml: cannot open configuration",
               "No such file");
}

static void test_syntax_error(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  const char *p = write_cfg("syntax.yaml", "cluster:\n  k1: 20\n  k2: [6\nrefine:\n  alpha: 1\n");
  expect_error(slr_config_load(&c, p), "syntax.yaml:", "YAML syntax error");
  p = write_cfg("syntax2.yaml", "- a\n- b\n");
  expect_error(slr_config_load(&c, p), "syntax2.yaml:1", "mapping of sections");
}

static void test_cross_checks(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  assert_int_equal(slr_config_set(&c, "train.adapt.batch_size=30"), 0);
  int rc = slr_config_validate(&c);
  expect_error(rc, "train.adapt.batch_size 30", "train.adapt.instances 16");
}

static int setup(void **state) {
  dir = slr_test_tmpdir(0);
  return dir[0] ? 0 : -1;
}
static int teardown(void **state) {
  slr_test_rmtree(dir);
  free(dir);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),     cmocka_unit_test(test_load_and_set),
      cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_unknown_key),
      cmocka_unit_test(test_wrong_type),   cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_bad_set),      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_syntax_error), cmocka_unit_test(test_cross_checks),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
