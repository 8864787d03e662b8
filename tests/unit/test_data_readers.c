/* data readers: small trees with the real naming schemes and layouts of
 * Market-1501, DukeMTMC-reID, MSMT17 (V1, V2), PersonX and list files,
 * made here in a temporary folder (empty files): exact counts of ids,
 * images and cameras per split, junk and distractor handling, relabelling,
 * 0-based cameras, and the bad-layout and bad-name errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "slr/data.h"
#include "slr/config.h"
#include "slr_test.h"

static char *tmp;

static void touch(const char *dir, const char *sub, const char *name) {
  char p[2048];
  snprintf(p, sizeof p, "%s/%s", dir, sub);
  slr_mkdir_p(p);
  snprintf(p, sizeof p, "%s/%s/%s", dir, sub, name);
  slr_test_write(p, "");
}

static void cfg_for(slr_domain_cfg *c, const char *format, const char *root) {
  memset(c, 0, sizeof *c);
  int f = 0;
  assert_int_equal(slr_config_enum_parse("data.source.format", format, &f), 0);
  c->format = (slr_data_format)f;
  slr_strlcpy(c->root, root, sizeof c->root);
  c->use_val = 1;
}

static void expect_counts(const slr_split *s, int64_t n, int ids, int cams) {
  assert_int_equal(s->n, n);
  assert_int_equal(s->num_pids, ids);
  assert_int_equal(s->num_cams, cams);
}

static void expect_error(int rc, const char *a, const char *b) {
  assert_int_equal(rc, SLR_ERR_INPUT);
  const char *m = slr_error_message();
  if (!strstr(m, a) || (b && !strstr(m, b)))
    fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", m, a, b ? b : "");
}

/* index of the path ending in name, or -1 */
static int64_t find(const slr_split *s, const char *name) {
  size_t ln = strlen(name);
  for (int64_t i = 0; i < s->n; i++) {
    size_t lp = strlen(s->paths[i]);
    if (lp >= ln && strcmp(s->paths[i] + lp - ln, name) == 0) return i;
  }
  return -1;
}

static void test_market(void **state) {
  char root[1024];
  snprintf(root, sizeof root, "%s/market/Market-1501-v15.09.15", tmp);
  /* train: pids 2, 7, 1500 over cameras 1, 3, 6 */
  touch(root, "bounding_box_train", "0002_c1s1_000451_03.jpg");
  touch(root, "bounding_box_train", "0002_c3s1_000551_01.jpg");
  touch(root, "bounding_box_train", "0007_c3s3_064744_01.jpg");
  touch(root, "bounding_box_train", "1500_c6s4_000001_02.jpg");
  touch(root, "bounding_box_train", "Thumbs.db"); /* ignored */
  touch(root, "query", "0003_c1s1_000001_00.jpg");
  touch(root, "query", "0004_c2s1_000001_00.jpg");
  /* gallery: junk (-1) dropped, distractors (0) kept */
  touch(root, "bounding_box_test", "-1_c1s1_000401_03.jpg");
  touch(root, "bounding_box_test", "-1_c2s1_000401_03.jpg");
  touch(root, "bounding_box_test", "0000_c1s1_000151_01.jpg");
  touch(root, "bounding_box_test", "0000_c5s1_000151_01.jpg");
  touch(root, "bounding_box_test", "0003_c4s1_000151_01.jpg");
  touch(root, "bounding_box_test", "0004_c6s1_000151_01.jpg");
  slr_domain_cfg c;
  char top[1024];
  snprintf(top, sizeof top, "%s/market", tmp); /* the release's subfolder is found */
  cfg_for(&c, "market1501", top);
  slr_dataset ds;
  assert_int_equal(slr_dataset_read(&ds, &c), 0);
  expect_counts(&ds.split[SLR_TRAIN], 4, 3, 3);
  expect_counts(&ds.split[SLR_QUERY], 2, 2, 2);
  expect_counts(&ds.split[SLR_GALLERY], 4, 3, 4);
  /* relabelled in pid order, cameras 0-based */
  int64_t i = find(&ds.split[SLR_TRAIN], "1500_c6s4_000001_02.jpg");
  assert_true(i >= 0);
  assert_int_equal(ds.split[SLR_TRAIN].pids[i], 2);
  assert_int_equal(ds.split[SLR_TRAIN].camids[i], 5);
  i = find(&ds.split[SLR_TRAIN], "0007_c3s3_064744_01.jpg");
  assert_int_equal(ds.split[SLR_TRAIN].pids[i], 1);
  assert_int_equal(ds.split[SLR_TRAIN].camids[i], 2);
  i = find(&ds.split[SLR_GALLERY], "0000_c5s1_000151_01.jpg");
  assert_true(i >= 0);
  assert_int_equal(ds.split[SLR_GALLERY].pids[i], 0);
  assert_int_equal(ds.split[SLR_GALLERY].camids[i], 4);
  assert_int_equal(find(&ds.split[SLR_GALLERY], "-1_c1s1_000401_03.jpg"), -1);
  i = find(&ds.split[SLR_QUERY], "0004_c2s1_000001_00.jpg");
  assert_int_equal(ds.split[SLR_QUERY].pids[i], 4); /* query keeps the original pid */
  /* the summary table */
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  slr_dataset_print(&ds, m);
  fclose(m);
  assert_non_null(strstr(buf, "train    |     3 |        4 |         3"));
  assert_non_null(strstr(buf, "gallery  |     3 |        4 |         4"));
  free(buf);
  slr_dataset_free(&ds);
}

