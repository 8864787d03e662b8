/* nn layers: the optimised kernels and the float reference kernels against
 * PyTorch (fixtures from tools/ref/nn_layers.py) for every forward output
 * and gradient, and the double reference kernels by finite differences. */
#include "nn_check.h"

#define TOL 1e-4

/* ---- against PyTorch ------------------------------------------------------------ */

static void test_conv2d_torch(void **state) {
  for (int t = 0; t < 6; t++) {
    char cs[32];
    snprintf(cs, sizeof cs, "conv%d", t);
    int64_t *cfg = nn_get_i64(cs, "cfg", NULL), ny, nx, nw;
    slr_conv2d_dims d = {(int)cfg[0], (int)cfg[1], (int)cfg[2], (int)cfg[3], (int)cfg[4],
                         (int)cfg[5], (int)cfg[6], (int)cfg[7], (int)cfg[8]};
    int hb = (int)cfg[9];
    float *x = nn_get(cs, "x", &nx), *w = nn_get(cs, "w", &nw), *y = nn_get(cs, "y", &ny);
    float *dy = nn_get(cs, "dy", NULL), *dx = nn_get(cs, "dx", NULL), *dw = nn_get(cs, "dw", NULL);
    float *b = hb ? nn_get(cs, "b", NULL) : NULL, *db = hb ? nn_get(cs, "db", NULL) : NULL;
    assert_int_equal(ny, (int64_t)d.N * d.OC * slr_conv2d_oh(&d) * slr_conv2d_ow(&d));
    float *scratch = nn_zeros((int64_t)slr_conv2d_scratch(&d));
    for (int impl = 0; impl < 2; impl++) {
      float *out = nn_zeros(ny), *gx = nn_zeros(nx), *gw = nn_zeros(nw), *gb = nn_zeros(d.OC);
      /* gradients accumulate: start from 1 and subtract it afterwards */
      for (int64_t i = 0; i < nx; i++) gx[i] = 1.0f;
      if (impl == 0) {
        slr_conv2d_forward(out, x, w, b, &d, scratch);
        slr_conv2d_backward(gx, gw, hb ? gb : NULL, dy, x, w, &d, scratch);
      } else {
        slr_ref_conv2d_forward(out, x, w, b, &d);
        slr_ref_conv2d_backward(gx, gw, hb ? gb : NULL, dy, x, w, &d);
      }
      for (int64_t i = 0; i < nx; i++) gx[i] -= 1.0f;
      assert_true(nn_close(cs, out, y, ny, TOL));
      assert_true(nn_close("conv dx", gx, dx, nx, TOL));
      assert_true(nn_close("conv dw", gw, dw, nw, TOL));
      if (hb) assert_true(nn_close("conv db", gb, db, d.OC, TOL));
      free(out), free(gx), free(gw), free(gb);
    }
    free(scratch), free(cfg), free(x), free(w), free(y), free(dy), free(dx), free(dw), free(b), free(db);
  }
}

