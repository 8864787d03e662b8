/* A small JSON writer: objects, arrays, numbers (shortest exact text),
 * integers, booleans and escaped strings into a growing buffer. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "slr/io.h"

void slr_json_init(slr_json *j) {
  memset(j, 0, sizeof *j);
  j->first[0] = 1;
}

void slr_json_free(slr_json *j) {
  free(j->buf);
  memset(j, 0, sizeof *j);
}

static void put(slr_json *j, const char *s, size_t n) {
  if (j->failed) return;
  if (j->len + n + 1 > j->cap) {
    size_t cap = j->cap ? j->cap : 256;
    while (cap < j->len + n + 1) cap *= 2;
    char *b = realloc(j->buf, cap);
    if (!b) {
      j->failed = 1;
      return;
    }
    j->buf = b;
    j->cap = cap;
  }
  memcpy(j->buf + j->len, s, n);
  j->len += n;
  j->buf[j->len] = '\0';
}

static void puts_(slr_json *j, const char *s) { put(j, s, strlen(s)); }

static void put_string(slr_json *j, const char *s) {
  put(j, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    switch (*p) {
    case '"': puts_(j, "\\\""); break;
    case '\\': puts_(j, "\\\\"); break;
    case '\n': puts_(j, "\\n"); break;
    case '\t': puts_(j, "\\t"); break;
    case '\r': puts_(j, "\\r"); break;
    default:
      if (*p < 0x20) {
        snprintf(esc, sizeof esc, "\\u%04x", *p);
        puts_(j, esc);
      } else {
        put(j, (const char *)p, 1);
      }
    }
  }
  put(j, "\"", 1);
}

/* separator and member name before a value */
static void lead(slr_json *j, const char *key) {
  if (!j->first[j->depth]) put(j, ", ", 2);
  j->first[j->depth] = 0;
  if (key) {
    put_string(j, key);
    put(j, ": ", 2);
  }
}

static void open_(slr_json *j, const char *key, const char *brace) {
  lead(j, key);
  puts_(j, brace);
  if (j->depth + 1 >= (int)sizeof j->first) {
    j->failed = 1;
    return;
  }
  j->first[++j->depth] = 1;
}

void slr_json_object_begin(slr_json *j, const char *key) { open_(j, key, "{"); }
void slr_json_array_begin(slr_json *j, const char *key) { open_(j, key, "["); }

void slr_json_object_end(slr_json *j) {
  if (j->depth > 0) j->depth--;
  puts_(j, "}");
}

void slr_json_array_end(slr_json *j) {
  if (j->depth > 0) j->depth--;
  puts_(j, "]");
}

void slr_json_num(slr_json *j, const char *key, double v) {
  lead(j, key);
  if (!isfinite(v)) {
    puts_(j, "null");
    return;
  }
  char b[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(b, sizeof b, "%.*g", prec, v);
    if (strtod(b, NULL) == v) break;
  }
  puts_(j, b);
}

void slr_json_int(slr_json *j, const char *key, int64_t v) {
  lead(j, key);
  char b[32];
  snprintf(b, sizeof b, "%lld", (long long)v);
  puts_(j, b);
}

void slr_json_bool(slr_json *j, const char *key, int v) {
  lead(j, key);
  puts_(j, v ? "true" : "false");
}

void slr_json_str(slr_json *j, const char *key, const char *v) {
  lead(j, key);
  put_string(j, v ? v : "");
}

const char *slr_json_text(const slr_json *j) { return j->buf && !j->failed ? j->buf : ""; }
int slr_json_ok(const slr_json *j) { return !j->failed; }