static void test_duke(void **state) {
  char root[1024];
  snprintf(root, sizeof root, "%s/duke", tmp);
  touch(root, "bounding_box_train", "0001_c2_f0046182.jpg");
  touch(root, "bounding_box_train", "0001_c8_f0046200.jpg");
  touch(root, "bounding_box_train", "0005_c2_f0046182.jpg");
  touch(root, "query", "0005_c1_f0000001.jpg");
  touch(root, "bounding_box_test", "0005_c7_f0000001.jpg");
  touch(root, "bounding_box_test", "0009_c7_f0000001.jpg");
  touch(root, "bounding_box_test", "0011_c3_f0000001.jpg");
  slr_domain_cfg c;
  cfg_for(&c, "dukemtmc", root);
  slr_dataset ds;
  assert_int_equal(slr_dataset_read(&ds, &c), 0);
  assert_string_equal(ds.name, "DukeMTMC-reID");
  expect_counts(&ds.split[SLR_TRAIN], 3, 2, 2);
  expect_counts(&ds.split[SLR_QUERY], 1, 1, 1);
  expect_counts(&ds.split[SLR_GALLERY], 3, 3, 2);
  int64_t i = find(&ds.split[SLR_TRAIN], "0001_c8_f0046200.jpg");
  assert_int_equal(ds.split[SLR_TRAIN].camids[i], 7);
  assert_int_equal(ds.split[SLR_TRAIN].pids[i], 0);
  slr_dataset_free(&ds);
  /* a camera Duke does not have */
  touch(root, "query", "0005_c9_f0000001.jpg");
  expect_error(slr_dataset_read(&ds, &c), "0005_c9_f0000001.jpg", "camera 9");
}

static void write_list(const char *path, const char *text) { slr_test_write(path, text); }

