// ranks: 1 2
/* Checkpoint naming, the newest complete checkpoint (a .tmp or a damaged
 * file is not picked), pruning, JSON lines, and agreed stop requests. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slr/io.h"
#include "slr_test.h"

static char *dir;
static int rank;

static void write_ckpt(int64_t pos) {
  char path[1024];
  slr_ckpt_path(dir, pos, path, sizeof path);
  slr_h5 f;
  assert_int_equal(slr_h5_create(&f, MPI_COMM_WORLD, path, "checkpoint", 1), 0);
  assert_int_equal(slr_h5_attr_set_i64(&f, "/", "position", pos), 0);
  assert_int_equal(slr_h5_commit(&f), 0);
}

static void test_newest_and_prune(void **state) {
  char ck[1024], path[1024];
  snprintf(ck, sizeof ck, "%s/checkpoints", dir);
  if (rank == 0) slr_mkdir_p(ck);
  MPI_Barrier(MPI_COMM_WORLD);
  int64_t pos;
  assert_int_equal(slr_ckpt_newest(MPI_COMM_WORLD, dir, 1, path, sizeof path, &pos), 0);
  assert_int_equal(pos, -1);
  assert_string_equal(path, "");
  write_ckpt(5);
  write_ckpt(40);
  write_ckpt(120);
  /* a killed writer's .tmp of a newer position and a damaged newest file */
  char tmp[1100];
  slr_ckpt_path(dir, 200, tmp, sizeof tmp);
  strcat(tmp, ".tmp");
  char bad[1024];
  slr_ckpt_path(dir, 160, bad, sizeof bad);
  if (rank == 0) {
    slr_test_write(tmp, "partial");
    slr_test_write(bad, "not hdf5");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  assert_int_equal(slr_ckpt_newest(MPI_COMM_WORLD, dir, 1, path, sizeof path, &pos), 0);
  assert_int_equal(pos, 120);
  assert_non_null(strstr(path, "checkpoints/ckpt-000000000120.h5"));
  if (rank == 0) unlink(bad);
  MPI_Barrier(MPI_COMM_WORLD);
  assert_int_equal(slr_ckpt_prune(MPI_COMM_WORLD, dir, 2), 0);
  char p5[1024], p40[1024];
  slr_ckpt_path(dir, 5, p5, sizeof p5);
  slr_ckpt_path(dir, 40, p40, sizeof p40);
  assert_all(access(p5, F_OK) != 0 && access(p40, F_OK) == 0 && access(path, F_OK) == 0);
}

static void test_jsonl(void **state) {
  char path[1024];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  if (rank == 0) {
    assert_int_equal(slr_file_size(path), 0);
    assert_int_equal(slr_jsonl_append(path, "{\"epoch\": 1}"), 0);
    int64_t mark = slr_file_size(path);
    assert_int_equal(mark, 13);
    assert_int_equal(slr_jsonl_append(path, "{\"epoch\": 2}"), 0);
    assert_int_equal(slr_file_truncate(path, mark), 0);
    char *out = NULL;
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "cat '%s'", path);
    slr_test_sh(cmd, &out);
    assert_string_equal(out, "{\"epoch\": 1}\n");
    free(out);
  }
}

static void test_stop_agreed(void **state) {
  slr_stop_install();
  slr_stop_reset();
  assert_int_equal(slr_stop_agree(MPI_COMM_WORLD), 0);
  int size;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (rank == size - 1) raise(SIGUSR1); /* one rank only is signalled */
  assert_int_equal(slr_stop_agree(MPI_COMM_WORLD), SIGUSR1);
  assert_int_equal(slr_stop_signal(), rank == size - 1 ? SIGUSR1 : 0);
  slr_stop_reset();
}

static int setup(void **state) {
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return slr_test_dir_open(&dir);
}

static int teardown(void **state) { return slr_test_dir_close(&dir); }

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_newest_and_prune, setup, teardown),
    cmocka_unit_test_setup_teardown(test_jsonl, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stop_agreed, setup, teardown),
};
SLR_TEST_MAIN_MPI(tests)