static void test_batchnorm_torch(void **state) {
  for (int t = 0; t < 4; t++) {
    char cs[32];
    snprintf(cs, sizeof cs, "bn%d", t);
    int64_t *cfg = nn_get_i64(cs, "cfg", NULL), nx;
    int N = (int)cfg[0], C = (int)cfg[1], HW = (int)(cfg[2] * cfg[3]), tr = (int)cfg[4];
    slr_bn_dims d = {N, C, HW, 1e-5f, 0.1f, tr, MPI_COMM_NULL, 0, 0};
    float *x = nn_get(cs, "x", &nx), *w = nn_get(cs, "w", NULL), *b = nn_get(cs, "b", NULL);
    float *rm0 = nn_get(cs, "rm0", NULL), *rv0 = nn_get(cs, "rv0", NULL);
    float *y = nn_get(cs, "y", NULL), *rm = nn_get(cs, "rm", NULL), *rv = nn_get(cs, "rv", NULL);
    float *dy = nn_get(cs, "dy", NULL), *dx = nn_get(cs, "dx", NULL);
    float *dw = nn_get(cs, "dw", NULL), *db = nn_get(cs, "db", NULL);
    for (int impl = 0; impl < 2; impl++) {
      float *out = nn_zeros(nx), *gx = nn_zeros(nx), *gw = nn_zeros(C), *gb = nn_zeros(C);
      float *mean = nn_zeros(C), *rstd = nn_zeros(C), *run_m = nn_zeros(C), *run_v = nn_zeros(C);
      memcpy(run_m, rm0, sizeof(float) * C);
      memcpy(run_v, rv0, sizeof(float) * C);
      int64_t nb = 0;
      if (impl == 0) {
        assert_int_equal(slr_batchnorm_forward(out, mean, rstd, x, w, b, run_m, run_v, &nb, &d), 0);
        assert_int_equal(slr_batchnorm_backward(gx, gw, gb, dy, x, w, mean, rstd, &d), 0);
      } else {
        slr_ref_batchnorm_forward(out, mean, rstd, x, w, b, run_m, run_v, &nb, &d);
        slr_ref_batchnorm_backward(gx, gw, gb, dy, x, w, mean, rstd, &d);
      }
      assert_int_equal(nb, tr ? 1 : 0);
      assert_true(nn_close(cs, out, y, nx, TOL));
      assert_true(nn_close("bn running_mean", run_m, rm, C, TOL));
      assert_true(nn_close("bn running_var", run_v, rv, C, TOL));
      assert_true(nn_close("bn dx", gx, dx, nx, TOL));
      assert_true(nn_close("bn dw", gw, dw, C, TOL));
      assert_true(nn_close("bn db", gb, db, C, TOL));
      /* a frozen bias gets no gradient and changes nothing else */
      float *gx2 = nn_zeros(nx);
      if (impl == 0) assert_int_equal(slr_batchnorm_backward(gx2, NULL, NULL, dy, x, w, mean, rstd, &d), 0);
      else slr_ref_batchnorm_backward(gx2, NULL, NULL, dy, x, w, mean, rstd, &d);
      assert_true(nn_close("bn dx (frozen bias)", gx2, dx, nx, TOL));
      free(gx2);
      free(out), free(gx), free(gw), free(gb), free(mean), free(rstd), free(run_m), free(run_v);
    }
    free(cfg), free(x), free(w), free(b), free(rm0), free(rv0), free(y), free(rm), free(rv);
    free(dy), free(dx), free(dw), free(db);
  }
}

static void test_instnorm_torch(void **state) {
  int64_t *cfg = nn_get_i64("in0", "cfg", NULL), nx;
  int N = (int)cfg[0], C = (int)cfg[1], HW = (int)(cfg[2] * cfg[3]);
  float *x = nn_get("in0", "x", &nx), *w = nn_get("in0", "w", NULL), *b = nn_get("in0", "b", NULL);
  float *y = nn_get("in0", "y", NULL), *dy = nn_get("in0", "dy", NULL), *dx = nn_get("in0", "dx", NULL);
  float *dw = nn_get("in0", "dw", NULL), *db = nn_get("in0", "db", NULL);
  for (int impl = 0; impl < 2; impl++) {
    float *out = nn_zeros(nx), *gx = nn_zeros(nx), *gw = nn_zeros(C), *gb = nn_zeros(C);
    float *mean = nn_zeros(N * C), *rstd = nn_zeros(N * C);
    if (impl == 0) {
      slr_instnorm_forward(out, mean, rstd, x, w, b, N, C, HW, 1e-5f);
      slr_instnorm_backward(gx, gw, gb, dy, x, w, mean, rstd, N, C, HW);
    } else {
      slr_ref_instnorm_forward(out, mean, rstd, x, w, b, N, C, HW, 1e-5f);
      slr_ref_instnorm_backward(gx, gw, gb, dy, x, w, mean, rstd, N, C, HW);
    }
    assert_true(nn_close("instnorm y", out, y, nx, TOL));
    assert_true(nn_close("instnorm dx", gx, dx, nx, TOL));
    assert_true(nn_close("instnorm dw", gw, dw, C, TOL));
    assert_true(nn_close("instnorm db", gb, db, C, TOL));
    free(out), free(gx), free(gw), free(gb), free(mean), free(rstd);
  }
  free(cfg), free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db);
}

