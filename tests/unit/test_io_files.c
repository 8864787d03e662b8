/* io: files of a run outside HDF5. Cutting metrics.jsonl back to a
 * checkpoint's offset never extends a file that is already shorter (no NUL
 * padding: every line stays valid JSON); output paths that are empty,
 * devices, FIFOs or folders are refused. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slr/io.h"
#include "slr_test.h"

static char *dir;

static char *slurp(const char *path, long *len) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  char *b = calloc(1, 4096);
  *len = (long)fread(b, 1, 4095, fp);
  fclose(fp);
  return b;
}

static void test_truncate_never_extends(void **state) {
  char p[1024];
  snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
  slr_test_write(p, "{\"a\": 1}\n{\"b\": 2}\n{\"c\": 3}\n");
  assert_int_equal(slr_file_truncate(p, 18), 0);
  long len;
  char *b = slurp(p, &len);
  assert_int_equal(len, 18);
  assert_string_equal(b, "{\"a\": 1}\n{\"b\": 2}\n");
  free(b);
  /* shortened by hand below the offset, with a torn last line */
  slr_test_write(p, "{\"a\": 1}\n{\"b\": 2");
  int64_t actual = -1;
  assert_int_equal(slr_file_truncate_to(p, 27, &actual), 0);
  b = slurp(p, &len);
  assert_int_equal(actual, 9);
  assert_int_equal(len, 9);
  assert_null(memchr(b, '\0', (size_t)len));
  assert_string_equal(b, "{\"a\": 1}\n");
  free(b);
  /* missing with a non-zero offset: an error naming it */
  unlink(p);
  assert_int_equal(slr_file_truncate(p, 10), SLR_ERR_INPUT);
  assert_non_null(strstr(slr_error_text(), "metrics.jsonl"));
  assert_int_equal(slr_file_truncate(p, 0), 0);
}

static void test_output_paths(void **state) {
  char p[1024];
  assert_int_equal(slr_output_path_check("", "--out"), SLR_ERR_USAGE);
  assert_non_null(strstr(slr_error_text(), "empty"));
  assert_int_equal(slr_output_path_check("/dev/null", "--out"), SLR_ERR_USAGE);
  assert_non_null(strstr(slr_error_text(), "character device"));
  snprintf(p, sizeof p, "%s/fifo", dir);
  assert_int_equal(mkfifo(p, 0600), 0);
  assert_int_equal(slr_output_path_check(p, "--out"), SLR_ERR_USAGE);
  assert_non_null(strstr(slr_error_text(), "FIFO"));
  assert_int_equal(slr_output_path_check(p, "run folder"), SLR_ERR_USAGE);
  /* a FIFO at NAME.tmp would be written through as well */
  snprintf(p, sizeof p, "%s/x.h5", dir);
  assert_int_equal(slr_output_path_check(p, "--out"), 0);
  assert_int_equal(slr_output_path_check(dir, "--out"), SLR_ERR_USAGE);
  assert_non_null(strstr(slr_error_text(), "folder"));
  assert_int_equal(slr_output_path_check(dir, "run folder"), 0);
  snprintf(p, sizeof p, "%s/fifo", dir);
  char tmpname[1100];
  snprintf(tmpname, sizeof tmpname, "%s/y.h5.tmp", dir);
  assert_int_equal(mkfifo(tmpname, 0600), 0);
  snprintf(p, sizeof p, "%s/y.h5", dir);
  assert_int_equal(slr_output_path_check(p, "--out"), SLR_ERR_USAGE);
  assert_non_null(strstr(slr_error_text(), "y.h5.tmp"));
}

static int setup(void **state) { return slr_test_dir_open(&dir); }
static int teardown(void **state) { return slr_test_dir_close(&dir); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_truncate_never_extends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_paths, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
