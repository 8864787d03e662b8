/* data synth: rendering is a pure function of (options, id, camera, shot);
 * the two styles differ in their statistics as intended (the realistic
 * style is noisier and less saturated); look-alikes share attributes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/data.h"
#include "slr_test.h"

/* mean |4 p - neighbours| (high-frequency energy) and mean chroma */
static void stats(const slr_image *im, double *hf, double *sat) {
  double a = 0, s = 0;
  int64_t n = 0;
  for (int y = 1; y < im->h - 1; y++)
    for (int x = 1; x < im->w - 1; x++) {
      for (int c = 0; c < 3; c++) {
        int p = im->data[((size_t)y * im->w + x) * 3 + c];
        int q = im->data[((size_t)(y - 1) * im->w + x) * 3 + c] +
                im->data[((size_t)(y + 1) * im->w + x) * 3 + c] +
                im->data[((size_t)y * im->w + x - 1) * 3 + c] +
                im->data[((size_t)y * im->w + x + 1) * 3 + c];
        a += fabs(4.0 * p - q);
      }
      const uint8_t *p = im->data + ((size_t)y * im->w + x) * 3;
      int mx = p[0] > p[1] ? p[0] : p[1], mn = p[0] < p[1] ? p[0] : p[1];
      mx = mx > p[2] ? mx : p[2];
      mn = mn < p[2] ? mn : p[2];
      s += (double)(mx - mn) / 255.0;
      n++;
    }
  *hf = a / (3.0 * n);
  *sat = s / n;
}

static void test_deterministic(void **state) {
  slr_synth_opts o;
  slr_synth_defaults(&o);
  o.seed = 11;
  slr_image a, b;
  for (int id = 0; id < 6; id++) {
    assert_int_equal(slr_synth_render(&o, id, id % 4, 1, &a), 0);
    assert_int_equal(slr_synth_render(&o, id, id % 4, 1, &b), 0);
    assert_int_equal(a.h, 64);
    assert_int_equal(a.w, 32);
    assert_memory_equal(a.data, b.data, (size_t)a.h * a.w * 3);
    slr_image_free(&b);
    assert_int_equal(slr_synth_render(&o, id, id % 4, 2, &b), 0);
    assert_true(memcmp(a.data, b.data, (size_t)a.h * a.w * 3) != 0);
    slr_image_free(&a);
    slr_image_free(&b);
  }
}

static void test_styles_differ(void **state) {
  slr_synth_opts o;
  slr_synth_defaults(&o);
  o.height = 128;
  o.width = 64;
  double hf[2] = {0, 0}, sat[2] = {0, 0};
  for (int st = 0; st < 2; st++) {
    o.style = st ? SLR_STYLE_REALISTIC : SLR_STYLE_SYNTHETIC;
    for (int id = 0; id < 20; id++) {
      slr_image im;
      assert_int_equal(slr_synth_render(&o, id, id % 4, 0, &im), 0);
      double h, s;
      stats(&im, &h, &s);
      hf[st] += h / 20;
      sat[st] += s / 20;
      slr_image_free(&im);
    }
  }
  printf("synthetic: hf %.2f chroma %.3f; realistic: hf %.2f chroma %.3f\n", hf[0], sat[0], hf[1],
         sat[1]);
  assert_true(hf[1] > 1.2 * hf[0]);
  assert_true(sat[0] > 1.2 * sat[1]);
}

static void test_bad_options(void **state) {
  slr_synth_opts o;
  slr_synth_defaults(&o);
  o.cams = 7;
  slr_image im;
  assert_int_equal(slr_synth_render(&o, 0, 0, 0, &im), SLR_ERR_USAGE);
  assert_non_null(strstr(slr_error_message(), "--cams"));
  slr_synth_defaults(&o);
  o.difficulty = 1.5;
  assert_int_equal(slr_synth_render(&o, 0, 0, 0, &im), SLR_ERR_USAGE);
  assert_non_null(strstr(slr_error_message(), "--difficulty"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_styles_differ),
      cmocka_unit_test(test_bad_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