static void test_relu_pool_torch(void **state) {
  int64_t n, ny;
  float *x = nn_get("relu0", "x", &n), *y = nn_get("relu0", "y", NULL);
  float *dy = nn_get("relu0", "dy", NULL), *dx = nn_get("relu0", "dx", NULL);
  for (int impl = 0; impl < 2; impl++) {
    float *out = nn_zeros(n), *gx = nn_zeros(n);
    if (impl == 0) slr_relu_forward(out, x, n), slr_relu_backward(gx, dy, out, n);
    else slr_ref_relu_forward(out, x, n), slr_ref_relu_backward(gx, dy, out, n);
    assert_true(nn_close("relu y", out, y, n, TOL));
    assert_true(nn_close("relu dx", gx, dx, n, TOL));
    free(out), free(gx);
  }
  free(x), free(y), free(dy), free(dx);

  for (int t = 0; t < 3; t++) {
    char cs[32];
    snprintf(cs, sizeof cs, "maxpool%d", t);
    int64_t *c = nn_get_i64(cs, "cfg", NULL);
    slr_pool_dims d = {(int)c[0], (int)c[1], (int)c[2], (int)c[3], (int)c[4], (int)c[5], (int)c[6]};
    x = nn_get(cs, "x", &n), y = nn_get(cs, "y", &ny);
    dy = nn_get(cs, "dy", NULL), dx = nn_get(cs, "dx", NULL);
    assert_int_equal(ny, (int64_t)d.N * d.C * slr_pool_oh(&d) * slr_pool_ow(&d));
    for (int impl = 0; impl < 2; impl++) {
      float *out = nn_zeros(ny), *gx = nn_zeros(n);
      int32_t *am = calloc((size_t)ny, sizeof(int32_t));
      if (impl == 0) slr_maxpool_forward(out, am, x, &d), slr_maxpool_backward(gx, dy, am, &d);
      else slr_ref_maxpool_forward(out, x, &d), slr_ref_maxpool_backward(gx, dy, x, &d);
      assert_true(nn_close(cs, out, y, ny, TOL));
      assert_true(nn_close("maxpool dx", gx, dx, n, TOL));
      free(out), free(gx), free(am);
    }
    free(c), free(x), free(y), free(dy), free(dx);
  }

  int64_t *c = nn_get_i64("avgpool0", "cfg", NULL);
  int N = (int)c[0], C = (int)c[1], HW = (int)(c[2] * c[3]);
  x = nn_get("avgpool0", "x", &n), y = nn_get("avgpool0", "y", &ny);
  dy = nn_get("avgpool0", "dy", NULL), dx = nn_get("avgpool0", "dx", NULL);
  for (int impl = 0; impl < 2; impl++) {
    float *out = nn_zeros(ny), *gx = nn_zeros(n);
    if (impl == 0) slr_avgpool_forward(out, x, N, C, HW), slr_avgpool_backward(gx, dy, N, C, HW);
    else slr_ref_avgpool_forward(out, x, N, C, HW), slr_ref_avgpool_backward(gx, dy, N, C, HW);
    assert_true(nn_close("avgpool y", out, y, ny, TOL));
    assert_true(nn_close("avgpool dx", gx, dx, n, TOL));
    free(out), free(gx);
  }
  free(c), free(x), free(y), free(dy), free(dx);

  for (int t = 0; t < 2; t++) {
    char cs[32];
    snprintf(cs, sizeof cs, "gem%d", t);
    c = nn_get_i64(cs, "cfg", NULL);
    N = (int)c[0], C = (int)c[1], HW = (int)(c[2] * c[3]);
    x = nn_get(cs, "x", &n), y = nn_get(cs, "y", &ny);
    dy = nn_get(cs, "dy", NULL), dx = nn_get(cs, "dx", NULL);
    float *p = nn_get(cs, "p0", NULL), *dp = nn_get(cs, "dp", NULL);
    for (int impl = 0; impl < 2; impl++) {
      float *out = nn_zeros(ny), *gx = nn_zeros(n), gp = 0;
      if (impl == 0) {
        slr_gem_forward(out, x, p[0], 1e-6f, N, C, HW);
        slr_gem_backward(gx, &gp, dy, out, x, p[0], 1e-6f, N, C, HW);
      } else {
        slr_ref_gem_forward(out, x, p[0], 1e-6f, N, C, HW);
        slr_ref_gem_backward(gx, &gp, dy, out, x, p[0], 1e-6f, N, C, HW);
      }
      assert_true(nn_close(cs, out, y, ny, TOL));
      assert_true(nn_close("gem dx", gx, dx, n, TOL));
      assert_true(nn_close("gem dp", &gp, dp, 1, TOL));
      free(out), free(gx);
    }
    free(c), free(x), free(y), free(dy), free(dx), free(p), free(dp);
  }
}

