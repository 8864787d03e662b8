/* The SLR soft targets of training (slr_soft_targets_*, over the memory's
 * clusters) against NumPy, and the soft-target term of the cluster-memory
 * loss (slr_cmloss_soft) against PyTorch: fixture from
 * tools/ref/soft_loss_ref.py. */
// ranks: 1
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/io.h"
#include "slr/nn.h"
#include "slr/refine.h"
#include "slr_test.h"

#define FIXTURE SLR_FIXTURE_DIR "/nn/soft_loss.h5"

static void *get(slr_h5 *f, const char *name, slr_dtype t, int64_t *n) {
  void *buf = NULL;
  int64_t cnt = 0;
  assert_int_equal(slr_h5_read_all(f, name, t, &buf, &cnt), 0);
  if (n) *n = cnt;
  return buf;
}

/* the fixture's dense P as CSR */
static void dense_to_csr(const double *d, int64_t r, int64_t c, slr_csr *m) {
  memset(m, 0, sizeof *m);
  m->nrows = r, m->ncols = c;
  m->indptr = calloc((size_t)r + 1, sizeof(int64_t));
  m->indices = malloc(sizeof(int32_t) * (size_t)(r * c + 1));
  m->values = malloc(sizeof(double) * (size_t)(r * c + 1));
  int64_t e = 0;
  for (int64_t a = 0; a < r; a++) {
    for (int64_t b = 0; b < c; b++)
      if (d[a * c + b] != 0) m->indices[e] = (int32_t)b, m->values[e++] = d[a * c + b];
    m->indptr[a + 1] = e;
  }
}

static void test_soft_targets(void **state) {
  (void)state;
  slr_h5 f;
  assert_int_equal(slr_h5_open(&f, MPI_COMM_WORLD, FIXTURE, NULL, 1, SLR_H5_FOREIGN_OK), 0);
  int64_t n, np, nt;
  int32_t *y_prev = get(&f, "y_prev", SLR_I32, &n), *y_cur = get(&f, "y_cur", SLR_I32, NULL);
  int32_t *y_mem = get(&f, "y_mem", SLR_I32, NULL), *has = get(&f, "has", SLR_I32, NULL);
  double *P = get(&f, "P", SLR_F64, &np), *want = get(&f, "targets", SLR_F64, &nt), alpha;
  assert_int_equal(slr_h5_attr_get_f64(&f, "/", "alpha", &alpha), 0);
  slr_h5_close(&f);
  const int64_t km = nt / n, kc = 6, kp = np / kc;
  slr_csr proj;
  dense_to_csr(P, kp, kc, &proj);
  slr_soft_targets st;
  assert_int_equal(slr_soft_targets_init(&st, alpha, &proj, n, y_prev, y_cur, y_mem, km), 0);
  float *t = malloc(sizeof(float) * (size_t)km);
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    assert_int_equal(slr_soft_targets_row(&st, i, t), has[i]);
    for (int64_t r = 0; r < km; r++) worst = fmax(worst, fabs(t[r] - want[i * km + r]));
  }
  assert_true(worst < 1e-6);
  /* without previous labels the target is the current cluster's carry */
  slr_soft_targets_free(&st);
  assert_int_equal(slr_soft_targets_init(&st, alpha, NULL, n, NULL, y_cur, y_mem, km), 0);
  for (int64_t i = 0; i < n; i++) {
    int got = slr_soft_targets_row(&st, i, t);
    double sum = 0;
    for (int64_t r = 0; r < km; r++) sum += t[r];
    assert_true(got ? fabs(sum - 1) < 1e-6 : sum == 0);
    if (y_cur[i] < 0) assert_int_equal(got, 0);
  }
  slr_soft_targets_free(&st);
  slr_csr_free(&proj);
  free(t), free(y_prev), free(y_cur), free(y_mem), free(has), free(P), free(want);
}

static void test_soft_label_formula(void **state) {
  (void)state;
  /* P row 0 = {1: 0.25, 3: 0.75}; s = alpha e_cur + (1 - alpha) P[0] */
  int64_t ptr[2] = {0, 2};
  int32_t ix[2] = {1, 3};
  double v[2] = {0.25, 0.75};
  slr_csr P = {1, 4, ptr, ix, v};
  int32_t cols[4];
  double vals[4];
  assert_int_equal(slr_refine_soft_label(0.4, &P, 0, 2, cols, vals), 3);
  assert_int_equal(cols[0], 1), assert_int_equal(cols[1], 2), assert_int_equal(cols[2], 3);
  assert_true(fabs(vals[0] - 0.15) < 1e-15 && fabs(vals[1] - 0.4) < 1e-15 &&
              fabs(vals[2] - 0.45) < 1e-15);
  assert_int_equal(slr_refine_soft_label(0.4, &P, 0, 3, cols, vals), 2);
  assert_true(fabs(vals[1] - 0.85) < 1e-15);
  assert_int_equal(slr_refine_soft_label(0.4, &P, -1, -1, cols, vals), 0);
  assert_int_equal(slr_refine_soft_label(0.4, NULL, 0, 1, cols, vals), 1);
}

static void test_soft_loss_torch(void **state) {
  (void)state;
  slr_h5 f;
  assert_int_equal(slr_h5_open(&f, MPI_COMM_WORLD, FIXTURE, NULL, 1, SLR_H5_FOREIGN_OK), 0);
  int64_t nf, nm, n, nt;
  float *feat = get(&f, "feat", SLR_F32, &nf), *mem = get(&f, "mem", SLR_F32, &nm);
  float *probs = get(&f, "probs", SLR_F32, NULL);
  double *targets = get(&f, "targets", SLR_F64, &nt), *loss = get(&f, "loss", SLR_F64, NULL);
  double *dfeat = get(&f, "dfeat", SLR_F64, NULL), temp, weight;
  int64_t *idx = get(&f, "idx", SLR_I64, &n);
  assert_int_equal(slr_h5_attr_get_f64(&f, "/", "temp", &temp), 0);
  assert_int_equal(slr_h5_attr_get_f64(&f, "/", "weight", &weight), 0);
  slr_h5_close(&f);
  const int B = (int)n, K = 4, D = (int)(nf / n);
  const int64_t nsamples = nt / K;
  float *t = malloc(sizeof(float) * (size_t)B * K), *g = calloc((size_t)B * D, sizeof(float));
  for (int i = 0; i < B; i++)
    for (int r = 0; r < K; r++) t[i * K + r] = (float)targets[idx[i] * K + r];
  (void)nsamples;
  double l = 0;
  assert_int_equal(slr_cmloss_soft(g, &l, probs, mem, t, B, D, K, (float)temp, (float)weight, B), 0);
  assert_true(fabs(l - loss[0]) < 1e-4 * fmax(1, fabs(loss[0])));
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < (int64_t)B * D; i++)
    worst = fmax(worst, fabs(g[i] - dfeat[i])), scale = fmax(scale, fabs(dfeat[i]));
  assert_true(worst < 1e-4 * scale);
  free(feat), free(mem), free(probs), free(targets), free(loss), free(dfeat), free(idx), free(t),
      free(g);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_soft_targets),
    cmocka_unit_test(test_soft_label_formula),
    cmocka_unit_test(test_soft_loss_torch),
};
SLR_TEST_MAIN_MPI(tests)
