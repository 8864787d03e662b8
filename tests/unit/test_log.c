/* The run log and the whole-run ETA: every log line appended to the log
 * file with an ISO-8601 timestamp (appending across opens, one timestamp per
 * line of a multi-line text), an error for a file that cannot be opened,
 * progress lines with the time of day and the run's ETA once the run's work
 * is reported. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "slr_test.h"

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = calloc((size_t)n + 1, 1);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return buf;
}

/* every line of text matches "TIMESTAMP rest", and the rests are `want` in order */
static void check_lines(const char *text, const char *const *want, int nwant) {
  regex_t re;
  assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{4} ",
                           REG_EXTENDED),
                   0);
  char *copy = strdup(text);
  int i = 0;
  for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save), i++) {
    if (regexec(&re, line, 0, NULL, 0) != 0) fail_msg("no timestamp: \"%s\"", line);
    assert_true(i < nwant);
    assert_string_equal(strchr(line, ' ') + 1, want[i]);
  }
  assert_int_equal(i, nwant);
  free(copy);
  regfree(&re);
}

static void test_log_file(void **state) {
  (void)state;
  char path[] = "/tmp/slr_test_log_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  slr_log_setup(SLR_LOG_INFO, 0);
  assert_int_equal(slr_log_file_open(path), 0);
  slr_info("hello %d", 3);
  slr_warn("careful");
  slr_debug("not at info level");
  slr_log_file_printf("two\nlines");
  slr_log_file_close();
  slr_info("not in the file");
  /* a second open appends */
  assert_int_equal(slr_log_file_open(path), 0);
  slr_info("again");
  slr_log_file_close();
  char *text = slurp(path);
  const char *want[] = {"hello 3", "warning: careful", "two", "lines", "again"};
  check_lines(text, want, 5);
  free(text);
  unlink(path);
}

static void test_log_file_error(void **state) {
  (void)state;
  assert_int_not_equal(slr_log_file_open("/nonexistent-dir/log.txt"), 0);
  assert_non_null(strstr(slr_error_text(), "/nonexistent-dir/log.txt"));
}

static void spin(double s) {
  double t = slr_now();
  while (slr_now() - t < s) {
  }
}

static void test_run_eta(void **state) {
  (void)state;
  double eta, frac;
  slr_run_progress_clear();
  assert_int_equal(slr_run_eta(&eta, &frac), 0);
  /* a resumed run: 40 of 100 done before; then 10 more in ~0.1 s: 50 left, ~0.5 s */
  slr_run_progress_set(100, 40);
  assert_int_equal(slr_run_eta(&eta, &frac), 1);
  assert_true(eta < 0); /* no rate yet */
  spin(0.1);
  slr_run_progress_set(100, 50);
  assert_int_equal(slr_run_eta(&eta, &frac), 1);
  assert_true(frac > 0.499 && frac < 0.501);
  if (!(eta > 0.35 && eta < 2.0)) fail_msg("run ETA %g s, expected about 0.5 s", eta);

  /* progress lines: the time of day first, the run's ETA at the end */
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  slr_progress p;
  slr_progress_begin(&p, "adapt epoch 2", 10, "it", 1e-9);
  p.out = m;
  p.tty = 0;
  p.active = 1;
  for (int i = 1; i <= 10; i++) slr_progress_update(&p, i);
  slr_progress_end(&p);
  fclose(m);
  regex_t re;
  assert_int_equal(regcomp(&re, "^[0-9]{2}:[0-9]{2}:[0-9]{2} adapt epoch 2: .*; run 50%, ETA [0-9]+s$",
                           REG_EXTENDED | REG_NEWLINE),
                   0);
  if (regexec(&re, buf, 0, NULL, 0) != 0) fail_msg("progress lines: %s", buf);
  regfree(&re);
  free(buf);
  slr_run_progress_clear();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_log_file),
      cmocka_unit_test(test_log_file_error),
      cmocka_unit_test(test_run_eta),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