static void test_linear_l2norm_torch(void **state) {
  for (int t = 0; t < 2; t++) {
    char cs[32];
    snprintf(cs, sizeof cs, "linear%d", t);
    int64_t *c = nn_get_i64(cs, "cfg", NULL), nx, nw, ny;
    int N = (int)c[0], I = (int)c[1], O = (int)c[2], hb = (int)c[3];
    float *x = nn_get(cs, "x", &nx), *w = nn_get(cs, "w", &nw), *y = nn_get(cs, "y", &ny);
    float *dy = nn_get(cs, "dy", NULL), *dx = nn_get(cs, "dx", NULL), *dw = nn_get(cs, "dw", NULL);
    float *b = hb ? nn_get(cs, "b", NULL) : NULL, *db = hb ? nn_get(cs, "db", NULL) : NULL;
    for (int impl = 0; impl < 2; impl++) {
      float *out = nn_zeros(ny), *gx = nn_zeros(nx), *gw = nn_zeros(nw), *gb = nn_zeros(O);
      if (impl == 0) {
        slr_linear_forward(out, x, w, b, N, I, O);
        slr_linear_backward(gx, gw, hb ? gb : NULL, dy, x, w, N, I, O);
      } else {
        slr_ref_linear_forward(out, x, w, b, N, I, O);
        slr_ref_linear_backward(gx, gw, hb ? gb : NULL, dy, x, w, N, I, O);
      }
      assert_true(nn_close(cs, out, y, ny, TOL));
      assert_true(nn_close("linear dx", gx, dx, nx, TOL));
      assert_true(nn_close("linear dw", gw, dw, nw, TOL));
      if (hb) assert_true(nn_close("linear db", gb, db, O, TOL));
      free(out), free(gx), free(gw), free(gb);
    }
    free(c), free(x), free(w), free(y), free(dy), free(dx), free(dw), free(b), free(db);
  }
  int64_t *c = nn_get_i64("l2norm0", "cfg", NULL), n;
  int N = (int)c[0], D = (int)c[1];
  float *x = nn_get("l2norm0", "x", &n), *y = nn_get("l2norm0", "y", NULL);
  float *dy = nn_get("l2norm0", "dy", NULL), *dx = nn_get("l2norm0", "dx", NULL);
  for (int impl = 0; impl < 2; impl++) {
    float *out = nn_zeros(n), *gx = nn_zeros(n), *nr = nn_zeros(N);
    if (impl == 0) {
      slr_l2norm_forward(out, nr, x, N, D, 1e-12f);
      slr_l2norm_backward(gx, dy, out, nr, N, D, 1e-12f);
    } else {
      slr_ref_l2norm_forward(out, nr, x, N, D, 1e-12f);
      slr_ref_l2norm_backward(gx, dy, out, nr, N, D, 1e-12f);
    }
    assert_true(nn_close("l2norm y", out, y, n, TOL));
    assert_true(nn_close("l2norm dx", gx, dx, n, TOL));
    free(out), free(gx), free(nr);
  }
  free(c), free(x), free(y), free(dy), free(dx);
}

/* ---- finite differences on the double reference kernels ---------------------------- */

typedef struct {
  slr_conv2d_dims d;
  double *x, *w, *b, *dy, *y;
  int64_t ny;
} conv_ctx;
static double conv_obj(void *p) {
  conv_ctx *c = p;
  slr_ref64_conv2d_forward(c->y, c->x, c->w, c->b, &c->d);
  return nn_dot64(c->y, c->dy, c->ny);
}

