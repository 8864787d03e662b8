/* The JSON writer (json-c): nesting, separators, escaping, exact numbers,
 * null for non-finite values, unescaped slashes, misuse reported. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/io.h"
#include "slr_test.h"

static void test_json(void **state) {
  slr_json j;
  slr_json_init(&j);
  slr_json_object_begin(&j, NULL);
  slr_json_str(&j, "name", "a \"quoted\"\\path\n\x01");
  slr_json_num(&j, "mAP", 0.1);
  slr_json_num(&j, "third", 1.0 / 3.0);
  slr_json_num(&j, "bad", NAN);
  slr_json_int(&j, "step", -12345678901LL);
  slr_json_bool(&j, "ok", 1);
  slr_json_array_begin(&j, "cmc");
  slr_json_num(&j, NULL, 0.5);
  slr_json_num(&j, NULL, 1);
  slr_json_object_begin(&j, NULL);
  slr_json_object_end(&j);
  slr_json_array_end(&j);
  slr_json_array_begin(&j, "empty");
  slr_json_array_end(&j);
  slr_json_object_end(&j);
  assert_true(slr_json_ok(&j));
  assert_string_equal(slr_json_text(&j),
                      "{ \"name\": \"a \\\"quoted\\\"\\\\path\\n\\u0001\", \"mAP\": 0.1, "
                      "\"third\": 0.3333333333333333, \"bad\": null, \"step\": -12345678901, "
                      "\"ok\": true, \"cmc\": [ 0.5, 1, { } ], \"empty\": [ ] }");
  slr_json_free(&j);
}

/* paths keep their slashes; misuse is reported, not written */
static void test_json_paths_and_misuse(void **state) {
  slr_json j;
  slr_json_init(&j);
  slr_json_object_begin(&j, NULL);
  slr_json_str(&j, "path", "runs/d2m/final.h5");
  slr_json_object_end(&j);
  assert_true(slr_json_ok(&j));
  assert_string_equal(slr_json_text(&j), "{ \"path\": \"runs/d2m/final.h5\" }");
  slr_json_int(&j, NULL, 1); /* a second top-level value */
  assert_false(slr_json_ok(&j));
  assert_string_equal(slr_json_text(&j), "");
  slr_json_free(&j);

  slr_json_init(&j);
  for (int i = 0; i < 40; i++) slr_json_array_begin(&j, NULL); /* deeper than the writer keeps */
  assert_false(slr_json_ok(&j));
  slr_json_free(&j);

  slr_json_init(&j);
  slr_json_object_begin(&j, NULL);
  slr_json_int(&j, NULL, 3); /* a member without a name */
  assert_false(slr_json_ok(&j));
  slr_json_free(&j);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_json),
                                     cmocka_unit_test(test_json_paths_and_misuse)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
