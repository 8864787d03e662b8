// ranks: 1 2 3
/* io/h5: row-sharded arrays (a rank with zero rows included), strings,
 * attributes and format tags; a file written by 2 ranks read back by 1 and
 * by all ranks; .tmp invisible until commit; h5dump sees the tags. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slr/dist.h"
#include "slr/io.h"
#include "slr_test.h"

static char *dir;
static int rank, size;

static float value(int64_t i, int64_t j) { return (float)(i * 100 + j) + 0.25f; }

/* write N x D float32 + N int64 + N strings with the ranks of comm */
static int write_file(MPI_Comm comm, const char *path, int64_t n, int64_t d) {
  int r, s;
  MPI_Comm_rank(comm, &r);
  MPI_Comm_size(comm, &s);
  int64_t row0, cnt;
  slr_shard_rows(n, r, s, &row0, &cnt);
  float *x = malloc((size_t)(cnt * d + 1) * sizeof(float));
  int64_t *ids = malloc((size_t)(cnt + 1) * sizeof(int64_t));
  char **names = malloc((size_t)(cnt + 1) * sizeof(char *));
  char *text = malloc((size_t)(cnt + 1) * 32);
  for (int64_t i = 0; i < cnt; i++) {
    for (int64_t j = 0; j < d; j++) x[i * d + j] = value(row0 + i, j);
    ids[i] = -(row0 + i);
    names[i] = text + i * 32;
    snprintf(names[i], 32, "img_%lld%s.jpg", (long long)(row0 + i), (row0 + i) % 3 ? "" : "_long");
  }
  slr_h5 f;
  int rc = slr_h5_create(&f, comm, path, "test", 1);
  int64_t dims[2] = {n, d};
  if (!rc) rc = slr_h5_write_rows(&f, "/features", SLR_F32, 2, dims, row0, cnt, x);
  if (!rc) rc = slr_h5_write_rows(&f, "/meta/ids", SLR_I64, 1, dims, row0, cnt, ids);
  if (!rc)
    rc = slr_h5_write_strings(&f, "/meta/paths", n, row0, cnt, (const char *const *)names);
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/features", "count", n);
  if (!rc) rc = slr_h5_attr_set_f64(&f, "/", "eps", 0.6);
  if (!rc) rc = slr_h5_attr_set_str(&f, "/", "note", "hello");
  if (!rc) rc = slr_h5_commit(&f);
  if (rc) fprintf(stderr, "write_file: %s\n", slr_error_message());
  free(x);
  free(ids);
  free(names);
  free(text);
  return rc;
}

static void check_file(MPI_Comm comm, const char *path, int64_t n, int64_t d) {
  int r, s;
  MPI_Comm_rank(comm, &r);
  MPI_Comm_size(comm, &s);
  slr_h5 f;
  assert_int_equal(slr_h5_open(&f, comm, path, "test", 1, 0), 0);
  int nd, type;
  int64_t dims[SLR_H5_MAXDIMS];
  assert_int_equal(slr_h5_shape(&f, "/features", &nd, dims, &type), 0);
  assert_int_equal(nd, 2);
  assert_int_equal(dims[0], n);
  assert_int_equal(dims[1], d);
  assert_int_equal(type, SLR_F32);
  int64_t row0, cnt;
  slr_shard_rows(n, r, s, &row0, &cnt);
  float *x = malloc((size_t)(cnt * d + 1) * sizeof(float));
  double *xd = malloc((size_t)(cnt * d + 1) * sizeof(double));
  int64_t *ids = malloc((size_t)(cnt + 1) * sizeof(int64_t));
  assert_int_equal(slr_h5_read_rows(&f, "/features", SLR_F32, row0, cnt, x), 0);
  assert_int_equal(slr_h5_read_rows(&f, "/features", SLR_F64, row0, cnt, xd), 0);
  assert_int_equal(slr_h5_read_rows(&f, "/meta/ids", SLR_I64, row0, cnt, ids), 0);
  int ok = 1;
  for (int64_t i = 0; i < cnt; i++) {
    ok &= ids[i] == -(row0 + i);
    for (int64_t j = 0; j < d; j++)
      ok &= x[i * d + j] == value(row0 + i, j) && xd[i * d + j] == (double)value(row0 + i, j);
  }
  char **names = NULL;
  assert_int_equal(slr_h5_read_strings(&f, "/meta/paths", row0, cnt, &names), 0);
  for (int64_t i = 0; i < cnt; i++) {
    char expect[32];
    snprintf(expect, 32, "img_%lld%s.jpg", (long long)(row0 + i), (row0 + i) % 3 ? "" : "_long");
    ok &= strcmp(names[i], expect) == 0;
  }
  free(names);
  int64_t c;
  double eps;
  char note[16];
  assert_int_equal(slr_h5_attr_get_i64(&f, "/features", "count", &c), 0);
  assert_int_equal(c, n);
  assert_int_equal(slr_h5_attr_get_f64(&f, "/", "eps", &eps), 0);
  assert_true(eps == 0.6);
  assert_int_equal(slr_h5_attr_get_str(&f, "/", "note", note, sizeof note), 0);
  assert_string_equal(note, "hello");
  /* read everything on every rank */
  void *all = NULL;
  int64_t count = 0;
  assert_int_equal(slr_h5_read_all(&f, "/meta/ids", SLR_I64, &all, &count), 0);
  assert_int_equal(count, n);
  for (int64_t i = 0; i < n; i++) ok &= ((int64_t *)all)[i] == -i;
  free(all);
  assert_int_equal(slr_h5_close(&f), 0);
  free(x);
  free(xd);
  free(ids);
  assert_true(ok);
}

