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
  assert_true(c.solver.pretrain.lr == 3.5e-4 && c.solver.adapt.lr == 3.5e-4);
  assert_int_equal(c.solver.pretrain.schedule, SLR_SCHED_MULTISTEP);
  assert_int_equal(c.solver.adapt.schedule, SLR_SCHED_STEP);
  assert_int_equal(c.data.target.format, SLR_FMT_DUKEMTMC);
  assert_int_equal(c.run.log_level, SLR_LOG_INFO);
  assert_int_equal(c.data.height, 256);
  assert_int_equal(c.train.stages.n, 2);
  assert_string_equal(c.train.stages.v[1], "adapt");
  assert_int_equal(c.solver.pretrain.milestones.n, 2);
  assert_int_equal(c.solver.pretrain.milestones.v[1], 70);
  assert_int_equal(c.refine.mode, 2); /* hierarchical */
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
                            "  optimizer: sgd\n"
                            "  pretrain:\n"
                            "    lr: 1e-3\n"
                            "    milestones: [5, 9]\n"
                            "  adapt: {lr: 2e-4, schedule: cosine}\n"
                            "train:\n"
                            "  stages: [adapt]\n"
                            "refine:\n"
                            "  mode: argmax\n"
                            "  reclaim_outliers: no\n");
  assert_int_equal(slr_config_load(&c, p), 0);
  assert_int_equal(c.data.source.format, SLR_FMT_MSMT17);
  assert_int_equal(c.solver.optimizer, SLR_OPTIM_SGD);
  assert_int_equal(c.solver.adapt.schedule, SLR_SCHED_COSINE);
  assert_true(c.solver.adapt.lr == 2e-4);
  assert_string_equal(c.data.source.root, "/data/msmt");
  assert_int_equal(c.data.height, 128);
  assert_true(c.solver.pretrain.lr == 1e-3);
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

static void test_duplicates(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  const char *p = write_cfg("dup.yaml", "cluster:\n  k1: 20\n  eps: 0.5\n  k1: 25\n");
  expect_error(slr_config_load(&c, p), "dup.yaml:4", "duplicate key \"cluster.k1\" (first at line 2)");
  p = write_cfg("dup2.yaml", "cluster:\n  k1: 20\nrun:\n  seed: 2\ncluster:\n  eps: 0.5\n");
  expect_error(slr_config_load(&c, p), "dup2.yaml:5", "duplicate section \"cluster\" (first at line 1)");
  p = write_cfg("dup3.yaml", "data:\n  source: {format: list, format: market1501}\n");
  expect_error(slr_config_load(&c, p), "dup3.yaml:2", "duplicate key \"data.source.format\"");
}

static void test_aliases(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  /* an anchor alone is legal and harmless */
  const char *p = write_cfg("anchor.yaml", "cluster:\n  k1: &k 20\n  k2: 6\n");
  assert_int_equal(slr_config_load(&c, p), 0);
  assert_int_equal(c.cluster.k1, 20);
  p = write_cfg("alias.yaml", "cluster:\n  k1: &k 20\neval:\n  rerank_k1: *k\n");
  expect_error(slr_config_load(&c, p), "alias.yaml:4: eval.rerank_k1",
               "YAML aliases (*k) are not supported");
  p = write_cfg("merge.yaml",
                "solver:\n  pretrain: &s {lr: 1e-3}\n  adapt:\n    <<: *s\n    schedule: step\n");
  expect_error(slr_config_load(&c, p), "merge.yaml:4", "merge keys (<<) are not supported");
}

static void test_not_a_file(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  expect_error(slr_config_load(&c, dir), dir, "is a folder, not a configuration file");
}

static void test_enums(void **state) {
  slr_config c;
  slr_config_defaults(&c);
  expect_error(slr_config_set(&c, "solver.pretrain.schedule=exponential"),
               "solver.pretrain.schedule: \"exponential\"", "constant|step|multistep|cosine");
  expect_error(slr_config_set(&c, "solver.optimizer=adamw"), "solver.optimizer", "adam|sgd");
  assert_int_equal(slr_config_set(&c, "checkpoint.resume=never"), 0);
  assert_int_equal(c.checkpoint.resume, SLR_RESUME_NEVER);
  assert_string_equal(slr_config_enum_name("checkpoint.resume", c.checkpoint.resume), "never");
  int v = -1;
  assert_int_equal(slr_config_enum_parse("data.target.format", "personx", &v), 0);
  assert_int_equal(v, SLR_FMT_PERSONX);
  expect_error(slr_config_enum_parse("data.target.format", "cuhk03", &v), "cuhk03", "market1501|");
  /* one home for ranges: the command-line aliases use the table's */
  assert_int_equal(slr_config_set(&c, "cluster.k1=50000"), 0);
  expect_error(slr_config_set(&c, "cluster.k1=100001"), "cluster.k1", "out of range");
  assert_string_equal(slr_config_default_text("cluster.k1"), "30");
}

static void test_diff(void **state) {
  slr_config a, b;
  slr_config_defaults(&a);
  slr_config_defaults(&b);
  int n = -1;
  assert_null(slr_config_diff(&a, &b, &n));
  assert_int_equal(n, 0);
  assert_int_equal(slr_config_set(&b, "cluster.eps=0.5"), 0);
  assert_int_equal(slr_config_set(&b, "train.adapt.iters=10"), 0);
  assert_int_equal(slr_config_set(&b, "solver.adapt.schedule=cosine"), 0);
  char *d = slr_config_diff(&a, &b, &n);
  assert_non_null(d);
  assert_int_equal(n, 3);
  assert_non_null(strstr(d, "cluster.eps: 0.6 -> 0.5\n"));
  assert_non_null(strstr(d, "train.adapt.iters: 200 -> 10\n"));
  assert_non_null(strstr(d, "solver.adapt.schedule: step -> cosine\n"));
  free(d);
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
  const char *p = write_cfg("type.yaml", "solver:\n  adapt:\n    lr: fast\n");
  expect_error(slr_config_load(&c, p), "type.yaml:3: solver.adapt.lr: \"fast\"", "is not a number");
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
  expect_error(slr_config_set(&c, "solver.pretrain.lr=abc"), "solver.pretrain.lr: \"abc\"", "not a number");
  expect_error(slr_config_set(&c, "no.such=1"), "unknown key \"no.such\"", NULL);
  expect_error(slr_config_set(&c, "solver.pretrain.lr"), "--set solver.pretrain.lr", "KEY=VALUE");
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

static int setup(void **state) { return slr_test_dir_open(&dir); }
static int teardown(void **state) { return slr_test_dir_close(&dir); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_duplicates),
      cmocka_unit_test(test_aliases),
      cmocka_unit_test(test_not_a_file),
      cmocka_unit_test(test_enums),
      cmocka_unit_test(test_diff),
      cmocka_unit_test(test_defaults),     cmocka_unit_test(test_load_and_set),
      cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_unknown_key),
      cmocka_unit_test(test_wrong_type),   cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_bad_set),      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_syntax_error), cmocka_unit_test(test_cross_checks),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