static void test_conv2d_fd(void **state) {
  slr_conv2d_dims ds[] = {{2, 3, 6, 5, 4, 3, 3, 2, 1}, {1, 2, 5, 4, 3, 2, 3, 1, 0}};
  for (int t = 0; t < 2; t++) {
    conv_ctx c = {.d = ds[t]};
    slr_conv2d_dims *d = &c.d;
    int64_t nx = (int64_t)d->N * d->C * d->H * d->W, nw = (int64_t)d->OC * d->C * d->KH * d->KW;
    c.ny = (int64_t)d->N * d->OC * slr_conv2d_oh(d) * slr_conv2d_ow(d);
    c.x = nn_rand64(nx, 1, 1, 0), c.w = nn_rand64(nw, 2, 0.5, 0), c.b = nn_rand64(d->OC, 3, 1, 0);
    c.dy = nn_rand64(c.ny, 4, 1, 0), c.y = nn_rand64(c.ny, 5, 0, 0);
    double *gx = nn_rand64(nx, 0, 0, 0), *gw = nn_rand64(nw, 0, 0, 0), *gb = nn_rand64(d->OC, 0, 0, 0);
    slr_ref64_conv2d_backward(gx, gw, gb, c.dy, c.x, c.w, d);
    assert_true(nn_fd_check("conv dx", c.x, gx, nx, conv_obj, &c, 1e-6, 1e-7));
    assert_true(nn_fd_check("conv dw", c.w, gw, nw, conv_obj, &c, 1e-6, 1e-7));
    assert_true(nn_fd_check("conv db", c.b, gb, d->OC, conv_obj, &c, 1e-6, 1e-7));
    free(c.x), free(c.w), free(c.b), free(c.dy), free(c.y), free(gx), free(gw), free(gb);
  }
}

typedef struct {
  slr_bn_dims d;
  double *x, *w, *b, *dy, *y, *mean, *rstd, *rm, *rv;
  int64_t n;
  int inst;
} bn_ctx;
static double bn_obj(void *p) {
  bn_ctx *c = p;
  if (c->inst)
    slr_ref64_instnorm_forward(c->y, c->mean, c->rstd, c->x, c->w, c->b, c->d.N, c->d.C, c->d.HW, 1e-5);
  else
    slr_ref64_batchnorm_forward(c->y, c->mean, c->rstd, c->x, c->w, c->b, c->rm, c->rv, NULL, &c->d);
  return nn_dot64(c->y, c->dy, c->n);
}

static void test_norm_fd(void **state) {
  /* batchnorm training, evaluation, 1d, and instance norm */
  int cases[][5] = {{3, 4, 5, 1, 0}, {3, 4, 5, 0, 0}, {6, 3, 1, 1, 0}, {2, 3, 7, 1, 1}};
  for (int t = 0; t < 4; t++) {
    bn_ctx c = {.d = {cases[t][0], cases[t][1], cases[t][2], 1e-5f, 0.1f, cases[t][3], MPI_COMM_NULL, 0}};
    c.inst = cases[t][4];
    int C = c.d.C, N = c.d.N;
    c.n = (int64_t)N * C * c.d.HW;
    c.x = nn_rand64(c.n, 11, 2, 0.5), c.w = nn_rand64(C, 12, 1, 0), c.b = nn_rand64(C, 13, 1, 0);
    c.dy = nn_rand64(c.n, 14, 1, 0), c.y = nn_rand64(c.n, 0, 0, 0);
    c.mean = nn_rand64(N * C, 0, 0, 0), c.rstd = nn_rand64(N * C, 0, 0, 0);
    /* evaluation mode reads the running statistics; training leaves them (NULL) */
    c.rm = c.d.training ? NULL : nn_rand64(C, 15, 1, 0);
    c.rv = c.d.training ? NULL : nn_rand64(C, 16, 0.1, 1);
    double *gx = nn_rand64(c.n, 0, 0, 0), *gw = nn_rand64(C, 0, 0, 0), *gb = nn_rand64(C, 0, 0, 0);
    bn_obj(&c);
    if (c.inst)
      slr_ref64_instnorm_backward(gx, gw, gb, c.dy, c.x, c.w, c.mean, c.rstd, N, C, c.d.HW);
    else
      slr_ref64_batchnorm_backward(gx, gw, gb, c.dy, c.x, c.w, c.mean, c.rstd, &c.d);
    assert_true(nn_fd_check("norm dx", c.x, gx, c.n, bn_obj, &c, 1e-6, 1e-6));
    assert_true(nn_fd_check("norm dw", c.w, gw, C, bn_obj, &c, 1e-6, 1e-6));
    assert_true(nn_fd_check("norm db", c.b, gb, C, bn_obj, &c, 1e-6, 1e-6));
    free(c.x), free(c.w), free(c.b), free(c.dy), free(c.y), free(c.mean), free(c.rstd);
    free(c.rm), free(c.rv), free(gx), free(gw), free(gb);
  }
}