static void test_round_trip_all_ranks(void **state) {
  char path[1024];
  snprintf(path, sizeof path, "%s/all.h5", dir);
  /* N = 2 rows: with 3 ranks, rank 2 owns zero rows */
  int64_t ns[] = {2, 17, 0};
  for (int k = 0; k < 3; k++) {
    assert_all(write_file(MPI_COMM_WORLD, path, ns[k], 5) == 0);
    check_file(MPI_COMM_WORLD, path, ns[k], 5);
    check_file(MPI_COMM_SELF, path, ns[k], 5);
  }
}

/* written by 2 ranks, read by 1 rank and by all ranks (3 when run on 3) */
static void test_written_by_two(void **state) {
  if (size < 2) skip();
  char path[1024];
  snprintf(path, sizeof path, "%s/two.h5", dir);
  MPI_Comm two;
  MPI_Comm_split(MPI_COMM_WORLD, rank < 2 ? 0 : MPI_UNDEFINED, rank, &two);
  int rc = 0;
  if (rank < 2) rc = write_file(two, path, 11, 3);
  assert_all(rc == 0);
  if (rank < 2) MPI_Comm_free(&two);
  MPI_Barrier(MPI_COMM_WORLD);
  check_file(MPI_COMM_WORLD, path, 11, 3);
  if (rank == 0) check_file(MPI_COMM_SELF, path, 11, 3);
  /* h5dump -A shows the format attributes */
  if (rank == 0) {
    char cmd[1200], *out = NULL;
    snprintf(cmd, sizeof cmd, "h5dump -A '%s'", path);
    int st = slr_test_sh(cmd, &out);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "slr_format"));
    assert_non_null(strstr(out, "\"test\""));
    assert_non_null(strstr(out, "slr_format_version"));
    free(out);
  }
}