static void test_msmt(void **state) {
  char root[1024], p[1200];
  for (int v2 = 0; v2 < 2; v2++) {
    snprintf(root, sizeof root, "%s/msmt%d/MSMT17_V%d", tmp, v2, v2 + 1);
    snprintf(p, sizeof p, "%s/%s", root, v2 ? "mask_train_v2" : "train");
    slr_mkdir_p(p);
    snprintf(p, sizeof p, "%s/%s", root, v2 ? "mask_test_v2" : "test");
    slr_mkdir_p(p);
    snprintf(p, sizeof p, "%s/list_train.txt", root);
    write_list(p, "0000/0000_000_01_0303morning_0015_0.jpg 0\n"
                  "0000/0000_001_05_0303morning_0016_0.jpg 0\n"
                  "0001/0001_000_15_0303noon_0001_1.jpg 1\n");
    snprintf(p, sizeof p, "%s/list_val.txt", root);
    write_list(p, "0000/0000_002_07_0303morning_0020_0.jpg 0\n"
                  "0002/0002_000_02_0303noon_0001_1.jpg 2\n");
    snprintf(p, sizeof p, "%s/list_query.txt", root);
    write_list(p, "0000/0000_000_03_0113morning_0001_0.jpg 0\n");
    snprintf(p, sizeof p, "%s/list_gallery.txt", root);
    write_list(p, "0000/0000_001_04_0113morning_0002_0.jpg 0\n"
                  "0001/0001_001_04_0113morning_0003_0.jpg 1\n");
    snprintf(p, sizeof p, "%s/msmt%d", tmp, v2);
    slr_domain_cfg c;
    cfg_for(&c, "msmt17", p);
    slr_dataset ds;
    assert_int_equal(slr_dataset_read(&ds, &c), 0);
    expect_counts(&ds.split[SLR_TRAIN], 5, 3, 5);
    expect_counts(&ds.split[SLR_QUERY], 1, 1, 1);
    expect_counts(&ds.split[SLR_GALLERY], 2, 2, 1);
    int64_t i = find(&ds.split[SLR_TRAIN], "0001/0001_000_15_0303noon_0001_1.jpg");
    assert_true(i >= 0);
    assert_int_equal(ds.split[SLR_TRAIN].camids[i], 14);
    assert_int_equal(ds.split[SLR_TRAIN].pids[i], 1);
    assert_non_null(strstr(ds.split[SLR_TRAIN].paths[i], v2 ? "/mask_train_v2/" : "/train/"));
    assert_non_null(strstr(ds.split[SLR_GALLERY].paths[0], v2 ? "/mask_test_v2/" : "/test/"));
    slr_dataset_free(&ds);
    c.use_val = 0;
    assert_int_equal(slr_dataset_read(&ds, &c), 0);
    expect_counts(&ds.split[SLR_TRAIN], 3, 2, 3);
    slr_dataset_free(&ds);
  }
  /* a bad line names the file and line */
  snprintf(p, sizeof p, "%s/msmt0/MSMT17_V1/list_query.txt", tmp);
  write_list(p, "0000/0000_000_03_0113morning_0001_0.jpg 0\n0000/badname.jpg 0\n");
  slr_domain_cfg c;
  snprintf(p, sizeof p, "%s/msmt0", tmp);
  cfg_for(&c, "msmt17", p);
  slr_dataset ds;
  expect_error(slr_dataset_read(&ds, &c), "list_query.txt:2", "badname.jpg");
  snprintf(p, sizeof p, "%s/msmt0/MSMT17_V1/list_query.txt", tmp);
  write_list(p, "0000/0000_000_03_0113morning_0001_0.jpg\n");
  snprintf(p, sizeof p, "%s/msmt0", tmp);
  expect_error(slr_dataset_read(&ds, &c), "list_query.txt:1", "pid/file.jpg label");
}

static void test_personx(void **state) {
  char root[1024];
  snprintf(root, sizeof root, "%s/personx", tmp);
  touch(root, "bounding_box_train", "0001_c3s1_000001.jpg");
  touch(root, "bounding_box_train", "0001_c12s1_000002.jpg");
  touch(root, "bounding_box_train", "0002_c8s1_000002.jpg");
  touch(root, "query", "0003_c4s1_000001.jpg");
  touch(root, "bounding_box_test", "0003_c10s1_000001.jpg");
  touch(root, "bounding_box_test", "0003_c11s1_000003.jpg");
  slr_domain_cfg c;
  cfg_for(&c, "personx", root);
  slr_dataset ds;
  assert_int_equal(slr_dataset_read(&ds, &c), 0);
  expect_counts(&ds.split[SLR_TRAIN], 3, 2, 3);
  expect_counts(&ds.split[SLR_GALLERY], 2, 1, 2);
  const slr_split *t = &ds.split[SLR_TRAIN];
  assert_int_equal(t->camids[find(t, "0001_c3s1_000001.jpg")], 0);
  assert_int_equal(t->camids[find(t, "0002_c8s1_000002.jpg")], 2);
  assert_int_equal(t->camids[find(t, "0001_c12s1_000002.jpg")], 5);
  const slr_split *g = &ds.split[SLR_GALLERY];
  assert_int_equal(g->camids[find(g, "0003_c10s1_000001.jpg")], 3);
  assert_int_equal(g->camids[find(g, "0003_c11s1_000003.jpg")], 4);
  slr_dataset_free(&ds);
  touch(root, "query", "0003_c5s1_000001.jpg");
  expect_error(slr_dataset_read(&ds, &c), "0003_c5s1_000001.jpg", "PersonX");
}

