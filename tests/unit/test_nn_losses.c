/* nn losses, optimizers and schedules against PyTorch (fixtures from
 * tools/ref/nn_losses.py), and the double reference losses by finite
 * differences. */
#include "nn_check.h"

#define TOL 1e-4

static void test_xent_torch(void **state) {
  for (int t = 0; t < 3; t++) {
    char cs[32];
    snprintf(cs, sizeof cs, "xent%d", t);
    int64_t *cfg = nn_get_i64(cs, "cfg", NULL), n;
    double *fc = nn_get_f64(cs, "fcfg", NULL);
    int N = (int)cfg[0], K = (int)cfg[1];
    float *z = nn_get(cs, "z", &n), *loss = nn_get(cs, "loss", NULL), *dz = nn_get(cs, "dz", NULL);
    int32_t *lab = t < 2 ? nn_get_i32(cs, "labels", NULL) : NULL;
    float *soft = t == 2 ? nn_get(cs, "soft", NULL) : NULL;
    float *probs = nn_zeros(n), *g = nn_zeros(n);
    float l = slr_xent_forward(probs, z, lab, soft, N, K, (float)fc[0]);
    slr_xent_backward(g, probs, lab, soft, N, K, (float)fc[0], 1.0f);
    assert_true(nn_close(cs, &l, loss, 1, TOL));
    assert_true(nn_close("xent dz", g, dz, n, TOL));
    free(cfg), free(fc), free(z), free(loss), free(dz), free(lab), free(soft), free(probs), free(g);
  }
}

static void test_triplet_torch(void **state) {
  for (int t = 0; t < 2; t++) {
    char cs[32];
    snprintf(cs, sizeof cs, "triplet%d", t);
    int64_t *cfg = nn_get_i64(cs, "cfg", NULL), n;
    double *fc = nn_get_f64(cs, "fcfg", NULL);
    int N = (int)cfg[0], D = (int)cfg[1];
    float *x = nn_get(cs, "x", &n), *loss = nn_get(cs, "loss", NULL), *dx = nn_get(cs, "dx", NULL);
    int32_t *lab = nn_get_i32(cs, "labels", NULL), pos[64], neg[64];
    float dap[64], dan[64], *g = nn_zeros(n);
    float l = slr_triplet_forward(x, lab, N, D, (float)fc[0], pos, neg, dap, dan);
    slr_triplet_backward(g, x, N, D, (float)fc[0], pos, neg, dap, dan, 1.0f);
    assert_true(nn_close(cs, &l, loss, 1, TOL));
    assert_true(nn_close("triplet dx", g, dx, n, TOL));
    free(cfg), free(fc), free(x), free(loss), free(dx), free(lab), free(g);
  }
}

static void test_cmloss_torch(void **state) {
  int64_t *cfg = nn_get_i64("cm0", "cfg", NULL), n, nm;
  double *fc = nn_get_f64("cm0", "fcfg", NULL);
  int N = (int)cfg[0], D = (int)cfg[1], K = (int)cfg[2];
  float temp = (float)fc[0], mom = (float)fc[1];
  float *x = nn_get("cm0", "x", &n), *mem = nn_get("cm0", "mem", &nm);
  float *loss = nn_get("cm0", "loss", NULL), *dx = nn_get("cm0", "dx", NULL);
  float *after = nn_get("cm0", "mem_after", NULL), *after_h = nn_get("cm0", "mem_after_hard", NULL);
  int32_t *lab = nn_get_i32("cm0", "labels", NULL);
  float *probs = nn_zeros((int64_t)N * K), *g = nn_zeros(n), *m2 = nn_zeros(nm);
  float l = slr_cmloss_forward(probs, x, mem, lab, N, D, K, temp);
  assert_int_equal(slr_cmloss_backward(g, probs, mem, lab, N, D, K, temp, 1.0f), 0);
  assert_true(nn_close("cmloss", &l, loss, 1, TOL));
  assert_true(nn_close("cmloss dx", g, dx, n, TOL));
  memcpy(m2, mem, sizeof(float) * (size_t)nm);
  slr_cmloss_update(m2, x, lab, N, D, mom, 0);
  assert_true(nn_close("memory update", m2, after, nm, TOL));
  memcpy(m2, mem, sizeof(float) * (size_t)nm);
  slr_cmloss_update(m2, x, lab, N, D, mom, 1);
  assert_true(nn_close("memory update (hard)", m2, after_h, nm, TOL));
  free(cfg), free(fc), free(x), free(mem), free(loss), free(dx), free(after), free(after_h);
  free(lab), free(probs), free(g), free(m2);
}

static void test_optimizers_torch(void **state) {
  for (int t = 0; t < 4; t++) {
    char cs[32];
    snprintf(cs, sizeof cs, "opt%d", t);
    int64_t *cfg = nn_get_i64(cs, "cfg", NULL), P;
    double *fc = nn_get_f64(cs, "fcfg", NULL);
    float *p0 = nn_get(cs, "p0", &P), *grads = nn_get(cs, "grads", NULL);
    float *after = nn_get(cs, "after", NULL);
    slr_optimizer o;
    slr_optimizer_init(&o, cfg[0] == 0 ? SLR_OPT_ADAM : SLR_OPT_SGD, (float)fc[1]);
    o.nesterov = (int)cfg[1];
    slr_param_group groups[2] = {{0, cfg[2], 1.0f, 1.0f}, {cfg[2], cfg[3], 2.0f, 1.0f}};
    float *state_buf = nn_zeros(P * slr_optimizer_state_per_param(&o));
    for (int s = 0; s < 3; s++) {
      slr_optimizer_step(&o, p0, grads + s * P, state_buf, P, groups, 2, (float)fc[0]);
      /* parameters move by about lr per step: the tolerance is a small
       * fraction of lr (below one float ulp of the values here) */
      double err = 0;
      for (int64_t i = 0; i < P; i++) err = fmax(err, fabs((double)p0[i] - after[s * P + i]));
      if (err > 1e-6 * fc[0] * 10) fprintf(stderr, "%s step %d: error %.3g\n", cs, s, err);
      assert_true(err <= 1e-6 * fc[0] * 10);
    }
    /* a frozen group (lr_mult 0) does not move */
    float keep = p0[0];
    slr_param_group frozen = {0, cfg[2], 0.0f, 1.0f};
    slr_optimizer_step(&o, p0, grads, state_buf, P, &frozen, 1, (float)fc[0]);
    assert_true(p0[0] == keep);
    free(cfg), free(fc), free(p0), free(grads), free(after), free(state_buf);
  }
}

