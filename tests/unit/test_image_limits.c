/* data/image: decompression bombs. A tiny JPEG and a tiny PNG whose headers
 * declare 65000 x 65000 pixels (made here from real small images by
 * patching the header) are refused from the header, naming the file and the
 * limit, at once and without allocating the 12 GB their pixels would take. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "slr/data.h"
#include "slr_test.h"

static void small(slr_image *im) {
  assert_int_equal(slr_image_alloc(im, 16, 16), 0);
  for (int i = 0; i < 16 * 16 * 3; i++) im->data[i] = (uint8_t)(i * 7);
}

static void put16(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint32_t crc32_png(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

static void expect_bomb_refused(const uint8_t *buf, size_t len, const char *name) {
  slr_image out;
  memset(&out, 0, sizeof out);
  double t0 = slr_now();
  int rc = slr_image_decode(buf, len, name, &out);
  double dt = slr_now() - t0;
  assert_int_equal(rc, SLR_ERR_INPUT);
  assert_non_null(strstr(slr_error_text(), name));
  assert_non_null(strstr(slr_error_text(), "65000 x 65000"));
  assert_non_null(strstr(slr_error_text(), "89478485"));
  assert_null(out.data);
  assert_true(dt < 1.0);
}

static void test_jpeg_bomb(void **state) {
  slr_image im;
  small(&im);
  uint8_t *buf = NULL;
  size_t len = 0;
  assert_int_equal(slr_image_encode_jpeg(&im, 90, &buf, &len), 0);
  slr_image back;
  assert_int_equal(slr_image_decode(buf, len, "ok.jpg", &back), 0);
  slr_image_free(&back);
  size_t sof = 0;
  for (size_t i = 2; i + 9 < len; i++)
    if (buf[i] == 0xff && (buf[i + 1] == 0xc0 || buf[i + 1] == 0xc2)) {
      sof = i;
      break;
    }
  assert_true(sof > 0);
  put16(buf + sof + 5, 65000); /* height */
  put16(buf + sof + 7, 65000); /* width */
  expect_bomb_refused(buf, len, "bomb.jpg");
  free(buf);
  slr_image_free(&im);
}

static void test_png_bomb(void **state) {
  slr_image im;
  small(&im);
  char path[] = "/tmp/slr_bomb_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(slr_image_write_png(path, &im), 0);
  FILE *fp = fopen(path, "rb");
  uint8_t buf[65536];
  size_t len = fread(buf, 1, sizeof buf, fp);
  fclose(fp);
  unlink(path);
  assert_true(len > 33 && memcmp(buf + 12, "IHDR", 4) == 0);
  put32(buf + 16, 65000);
  put32(buf + 20, 65000);
  put32(buf + 29, crc32_png(buf + 12, 17));
  expect_bomb_refused(buf, len, "bomb.png");
  slr_image_free(&im);
}

int main(void) {
  /* a decoder that allocated the declared pixels would fail here, not pass
   * (not under AddressSanitizer, whose shadow memory is larger) */
#ifndef __SANITIZE_ADDRESS__
  struct rlimit rl = {(rlim_t)2 << 30, (rlim_t)2 << 30};
  setrlimit(RLIMIT_AS, &rl);
#endif
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jpeg_bomb),
      cmocka_unit_test(test_png_bomb),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
