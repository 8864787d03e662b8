/* data images: decoded pixels (JPEG colour, grey, odd-sized, progressive;
 * PNG palette, palette with transparency, grey + alpha, RGBA)
 * and PIL's BILINEAR/BICUBIC resizes (shrinking, enlarging, one axis,
 * mixed) against fixtures made by tools/ref/make_data_fixtures.py with PIL
 * and torchvision (within 1 intensity level; the exact-match share is
 * checked too); the peers' test transform and the train transform with
 * fixed draws; encoders round-trip; corrupt, truncated, empty and missing
 * files name the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/data.h"
#include "slr_test.h"

typedef struct {
  int dtype, d0, d1, d2;
  void *data;
} fixture;

static void load_fixture(const char *name, fixture *f) {
  char path[1024];
  snprintf(path, sizeof path, "%s/data/%s", SLR_FIXTURE_DIR, name);
  FILE *fp = fopen(path, "rb");
  if (!fp) fail_msg("missing fixture %s", path);
  char magic[4];
  int32_t hdr[4];
  assert_int_equal(fread(magic, 1, 4, fp), 4);
  assert_memory_equal(magic, "SLRF", 4);
  assert_int_equal(fread(hdr, 4, 4, fp), 4);
  f->dtype = hdr[0];
  f->d0 = hdr[1];
  f->d1 = hdr[2];
  f->d2 = hdr[3];
  size_t n = (size_t)f->d0 * f->d1 * f->d2 * (f->dtype ? 4 : 1);
  f->data = malloc(n);
  assert_int_equal(fread(f->data, 1, n, fp), n);
  fclose(fp);
}

static char *fixture_path(const char *name) {
  static char path[1024];
  snprintf(path, sizeof path, "%s/data/%s", SLR_FIXTURE_DIR, name);
  return path;
}

/* max |a - b| over the image, and the count of exact matches */
static int compare_u8(const slr_image *im, const fixture *f, int64_t *exact) {
  assert_int_equal(f->dtype, 0);
  assert_int_equal(im->h, f->d0);
  assert_int_equal(im->w, f->d1);
  assert_int_equal(f->d2, 3);
  const uint8_t *ref = f->data;
  int worst = 0;
  *exact = 0;
  for (size_t i = 0; i < (size_t)im->h * im->w * 3; i++) {
    int d = abs((int)im->data[i] - (int)ref[i]);
    if (d > worst) worst = d;
    *exact += d == 0;
  }
  return worst;
}

static void test_decode(void **state) {
  const char *pairs[][2] = {{"src.png", "src.slrf"},
                            {"src_q90.jpg", "src_q90.slrf"},
                            {"gray.jpg", "gray.slrf"},
                            {"pal.png", "pal.slrf"},
                            {"rgba.png", "rgba.slrf"},
                            {"pal_trns.png", "pal_trns.slrf"},
                            {"gray_alpha.png", "gray_alpha.slrf"},
                            {"odd_q75.jpg", "odd_q75.slrf"},
                            {"progressive.jpg", "progressive.slrf"}};
  for (int k = 0; k < 9; k++) {
    slr_image im;
    assert_int_equal(slr_image_read(fixture_path(pairs[k][0]), &im), 0);
    fixture f;
    load_fixture(pairs[k][1], &f);
    int64_t exact;
    int worst = compare_u8(&im, &f, &exact);
    if (worst > 0) fail_msg("%s: decoded pixels differ from PIL by up to %d", pairs[k][0], worst);
    free(f.data);
    slr_image_free(&im);
  }
}

static void test_resize(void **state) {
  const int sizes[][2] = {{128, 80}, {256, 128}, {24, 16}, {37, 53}, {64, 23}, {29, 40}, {7, 5}};
  slr_image src;
  assert_int_equal(slr_image_read(fixture_path("src.png"), &src), 0);
  int64_t total = 0, exact_total = 0;
  for (int fl = 0; fl < 2; fl++)
    for (int k = 0; k < 7; k++) {
      const char *name = fl ? "bicubic" : "bilinear";
      char fn[128];
      snprintf(fn, sizeof fn, "resize_%s_%dx%d.slrf", name, sizes[k][0], sizes[k][1]);
      fixture f;
      load_fixture(fn, &f);
      slr_image out;
      assert_int_equal(slr_image_resize(&src, sizes[k][0], sizes[k][1],
                                        fl ? SLR_RESAMPLE_BICUBIC : SLR_RESAMPLE_BILINEAR, &out),
                       0);
      int64_t exact;
      int worst = compare_u8(&out, &f, &exact);
      if (worst > 1) fail_msg("%s: differs from PIL by %d levels", fn, worst);
      total += (int64_t)out.h * out.w * 3;
      exact_total += exact;
      free(f.data);
      slr_image_free(&out);
    }
  /* PIL's fixed-point arithmetic is reproduced, not approximated */
  printf("resize: %lld of %lld values equal to PIL\n", (long long)exact_total, (long long)total);
  assert_true(exact_total * 1000 >= total * 999);
  slr_image_free(&src);
}

static void compare_f32(const float *got, const fixture *f, float tol, const char *what) {
  assert_int_equal(f->dtype, 1);
  const float *ref = f->data;
  float worst = 0;
  for (size_t i = 0; i < (size_t)f->d0 * f->d1 * f->d2; i++) {
    float d = fabsf(got[i] - ref[i]);
    if (d > worst) worst = d;
  }
  if (worst > tol) fail_msg("%s: differs from torchvision by %g", what, worst);
}

