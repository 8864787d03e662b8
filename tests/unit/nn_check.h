/* Helpers shared by the nn tests: fixture reading (HDF5 files written by
 * h5py under tests/fixtures/nn), comparison relative to a tensor's scale,
 * and finite-difference gradient checks in double. */
#ifndef NN_CHECK_H
#define NN_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/io.h"
#include "slr/nn.h"
/* the plain reference kernels the tests compare with (private to nn) */
#include "../../src/nn/nn_ref.h"
#include "slr_test.h"

static slr_h5 nn_fx;

static inline void nn_fixture_open(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/nn/%s", SLR_FIXTURE_DIR, name);
  int rc = slr_h5_open(&nn_fx, MPI_COMM_SELF, path, NULL, 0, SLR_H5_FOREIGN_OK);
  if (rc) fprintf(stderr, "%s\n", slr_error_message());
  assert_int_equal(rc, 0);
}
static inline void nn_fixture_close(void) { slr_h5_close(&nn_fx); }

/* the fixture that NN_TEST_MAIN keeps open while its group runs */
static const char *nn_group_fixture;
static inline int nn_group_setup(void **state) {
  (void)state;
  if (nn_group_fixture) nn_fixture_open(nn_group_fixture);
  return 0;
}
static inline int nn_group_teardown(void **state) {
  (void)state;
  if (nn_group_fixture) nn_fixture_close();
  return 0;
}
/* main() of an nn test: the group `tests` (an array) run inside MPI_Init /
 * MPI_Finalize, with the fixture file `fixture` (a name under
 * tests/fixtures/nn, or NULL for none) open throughout */
#define NN_TEST_MAIN(tests, fixture)                                                   \
  int main(int argc, char **argv) {                                                  \
    nn_group_fixture = (fixture);                                                    \
    MPI_Init(&argc, &argv);                                                          \
    int rc = cmocka_run_group_tests(tests, nn_group_setup, nn_group_teardown);       \
    MPI_Finalize();                                                                  \
    return rc;                                                                       \
  }

/* float32 copy of dataset case/name (malloc'ed); *n gets the count */
static inline void *nn_get_typed(const char *cs, const char *name, slr_dtype type, int64_t *n) {
  char key[256];
  if (*cs) snprintf(key, sizeof key, "/%s/%s", cs, name);
  else snprintf(key, sizeof key, "/%s", name);
  void *buf = NULL;
  int64_t cnt = 0;
  int rc = slr_h5_read_all(&nn_fx, key, type, &buf, &cnt);
  if (rc) fprintf(stderr, "%s\n", slr_error_message());
  assert_int_equal(rc, 0);
  if (n) *n = cnt;
  return buf;
}
/* float32 copy of dataset /case/name ("" case: /name), malloc'ed; *n gets the count */
static inline float *nn_get(const char *cs, const char *name, int64_t *n) {
  return nn_get_typed(cs, name, SLR_F32, n);
}
static inline int64_t *nn_get_i64(const char *cs, const char *name, int64_t *n) {
  return nn_get_typed(cs, name, SLR_I64, n);
}
static inline int32_t *nn_get_i32(const char *cs, const char *name, int64_t *n) {
  return nn_get_typed(cs, name, SLR_I32, n);
}
static inline double *nn_get_f64(const char *cs, const char *name, int64_t *n) {
  return nn_get_typed(cs, name, SLR_F64, n);
}

/* max |got - want| <= tol * max(max |want|, floor) */
static inline int nn_close_floor(const char *what, const float *got, const float *want, int64_t n,
                                 double tol, double floor) {
  double scale = floor, err = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]);
    if (!(e <= err)) err = e, at = i;
  }
  int ok = err <= tol * scale;
  if (!ok)
    fprintf(stderr, "%s: max error %.3g at %lld (got %.7g want %.7g), scale %.3g\n", what, err,
            (long long)at, got[at], want[at], scale);
  return ok;
}

static inline int nn_close(const char *what, const float *got, const float *want, int64_t n,
                           double tol) {
  return nn_close_floor(what, got, want, n, tol, 1e-6);
}

static inline float *nn_zeros(int64_t n) {
  float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
  assert_non_null(p);
  return p;
}

/* ---- finite differences in double ---- */

static inline double *nn_rand64(int64_t n, uint64_t stream, double scale, double shift) {
  double *p = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  assert_non_null(p);
  slr_rng r;
  slr_rng_init(&r, 99, stream, 0);
  for (int64_t i = 0; i < n; i++) p[i] = shift + scale * slr_rng_normal(&r);
  return p;
}

/* An objective L(theta) = sum(dy * f(theta)) evaluated by `fn`; compares
 * analytic gradient `g` (n) of buffer `x` (n) to central differences. */
typedef double (*nn_objective)(void *ctx);
static inline int nn_fd_check(const char *what, double *x, const double *g, int64_t n,
                              nn_objective fn, void *ctx, double h, double tol) {
  double worst = 0, scale = 1e-8;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(g[i]));
  for (int64_t i = 0; i < n; i++) {
    double keep = x[i];
    x[i] = keep + h;
    double lp = fn(ctx);
    x[i] = keep - h;
    double lm = fn(ctx);
    x[i] = keep;
    double fd = (lp - lm) / (2 * h);
    worst = fmax(worst, fabs(fd - g[i]));
  }
  int ok = worst <= tol * scale;
  if (!ok) fprintf(stderr, "%s: finite-difference error %.3g, scale %.3g\n", what, worst, scale);
  return ok;
}

static inline double nn_dot64(const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

#endif
