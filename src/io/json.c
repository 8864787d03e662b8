/* The JSON writer on json-c: objects and arrays as a json-c tree, numbers
 * with the shortest text that reads back exactly (json_object_new_double_s,
 * since json-c's own "%.17g" prints 0.1 as 0.10000000000000001), NaN and
 * infinities as null, serialised with json-c's spaced style and no escaping
 * of '/'. */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/io.h"

void slr_json_init(slr_json *j) { memset(j, 0, sizeof *j); }

void slr_json_free(slr_json *j) {
  if (j->root) json_object_put(j->root);
  memset(j, 0, sizeof *j);
}

/* add a value (NULL: JSON null) under `key` in the innermost open container,
 * or as the top value; takes the reference */
static void add(slr_json *j, const char *key, struct json_object *v, int is_null) {
  if (!v && !is_null) j->failed = 1; /* out of memory */
  if (j->failed) {
    json_object_put(v);
    return;
  }
  if (j->depth == 0) {
    if (j->root || j->top_set) {
      j->failed = 1; /* a second top-level value */
      json_object_put(v);
      return;
    }
    j->root = v;
    j->top_set = 1;
    return;
  }
  struct json_object *parent = j->stack[j->depth - 1];
  int rc;
  if (json_object_is_type(parent, json_type_object))
    rc = key ? json_object_object_add(parent, key, v) : -1;
  else
    rc = json_object_array_add(parent, v);
  if (rc != 0) {
    j->failed = 1;
    json_object_put(v);
  }
}

static void open_(slr_json *j, const char *key, struct json_object *c) {
  if (j->depth >= (int)(sizeof j->stack / sizeof j->stack[0])) {
    j->failed = 1;
    json_object_put(c);
    return;
  }
  add(j, key, c, 0);
  if (!j->failed) j->stack[j->depth++] = c;
}

void slr_json_object_begin(slr_json *j, const char *key) { open_(j, key, json_object_new_object()); }
void slr_json_array_begin(slr_json *j, const char *key) { open_(j, key, json_object_new_array()); }
void slr_json_object_end(slr_json *j) {
  if (j->depth > 0) j->depth--;
}
void slr_json_array_end(slr_json *j) {
  if (j->depth > 0) j->depth--;
}

void slr_json_num(slr_json *j, const char *key, double v) {
  if (!isfinite(v)) {
    add(j, key, NULL, 1);
    return;
  }
  char b[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(b, sizeof b, "%.*g", prec, v);
    if (strtod(b, NULL) == v) break;
  }
  add(j, key, json_object_new_double_s(v, b), 0);
}

void slr_json_int(slr_json *j, const char *key, int64_t v) {
  add(j, key, json_object_new_int64(v), 0);
}

void slr_json_bool(slr_json *j, const char *key, int v) {
  add(j, key, json_object_new_boolean(v ? 1 : 0), 0);
}

void slr_json_str(slr_json *j, const char *key, const char *v) {
  add(j, key, json_object_new_string(v ? v : ""), 0);
}

const char *slr_json_text(const slr_json *j) {
  if (j->failed || !j->root) return "";
  const char *t = json_object_to_json_string_ext(
      j->root, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
  return t ? t : "";
}

int slr_json_ok(const slr_json *j) { return !j->failed; }