static void test_schedules_torch(void **state) {
  const char *names[] = {"sched_step", "sched_multistep", "sched_cosine", "sched_warmup"};
  for (int t = 0; t < 4; t++) {
    int64_t nc, n;
    int64_t *cfg = nn_get_i64(names[t], "cfg", &nc);
    double *fc = nn_get_f64(names[t], "fcfg", NULL), *lr = nn_get_f64(names[t], "lr", &n);
    slr_lr_schedule s = {.base_lr = t == 3 ? fc[0] : 0.1, .gamma = 0.1};
    if (t == 0) s.kind = SLR_LR_STEP, s.step_size = cfg[0];
    if (t == 1 || t == 3) {
      s.kind = SLR_LR_MULTISTEP;
      s.nmilestones = 2;
      s.milestones[0] = cfg[0], s.milestones[1] = cfg[1];
    }
    if (t == 2) s.kind = SLR_LR_COSINE, s.t_max = cfg[0], s.eta_min = fc[1];
    if (t == 3) s.warmup_iters = cfg[2], s.warmup_factor = fc[2];
    for (int64_t e = 0; e < n; e++) {
      double got = slr_lr_at(&s, e);
      if (fabs(got - lr[e]) > 1e-9 * fabs(lr[e]) + 1e-15)
        fprintf(stderr, "%s epoch %lld: %.10g want %.10g\n", names[t], (long long)e, got, lr[e]);
      assert_true(fabs(got - lr[e]) <= 1e-9 * fabs(lr[e]) + 1e-15);
    }
    free(cfg), free(fc), free(lr);
  }
}

/* ---- finite differences ---- */

typedef struct {
  int kind; /* 0 xent labels, 1 xent soft, 2 triplet margin, 3 triplet soft margin */
  int N, K;
  double *x, *soft, *probs;
  int32_t *lab;
} loss_ctx;
static double loss_obj(void *p) {
  loss_ctx *c = p;
  int32_t pos[32], neg[32];
  double dap[32], dan[32];
  switch (c->kind) {
  case 0: return slr_ref64_xent_forward(c->probs, c->x, c->lab, NULL, c->N, c->K, 0.1);
  case 1: return slr_ref64_xent_forward(c->probs, c->x, NULL, c->soft, c->N, c->K, 0);
  case 2: return slr_ref64_triplet_forward(c->x, c->lab, c->N, c->K, 0.3, pos, neg, dap, dan);
  default: return slr_ref64_triplet_forward(c->x, c->lab, c->N, c->K, 0, pos, neg, dap, dan);
  }
}

static void test_losses_fd(void **state) {
  int32_t lab[12] = {0, 1, 2, 0, 1, 2, 3, 3, 0, 1, 2, 3};
  for (int kind = 0; kind < 4; kind++) {
    loss_ctx c = {.kind = kind, .N = 12, .K = 5, .lab = lab};
    int64_t n = (int64_t)c.N * c.K;
    c.x = nn_rand64(n, 31 + kind, 1.5, 0), c.probs = nn_rand64(n, 0, 0, 0);
    c.soft = nn_rand64(n, 40, 0, 0);
    for (int i = 0; i < c.N; i++) {
      double s = 0;
      for (int k = 0; k < c.K; k++) s += c.soft[i * c.K + k] = 1.0 + (i * 7 + k * 3) % 5;
      for (int k = 0; k < c.K; k++) c.soft[i * c.K + k] /= s;
    }
    double *g = nn_rand64(n, 0, 0, 0);
    int32_t pos[32], neg[32];
    double dap[32], dan[32];
    if (kind < 2) {
      loss_obj(&c);
      slr_ref64_xent_backward(g, c.probs, kind == 0 ? lab : NULL, kind == 1 ? c.soft : NULL, c.N,
                              c.K, kind == 0 ? 0.1 : 0.0, 1.0);
    } else {
      double m = kind == 2 ? 0.3 : 0.0;
      slr_ref64_triplet_forward(c.x, lab, c.N, c.K, m, pos, neg, dap, dan);
      slr_ref64_triplet_backward(g, c.x, c.N, c.K, m, pos, neg, dap, dan, 1.0);
    }
    char what[32];
    snprintf(what, sizeof what, "loss %d", kind);
    assert_true(nn_fd_check(what, c.x, g, n, loss_obj, &c, 1e-6, 1e-6));
    free(c.x), free(c.probs), free(c.soft), free(g);
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_xent_torch),      cmocka_unit_test(test_triplet_torch),
    cmocka_unit_test(test_cmloss_torch),    cmocka_unit_test(test_optimizers_torch),
    cmocka_unit_test(test_schedules_torch), cmocka_unit_test(test_losses_fd),
};
NN_TEST_MAIN(tests, "losses.h5")