typedef struct {
  int kind; /* 0 relu, 1 maxpool, 2 avgpool, 3 gem, 4 linear, 5 l2norm */
  slr_pool_dims pd;
  int N, C, HW, IN, OUT;
  double *x, *w, *b, *p, *dy, *y, *aux;
  int64_t ny;
} pw_ctx;
static double pw_obj(void *q) {
  pw_ctx *c = q;
  switch (c->kind) {
  case 0: slr_ref64_relu_forward(c->y, c->x, c->ny); break;
  case 1: slr_ref64_maxpool_forward(c->y, c->x, &c->pd); break;
  case 2: slr_ref64_avgpool_forward(c->y, c->x, c->N, c->C, c->HW); break;
  case 3: slr_ref64_gem_forward(c->y, c->x, c->p[0], 1e-6, c->N, c->C, c->HW); break;
  case 4: slr_ref64_linear_forward(c->y, c->x, c->w, c->b, c->N, c->IN, c->OUT); break;
  default: slr_ref64_l2norm_forward(c->y, c->aux, c->x, c->N, c->IN, 1e-12); break;
  }
  return nn_dot64(c->y, c->dy, c->ny);
}

static void test_pointwise_fd(void **state) {
  for (int kind = 0; kind < 6; kind++) {
    pw_ctx c = {.kind = kind, .pd = {2, 3, 7, 6, 3, 2, 1}, .N = 2, .C = 3, .HW = 20, .IN = 5, .OUT = 4};
    int64_t nx = kind == 1 ? 2 * 3 * 7 * 6 : kind >= 4 ? (int64_t)c.N * c.IN : (int64_t)c.N * c.C * c.HW;
    c.ny = kind == 0 ? nx : kind == 1 ? 2 * 3 * slr_pool_oh(&c.pd) * slr_pool_ow(&c.pd)
         : kind == 4 ? (int64_t)c.N * c.OUT : kind == 5 ? nx : (int64_t)c.N * c.C;
    /* GeM inputs stay well above the clamp; ReLU inputs away from 0 */
    c.x = kind == 3 ? nn_rand64(nx, 21, 0.3, 1.5) : nn_rand64(nx, 21, 1, 0);
    if (kind == 0)
      for (int64_t i = 0; i < nx; i++) c.x[i] += c.x[i] > 0 ? 0.05 : -0.05;
    c.w = nn_rand64(c.IN * c.OUT, 22, 1, 0), c.b = nn_rand64(c.OUT, 23, 1, 0);
    c.p = nn_rand64(1, 24, 0, 2.7);
    c.dy = nn_rand64(c.ny, 25, 1, 0), c.y = nn_rand64(c.ny, 0, 0, 0), c.aux = nn_rand64(c.N, 0, 0, 0);
    double *gx = nn_rand64(nx, 0, 0, 0), *gw = nn_rand64(c.IN * c.OUT, 0, 0, 0);
    double *gb = nn_rand64(c.OUT, 0, 0, 0), gp = 0;
    pw_obj(&c);
    switch (kind) {
    case 0: slr_ref64_relu_backward(gx, c.dy, c.y, nx); break;
    case 1: slr_ref64_maxpool_backward(gx, c.dy, c.x, &c.pd); break;
    case 2: slr_ref64_avgpool_backward(gx, c.dy, c.N, c.C, c.HW); break;
    case 3: slr_ref64_gem_backward(gx, &gp, c.dy, c.y, c.x, c.p[0], 1e-6, c.N, c.C, c.HW); break;
    case 4: slr_ref64_linear_backward(gx, gw, gb, c.dy, c.x, c.w, c.N, c.IN, c.OUT); break;
    default: slr_ref64_l2norm_backward(gx, c.dy, c.y, c.aux, c.N, c.IN, 1e-12); break;
    }
    char what[32];
    snprintf(what, sizeof what, "kind %d dx", kind);
    assert_true(nn_fd_check(what, c.x, gx, nx, pw_obj, &c, 1e-6, 1e-6));
    if (kind == 3) assert_true(nn_fd_check("gem dp", c.p, &gp, 1, pw_obj, &c, 1e-6, 1e-6));
    if (kind == 4) {
      assert_true(nn_fd_check("linear dw", c.w, gw, c.IN * c.OUT, pw_obj, &c, 1e-6, 1e-6));
      assert_true(nn_fd_check("linear db", c.b, gb, c.OUT, pw_obj, &c, 1e-6, 1e-6));
    }
    free(c.x), free(c.w), free(c.b), free(c.p), free(c.dy), free(c.y), free(c.aux);
    free(gx), free(gw), free(gb);
  }
}

