/* core: Philox known answers, random-stream properties, errors, finite checks,
 * duration formatting and progress output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr_test.h"

/* Known-answer vectors of Philox4x32-10 (Random123's kat_vectors). */
static void test_philox_kat(void **state) {
  struct {
    uint32_t ctr[4], key[2], out[4];
  } kat[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (int i = 0; i < 3; i++) {
    uint32_t out[4];
    slr_philox4x32(kat[i].ctr, kat[i].key, out);
    for (int j = 0; j < 4; j++) assert_int_equal(out[j], kat[i].out[j]);
  }
}

static void test_rng_streams(void **state) {
  slr_rng a, b;
  /* the n-th draw depends only on (seed, stream, n) */
  slr_rng_init(&a, 7, 3, 0);
  uint32_t first[12];
  for (int i = 0; i < 12; i++) first[i] = slr_rng_u32(&a);
  slr_rng_init(&b, 7, 3, 2); /* block 2 = draws 8.. */
  for (int i = 8; i < 12; i++) assert_int_equal(slr_rng_u32(&b), first[i]);
  /* another stream or seed differs */
  slr_rng_init(&b, 7, 4, 0);
  int same = 0;
  for (int i = 0; i < 12; i++) same += slr_rng_u32(&b) == first[i];
  assert_true(same < 2);
  slr_rng_init(&b, 8, 3, 0);
  same = 0;
  for (int i = 0; i < 12; i++) same += slr_rng_u32(&b) == first[i];
  assert_true(same < 2);
  assert_true(slr_rng_stream_id(1, 2, 3, 4) != slr_rng_stream_id(1, 2, 4, 3));
  assert_true(slr_rng_stream_id(1, 2, 3, 4) == slr_rng_stream_id(1, 2, 3, 4));
}

static void test_rng_distributions(void **state) {
  slr_rng r;
  slr_rng_init(&r, 1, 0, 0);
  double sum = 0, sum2 = 0;
  int counts[5] = {0};
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    float u = slr_rng_uniform(&r);
    assert_true(u >= 0.0f && u < 1.0f);
    uint64_t k = slr_rng_below(&r, 5);
    assert_true(k < 5);
    counts[k]++;
    float z = slr_rng_normal(&r);
    sum += z;
    sum2 += (double)z * z;
  }
  for (int k = 0; k < 5; k++) assert_true(fabs(counts[k] - n / 5.0) < 5 * sqrt(n / 5.0));
  assert_true(fabs(sum / n) < 0.02);
  assert_true(fabs(sum2 / n - 1.0) < 0.02);
}

static int fails_at_line(void) { return SLR_FAIL(SLR_ERR_INPUT, "bad value %d", 42); }

static void test_errors(void **state) {
  int line = __LINE__ - 3;
  assert_int_equal(fails_at_line(), SLR_ERR_INPUT);
  char expect[128];
  snprintf(expect, sizeof expect, "test_core.c:%d", line);
  /* the location is kept for debugging, never in the message users see */
  assert_non_null(strstr(slr_error_location(), expect));
  assert_null(strstr(slr_error_message(), "test_core.c"));
  assert_string_equal(slr_error_message(), "[rank 0] bad value 42");
  assert_string_equal(slr_error_text(), "bad value 42");
  assert_non_null(strstr(slr_error_message(), "[rank 0]"));
  assert_int_equal(slr_exit_code(SLR_ERR_USAGE), 2);
  assert_int_equal(slr_exit_code(SLR_ERR_INPUT), 1);
  assert_int_equal(slr_exit_code(SLR_OK), 0);
}

static void test_duration(void **state) {
  char b[32];
  slr_format_duration(5.2, b, sizeof b);
  assert_string_equal(b, "5s");
  slr_format_duration(125, b, sizeof b);
  assert_string_equal(b, "2m05s");
  slr_format_duration(3723, b, sizeof b);
  assert_string_equal(b, "1h02m03s");
  slr_format_duration(-1, b, sizeof b);
  assert_string_equal(b, "?");
}

/* Not a terminal: plain lines, one per interval and one at the end. */
static void test_progress_plain(void **state) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  slr_progress p;
  slr_progress_begin(&p, "extract", 100, "img", 1e-9);
  p.out = m;
  p.tty = 0;
  for (int i = 1; i <= 100; i++) slr_progress_update(&p, i);
  slr_progress_end(&p);
  fclose(m);
  assert_non_null(strstr(buf, "extract:"));
  assert_non_null(strstr(buf, "100/100 img"));
  assert_non_null(strstr(buf, "ETA"));
  assert_non_null(strstr(buf, "took"));
  assert_null(strchr(buf, '\r'));
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_philox_kat),  cmocka_unit_test(test_rng_streams),
      cmocka_unit_test(test_rng_distributions), 
      cmocka_unit_test(test_errors),      cmocka_unit_test(test_duration),
      cmocka_unit_test(test_progress_plain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