/* the .tmp is the only thing written until commit; abort removes it */
static void test_tmp_until_commit(void **state) {
  char path[1024], tmp[1100];
  snprintf(path, sizeof path, "%s/c.h5", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  slr_h5 f;
  assert_int_equal(slr_h5_create(&f, MPI_COMM_WORLD, path, "test", 1), 0);
  MPI_Barrier(MPI_COMM_WORLD);
  assert_all(access(tmp, F_OK) == 0 && access(path, F_OK) != 0);
  slr_h5_abort(&f);
  MPI_Barrier(MPI_COMM_WORLD);
  assert_all(access(tmp, F_OK) != 0 && access(path, F_OK) != 0);
  /* a reader asked for the final name does not open the .tmp */
  assert_int_equal(slr_h5_create(&f, MPI_COMM_WORLD, path, "test", 1), 0);
  MPI_Barrier(MPI_COMM_WORLD);
  slr_h5 r;
  int rc = slr_h5_open(&r, MPI_COMM_WORLD, path, "test", 1, 0);
  assert_int_equal(rc, SLR_ERR_INPUT);
  assert_non_null(strstr(slr_error_text(), "c.h5"));
  assert_int_equal(slr_h5_commit(&f), 0);
  assert_int_equal(slr_h5_open(&r, MPI_COMM_WORLD, path, "test", 1, 0), 0);
  slr_h5_close(&r);
}

static void test_format_checks(void **state) {
  char path[1024];
  snprintf(path, sizeof path, "%s/fmt.h5", dir);
  slr_h5 f;
  assert_int_equal(slr_h5_create(&f, MPI_COMM_WORLD, path, "features", 2), 0);
  assert_int_equal(slr_h5_commit(&f), 0);
  int rc = slr_h5_open(&f, MPI_COMM_WORLD, path, "checkpoint", 1, 0);
  assert_int_equal(rc, SLR_ERR_INPUT);
  assert_non_null(strstr(slr_error_text(), "has slr_format \"features\", expected \"checkpoint\""));
  rc = slr_h5_open(&f, MPI_COMM_WORLD, path, "features", 1, 0);
  assert_int_equal(rc, SLR_ERR_INPUT);
  assert_non_null(strstr(slr_error_text(), "slr_format_version 2"));
  assert_int_equal(slr_h5_open(&f, MPI_COMM_WORLD, path, "features", 2, 0), 0);
  /* missing dataset named */
  int nd;
  int64_t dims[SLR_H5_MAXDIMS];
  rc = slr_h5_shape(&f, "/query/features", &nd, dims, NULL);
  assert_int_equal(rc, SLR_ERR_INPUT);
  assert_non_null(strstr(slr_error_text(), "dataset /query/features is missing"));
  assert_int_equal(slr_h5_exists(&f, "/query/features"), 0);
  slr_h5_close(&f);
  /* not an HDF5 file */
  char txt[1100];
  snprintf(txt, sizeof txt, "%s/not.h5", dir);
  if (rank == 0) slr_test_write(txt, "hello\n");
  MPI_Barrier(MPI_COMM_WORLD);
  rc = slr_h5_open(&f, MPI_COMM_WORLD, txt, NULL, 1, 0);
  assert_int_equal(rc, SLR_ERR_INPUT);
  assert_non_null(strstr(slr_error_text(), "not.h5 is not a readable HDF5 file"));
  snprintf(txt, sizeof txt, "%s/missing.h5", dir);
  rc = slr_h5_open(&f, MPI_COMM_WORLD, txt, NULL, 1, 0);
  assert_int_equal(rc, SLR_ERR_INPUT);
  assert_non_null(strstr(slr_error_text(), "missing.h5"));
}

/* a file written by h5py: no format tag (accepted only with FOREIGN_OK),
 * variable-length UTF-8 strings, float64 and int16 converted on read */
static void test_foreign_file(void **state) {
  const char *path = SLR_FIXTURE_DIR "/io/foreign.h5";
  slr_h5 f;
  int rc = slr_h5_open(&f, MPI_COMM_WORLD, path, "features", 1, 0);
  assert_int_equal(rc, SLR_ERR_INPUT);
  assert_non_null(strstr(slr_error_text(), "has no slr_format attribute"));
  assert_int_equal(slr_h5_open(&f, MPI_COMM_WORLD, path, "features", 1, SLR_H5_FOREIGN_OK), 0);
  int64_t row0, cnt;
  slr_shard_rows(4, rank, size, &row0, &cnt);
  float x[12];
  int32_t pids[4];
  char **paths = NULL;
  assert_int_equal(slr_h5_read_rows(&f, "/query/features", SLR_F32, row0, cnt, x), 0);
  assert_int_equal(slr_h5_read_rows(&f, "/query/pids", SLR_I32, row0, cnt, pids), 0);
  assert_int_equal(slr_h5_read_strings(&f, "/query/paths", row0, cnt, &paths), 0);
  const int32_t want_pids[4] = {3, -1, 0, 7};
  const char *want_paths[4] = {"q/0001_c1.jpg", "q/\xc3\xa9.jpg", "", "q/a-much-longer-name_0007.jpg"};
  int ok = 1;
  for (int64_t i = 0; i < cnt; i++) {
    for (int j = 0; j < 3; j++) ok &= x[i * 3 + j] == (float)((row0 + i) * 3 + j) / 8.0f;
    ok &= pids[i] == want_pids[row0 + i];
    ok &= strcmp(paths[i], want_paths[row0 + i]) == 0;
  }
  free(paths);
  slr_h5_close(&f);
  assert_all(ok);
}

static int setup(void **state) {
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return slr_test_dir_open(&dir);
}

static int teardown(void **state) { return slr_test_dir_close(&dir); }

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_round_trip_all_ranks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_written_by_two, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tmp_until_commit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_format_checks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_foreign_file, setup, teardown),
};
SLR_TEST_MAIN_MPI(tests)