static void test_list(void **state) {
  char p[1024], q[1024];
  snprintf(p, sizeof p, "%s/lists/train.txt", tmp);
  slr_mkdir_p(strcat(strcpy(q, tmp), "/lists"));
  write_list(p, "# comment\nimgs/a.jpg 10 0\nimgs/b.jpg 10 1\n/abs/c.png 4 2\nimgs/j.jpg -1 0\n");
  snprintf(q, sizeof q, "%s/lists/query.txt", tmp);
  write_list(q, "q/a.jpg 3 0\n");
  slr_domain_cfg c;
  cfg_for(&c, "list", "");
  slr_strlcpy(c.train_list, p, sizeof c.train_list);
  slr_strlcpy(c.query_list, q, sizeof c.query_list);
  slr_dataset ds;
  assert_int_equal(slr_dataset_read(&ds, &c), 0);
  expect_counts(&ds.split[SLR_TRAIN], 3, 2, 3);
  expect_counts(&ds.split[SLR_QUERY], 1, 1, 1);
  expect_counts(&ds.split[SLR_GALLERY], 0, 0, 0);
  const slr_split *t = &ds.split[SLR_TRAIN];
  assert_string_equal(t->paths[2], "/abs/c.png");
  assert_int_equal(t->pids[2], 0); /* 4 -> 0, 10 -> 1 */
  assert_int_equal(t->pids[0], 1);
  char want[1100];
  snprintf(want, sizeof want, "%s/lists/imgs/a.jpg", tmp);
  assert_string_equal(t->paths[0], want);
  slr_dataset_free(&ds);
  write_list(q, "q/a.jpg three 0\n");
  expect_error(slr_dataset_read(&ds, &c), "query.txt:1", "path pid camid");
  /* a pid above 2^31 is refused, never wrapped onto another identity
   * (4294967297 would become 1) */
  write_list(q, "q/a.jpg 1 0\nq/b.jpg 4294967297 1\n");
  expect_error(slr_dataset_read(&ds, &c), "query.txt:2", "pid 4294967297 is larger than");
  write_list(q, "q/a.jpg 1 99999999999999999999999 \n");
  expect_error(slr_dataset_read(&ds, &c), "query.txt:1", "camid");
}

static void test_bad_layout(void **state) {
  char root[1024];
  snprintf(root, sizeof root, "%s/notmarket", tmp);
  touch(root, "images", "0002_c1s1_000451_03.jpg");
  touch(root, "query", "0002_c1s1_000451_03.jpg");
  slr_domain_cfg c;
  cfg_for(&c, "market1501", root);
  slr_dataset ds;
  expect_error(slr_dataset_read(&ds, &c), "expected the Market-1501 layout",
               "found: images/, query/");
  assert_non_null(strstr(slr_error_message(), "bounding_box_train/"));
  cfg_for(&c, "msmt17", root);
  expect_error(slr_dataset_read(&ds, &c), "expected the MSMT17 layout", "found: images/");
  snprintf(root, sizeof root, "%s/missing", tmp);
  cfg_for(&c, "dukemtmc", root);
  expect_error(slr_dataset_read(&ds, &c), "missing", "does not exist");
}

static void test_bad_name(void **state) {
  char root[1024];
  snprintf(root, sizeof root, "%s/badname", tmp);
  touch(root, "bounding_box_train", "0002_c1s1_000451_03.jpg");
  touch(root, "bounding_box_train", "person2_cam1.jpg");
  touch(root, "query", "0002_c1s1_000451_03.jpg");
  touch(root, "bounding_box_test", "0002_c1s1_000451_03.jpg");
  slr_domain_cfg c;
  cfg_for(&c, "market1501", root);
  slr_dataset ds;
  expect_error(slr_dataset_read(&ds, &c), "bounding_box_train/person2_cam1.jpg",
               "does not follow the Market-1501 naming scheme");
}

static int setup(void **state) { return slr_test_dir_open(&tmp); }
static int teardown(void **state) { return slr_test_dir_close(&tmp); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_market),   cmocka_unit_test(test_duke),
      cmocka_unit_test(test_msmt),     cmocka_unit_test(test_personx),
      cmocka_unit_test(test_list),     cmocka_unit_test(test_bad_layout),
      cmocka_unit_test(test_bad_name),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