/* the optimised conv2d on shapes larger than the fixtures, against the
 * reference, with one thread and with the images shared by three threads
 * (private weight gradients summed at the end) */
static void test_conv2d_vs_ref(void **state) {
  slr_conv2d_dims ds[] = {{3, 16, 17, 9, 24, 3, 3, 1, 1}, {2, 32, 16, 8, 16, 1, 1, 2, 0},
                          {2, 8, 21, 15, 12, 7, 7, 2, 3}, {5, 16, 8, 6, 12, 1, 1, 1, 0}};
  for (int t = 0; t < 8; t++) {
    slr_threads_set(t < 4 ? 1 : 3, 1);
    slr_conv2d_dims *d = &ds[t % 4];
    int64_t nx = (int64_t)d->N * d->C * d->H * d->W, nw = (int64_t)d->OC * d->C * d->KH * d->KW;
    int64_t ny = (int64_t)d->N * d->OC * slr_conv2d_oh(d) * slr_conv2d_ow(d);
    float *x = nn_zeros(nx), *w = nn_zeros(nw), *b = nn_zeros(d->OC), *dy = nn_zeros(ny);
    slr_rng r;
    slr_rng_init(&r, 5, (uint64_t)t, 0);
    for (int64_t i = 0; i < nx; i++) x[i] = slr_rng_normal(&r);
    for (int64_t i = 0; i < nw; i++) w[i] = 0.2f * slr_rng_normal(&r);
    for (int i = 0; i < d->OC; i++) b[i] = slr_rng_normal(&r);
    for (int64_t i = 0; i < ny; i++) dy[i] = slr_rng_normal(&r);
    float *y1 = nn_zeros(ny), *y2 = nn_zeros(ny), *gx1 = nn_zeros(nx), *gx2 = nn_zeros(nx);
    float *gw1 = nn_zeros(nw), *gw2 = nn_zeros(nw), *gb1 = nn_zeros(d->OC), *gb2 = nn_zeros(d->OC);
    float *scratch = nn_zeros((int64_t)slr_conv2d_scratch(d));
    slr_conv2d_forward(y1, x, w, b, d, scratch);
    slr_conv2d_backward(gx1, gw1, gb1, dy, x, w, d, scratch);
    slr_ref_conv2d_forward(y2, x, w, b, d);
    slr_ref_conv2d_backward(gx2, gw2, gb2, dy, x, w, d);
    assert_true(nn_close("conv y vs ref", y1, y2, ny, 1e-5));
    assert_true(nn_close("conv dx vs ref", gx1, gx2, nx, 1e-5));
    assert_true(nn_close("conv dw vs ref", gw1, gw2, nw, 1e-5));
    assert_true(nn_close("conv db vs ref", gb1, gb2, d->OC, 1e-5));
    free(x), free(w), free(b), free(dy), free(y1), free(y2), free(gx1), free(gx2);
    free(gw1), free(gw2), free(gb1), free(gb2), free(scratch);
  }
  slr_threads_set(1, 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_conv2d_torch),        cmocka_unit_test(test_batchnorm_torch),
    cmocka_unit_test(test_instnorm_torch),      cmocka_unit_test(test_relu_pool_torch),
    cmocka_unit_test(test_linear_l2norm_torch), cmocka_unit_test(test_conv2d_fd),
    cmocka_unit_test(test_norm_fd),             cmocka_unit_test(test_pointwise_fd),
    cmocka_unit_test(test_conv2d_vs_ref),
};
NN_TEST_MAIN(tests, "layers.h5")