static void test_transforms(void **state) {
  slr_image src, small;
  assert_int_equal(slr_image_read(fixture_path("src.png"), &src), 0);
  slr_data_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.height = 32;
  cfg.width = 16;
  strcpy(cfg.interpolation, "bicubic");
  cfg.flip_p = 0.5;
  cfg.pad = 10;
  cfg.erase_p = 0.5;
  slr_transform tf;
  assert_int_equal(slr_transform_from_config(&tf, &cfg), 0);
  assert_int_equal(slr_image_resize(&src, 32, 16, tf.interp, &small), 0);
  float out[3 * 32 * 16];
  fixture f;
  load_fixture("test_tf_32x16.slrf", &f);
  assert_int_equal(f.d0, 3);
  slr_transform_apply(&tf, &small, 0, NULL, out);
  compare_f32(out, &f, 1e-6f, "test transform");
  free(f.data);
  load_fixture("train_tf_32x16.slrf", &f);
  slr_transform_apply_fixed(&tf, &small, 1, 3, 17, 5, 2, 10, 6, out);
  compare_f32(out, &f, 1e-6f, "train transform (flip, pad, crop, erase)");
  free(f.data);
  /* random draws: reproducible from (seed, epoch, step, position) */
  float a[3 * 32 * 16], b[3 * 32 * 16];
  int differ = 0, erased_samples = 0;
  for (int pos = 0; pos < 64; pos++) {
    slr_rng r;
    slr_sample_rng(&r, 5, 1, 2, pos);
    slr_transform_apply(&tf, &small, 1, &r, a);
    slr_sample_rng(&r, 5, 1, 2, pos);
    slr_transform_apply(&tf, &small, 1, &r, b);
    assert_memory_equal(a, b, sizeof a);
    slr_sample_rng(&r, 5, 1, 3, pos);
    slr_transform_apply(&tf, &small, 1, &r, b);
    differ += memcmp(a, b, sizeof a) != 0;
    /* count erased samples: a 0.485 block in channel 0 where the source differs */
    int erased = 0;
    for (int i = 0; i < 32 * 16; i++) erased += a[i] == slr_imagenet_mean[0];
    erased_samples += erased > 0;
  }
  assert_true(differ >= 60);
  assert_true(erased_samples > 16 && erased_samples < 48); /* erase_p = 0.5 */
  slr_image_free(&small);
  slr_image_free(&src);
}

static void test_encode_roundtrip(void **state) {
  slr_image src, back;
  assert_int_equal(slr_image_read(fixture_path("src.png"), &src), 0);
  char *dir = slr_test_tmpdir(0);
  char p[1024];
  snprintf(p, sizeof p, "%s/x.png", dir);
  assert_int_equal(slr_image_write_png(p, &src), 0);
  assert_int_equal(slr_image_read(p, &back), 0);
  assert_memory_equal(back.data, src.data, (size_t)src.h * src.w * 3);
  slr_image_free(&back);
  snprintf(p, sizeof p, "%s/x.jpg", dir);
  assert_int_equal(slr_image_write_jpeg(p, &src, 95), 0);
  assert_int_equal(slr_image_read(p, &back), 0);
  assert_int_equal(back.w, src.w);
  double err = 0;
  for (size_t i = 0; i < (size_t)src.h * src.w * 3; i++)
    err += fabs((double)back.data[i] - src.data[i]);
  /* PIL's quality-95 round trip of this noisy image: 23.44 (4:2:0 chroma) */
  assert_true(fabs(err / (src.h * src.w * 3) - 23.44) < 0.5);
  slr_image_free(&back);
  slr_image_free(&src);
  slr_test_rmtree(dir);
  free(dir);
}

static void expect_bad(const char *path, const char *needle) {
  slr_image im;
  assert_int_equal(slr_image_read(path, &im), SLR_ERR_INPUT);
  const char *m = slr_error_message();
  if (!strstr(m, path) || !strstr(m, needle))
    fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", m, path, needle);
}

static void test_bad_files(void **state) {
  char *dir = slr_test_tmpdir(0);
  char p[1024];
  FILE *f = fopen(fixture_path("src_q90.jpg"), "rb");
  uint8_t buf[8192];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  /* truncated JPEG */
  snprintf(p, sizeof p, "%s/trunc.jpg", dir);
  f = fopen(p, "wb");
  fwrite(buf, 1, n / 2, f);
  fclose(f);
  expect_bad(p, "truncated");
  /* corrupt JPEG: a valid start, then garbage in the headers */
  snprintf(p, sizeof p, "%s/corrupt.jpg", dir);
  f = fopen(p, "wb");
  fwrite(buf, 1, 4, f);
  for (int i = 0; i < 400; i++) fputc((i * 37) & 0xff, f);
  fclose(f);
  expect_bad(p, "corrupt JPEG");
  /* truncated PNG */
  f = fopen(fixture_path("src.png"), "rb");
  n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  snprintf(p, sizeof p, "%s/trunc.png", dir);
  f = fopen(p, "wb");
  fwrite(buf, 1, n / 2, f);
  fclose(f);
  expect_bad(p, "PNG");
  snprintf(p, sizeof p, "%s/empty.jpg", dir);
  slr_test_write(p, "");
  expect_bad(p, "empty");
  snprintf(p, sizeof p, "%s/text.jpg", dir);
  slr_test_write(p, "hello");
  expect_bad(p, "neither a JPEG nor a PNG");
  snprintf(p, sizeof p, "%s/missing.jpg", dir);
  expect_bad(p, "cannot read");
  slr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode),     cmocka_unit_test(test_resize),
      cmocka_unit_test(test_transforms), cmocka_unit_test(test_encode_roundtrip),
      cmocka_unit_test(test_bad_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
