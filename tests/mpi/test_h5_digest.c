// ranks: 1 2
/* io/h5 digests: every dataset carries slr_digest; a file read back by any
 * rank count verifies; random bytes written inside a dataset's data (the
 * HDF5 structure still opens) are reported naming the file and the dataset;
 * slr_ckpt_newest skips such a corrupt checkpoint for the older one. Also
 * the finite-value checks of core. */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slr/dist.h"
#include "slr/io.h"
#include "slr_test.h"

static char *dir;
static int rank, size;

/* a checkpoint-like file: params (N x D float32), a step count, names */
static int write_ckpt(const char *path, int64_t n, int64_t d, float bias) {
  int64_t row0, cnt;
  slr_shard_rows(n, rank, size, &row0, &cnt);
  float *x = malloc((size_t)(cnt * d + 1) * sizeof(float));
  char **names = malloc((size_t)(cnt + 1) * sizeof(char *));
  char *text = malloc((size_t)(cnt + 1) * 16);
  for (int64_t i = 0; i < cnt * d; i++) x[i] = bias + 0.001f * (float)(row0 * d + i);
  for (int64_t i = 0; i < cnt; i++) {
    names[i] = text + i * 16;
    snprintf(names[i], 16, "n%lld", (long long)(row0 + i));
  }
  slr_h5 f;
  int64_t dims[2] = {n, d};
  int rc = slr_h5_create(&f, MPI_COMM_WORLD, path, "checkpoint", 1);
  if (!rc) rc = slr_h5_write_rows(&f, "/model/params", SLR_F32, 2, dims, row0, cnt, x);
  if (!rc) rc = slr_h5_write_scalar_i64(&f, "/position/step", 42);
  if (!rc) rc = slr_h5_write_strings(&f, "/names", n, row0, cnt, (const char *const *)names);
  /* an empty matrix: rows of no bytes, and one with no rows */
  int64_t empty[2] = {n, 0}, none[2] = {0, d};
  if (!rc) rc = slr_h5_write_rows(&f, "/empty/cols", SLR_F32, 2, empty, row0, cnt, x);
  if (!rc) rc = slr_h5_write_rows(&f, "/empty/rows", SLR_F32, 2, none, 0, 0, x);
  if (!rc) rc = slr_h5_commit(&f);
  free(x);
  free(names);
  free(text);
  return rc;
}

/* overwrite `len` bytes at `skip` bytes into the data of dataset `name` */
static void corrupt(const char *path, const char *name, int64_t skip, int len) {
  if (rank == 0) {
    hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(fid, name, H5P_DEFAULT);
    haddr_t off = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(fid);
    assert_true(off != HADDR_UNDEF);
    int fd = open(path, O_WRONLY);
    unsigned char junk[64];
    srand(7);
    for (int i = 0; i < len; i++) junk[i] = (unsigned char)(rand() & 0xff);
    assert_int_equal(pwrite(fd, junk, (size_t)len, (off_t)(off + (haddr_t)skip)), len);
    close(fd);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_digest_round_trip(void **state) {
  char path[1024];
  snprintf(path, sizeof path, "%s/a.h5", dir);
  assert_all(write_ckpt(path, 37, 5, 1.0f) == 0);
  slr_h5 f;
  assert_all(slr_h5_open(&f, MPI_COMM_WORLD, path, "checkpoint", 1, SLR_H5_VERIFY) == 0);
  char dg[128] = "";
  assert_all(slr_h5_attr_get_str(&f, "/model/params", "slr_digest", dg, sizeof dg) == 0);
  assert_all(strncmp(dg, "rowsum-fnv1a64:", 15) == 0);
  assert_all(slr_h5_attr_exists(&f, "/position/step", "slr_digest") == 1);
  assert_all(slr_h5_attr_exists(&f, "/names", "slr_digest") == 1);
  slr_h5_close(&f);
  /* the same file verified by one rank alone */
  if (rank == 0) {
    slr_h5 g;
    assert_int_equal(slr_h5_open(&g, MPI_COMM_SELF, path, "checkpoint", 1, SLR_H5_VERIFY), 0);
    slr_h5_close(&g);
  }
}

static void test_corrupt_data_named(void **state) {
  char path[1024];
  snprintf(path, sizeof path, "%s/b.h5", dir);
  assert_all(write_ckpt(path, 64, 8, 2.0f) == 0);
  corrupt(path, "/model/params", 1000, 16);
  slr_h5 f;
  /* without verification it still opens: the corruption is in the data */
  assert_all(slr_h5_open(&f, MPI_COMM_WORLD, path, "checkpoint", 1, 0) == 0);
  slr_h5_close(&f);
  int rc = slr_h5_open(&f, MPI_COMM_WORLD, path, "checkpoint", 1, SLR_H5_VERIFY);
  assert_all(rc == SLR_ERR_INPUT);
  assert_all(strstr(slr_error_text(), path) != NULL);
  assert_all(strstr(slr_error_text(), "/model/params") != NULL);
  assert_all(strstr(slr_error_text(), "corrupt") != NULL);
}

static void test_newest_skips_corrupt(void **state) {
  char run[1024], p10[1200], p20[1200], got[1200];
  snprintf(run, sizeof run, "%s/run", dir);
  if (rank == 0) {
    char ck[1100];
    snprintf(ck, sizeof ck, "%s/checkpoints", run);
    slr_mkdir_p(ck);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  slr_ckpt_path(run, 10, p10, sizeof p10);
  slr_ckpt_path(run, 20, p20, sizeof p20);
  assert_all(write_ckpt(p10, 50, 4, 3.0f) == 0);
  assert_all(write_ckpt(p20, 50, 4, 4.0f) == 0);
  int64_t pos = -1;
  assert_all(slr_ckpt_newest(MPI_COMM_WORLD, run, 1, got, sizeof got, &pos) == 0);
  assert_all(pos == 20);
  corrupt(p20, "/model/params", 4, 8);
  assert_all(slr_ckpt_newest(MPI_COMM_WORLD, run, 1, got, sizeof got, &pos) == 0);
  assert_all(pos == 10 && strcmp(got, p10) == 0);
}

static void test_finite_checks(void **state) {
  float x[12];
  for (int i = 0; i < 12; i++) x[i] = (float)i;
  assert_int_equal(slr_first_nonfinite_f32(x, 12), -1);
  double y[3] = {0, INFINITY, 1};
  assert_int_equal(slr_first_nonfinite_f64(y, 3), 1);
  /* rank 1 (or the only rank) holds a NaN at its row 1, column 2 */
  if (rank == size - 1) x[4 * 1 + 2] = NAN;
  int rc = slr_check_finite_f32(MPI_COMM_WORLD, x, 12, 3 * rank, 4, "F.h5: dataset /features");
  assert_all(rc == SLR_ERR_INPUT);
  char want[64];
  snprintf(want, sizeof want, "row %d, column 2", 3 * (size - 1) + 1);
  assert_all(strstr(slr_error_text(), want) != NULL);
  assert_all(strstr(slr_error_text(), "F.h5: dataset /features") != NULL);
}

static int setup(void **state) {
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return slr_test_dir_open(&dir);
}

static int teardown(void **state) { return slr_test_dir_close(&dir); }

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_digest_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_corrupt_data_named, setup, teardown),
    cmocka_unit_test_setup_teardown(test_newest_skips_corrupt, setup, teardown),
    cmocka_unit_test_setup_teardown(test_finite_checks, setup, teardown),
};
SLR_TEST_MAIN_MPI(tests)
