/* nn models: full-width torchvision structure and state_dict names, narrow
 * resnet50 / resnet50_ibn_a evaluation from weight files converted by
 * tools/torch2h5.py against PyTorch, weight-file errors and round trip, and
 * three Adam steps of a narrow resnet18 in training mode against PyTorch
 * (fixtures from tools/ref/nn_resnet.py). */
#include "nn_check.h"

#define TOL 1e-4

static void fixture_path(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/nn/%s", SLR_FIXTURE_DIR, name);
}

static void check_names(const char *group, slr_arch arch, int last_stride, slr_pool_kind pool,
                        int neck, int classes) {
  slr_model_config cfg;
  slr_model_config_default(&cfg, arch);
  cfg.last_stride = last_stride, cfg.pool = pool, cfg.neck = neck, cfg.num_classes = classes;
  slr_model m;
  assert_int_equal(slr_model_init(&m, &cfg, 1), 0);
  char key[128];
  snprintf(key, sizeof key, "/%s/keys", group);
  int nd = 0;
  int64_t dims[SLR_H5_MAXDIMS];
  assert_int_equal(slr_h5_shape(&nn_fx, key, &nd, dims, NULL), 0);
  char **names = NULL;
  assert_int_equal(slr_h5_read_strings(&nn_fx, key, 0, dims[0], &names), 0);
  int64_t *shapes = nn_get_i64(group, "shapes", NULL);
  if (dims[0] != m.ntensors)
    fprintf(stderr, "%s: %lld keys, the model has %d\n", group, (long long)dims[0], m.ntensors);
  assert_int_equal(dims[0], m.ntensors);
  for (int i = 0; i < m.ntensors; i++) {
    const slr_tensor *t = &m.tensors[i];
    if (strcmp(names[i], t->name)) fprintf(stderr, "%s key %d: %s vs %s\n", group, i, names[i], t->name);
    assert_string_equal(names[i], t->name);
    assert_int_equal(shapes[i * 5], t->ndims);
    for (int k = 0; k < t->ndims; k++) assert_int_equal(shapes[i * 5 + 1 + k], t->shape[k]);
  }
  free(names), free(shapes);
  slr_model_free(&m);
}

static void test_full_width_names(void **state) {
  nn_fixture_open("names.h5");
  check_names("resnet50", SLR_ARCH_RESNET50, 1, SLR_POOL_GEM, 1, 0);
  check_names("resnet18", SLR_ARCH_RESNET18, 2, SLR_POOL_AVG, 0, 0);
  check_names("resnet34", SLR_ARCH_RESNET34, 2, SLR_POOL_GEM, 1, 751);
  check_names("resnet50_ibn_a", SLR_ARCH_RESNET50_IBN_A, 1, SLR_POOL_AVG, 1, 0);
  nn_fixture_close();
  /* the parameter count of torchvision's resnet50 without fc: 23,508,032 */
  slr_model_config cfg;
  slr_model_config_default(&cfg, SLR_ARCH_RESNET50);
  slr_model m;
  assert_int_equal(slr_model_init(&m, &cfg, 1), 0);
  assert_int_equal(m.nparams, 23508032);
  assert_int_equal(m.feat_dim, 2048);
  slr_model_free(&m);
}

static void eval_case(slr_arch arch, const char *weights, const char *eval) {
  slr_model_config cfg;
  slr_model_config_default(&cfg, arch);
  cfg.width = 4, cfg.last_stride = 1, cfg.pool = SLR_POOL_GEM, cfg.neck = 1;
  slr_model m;
  assert_int_equal(slr_model_init(&m, &cfg, 1), 0);
  char path[1024];
  fixture_path(path, sizeof path, weights);
  int rc = slr_model_load(&m, MPI_COMM_SELF, path, 0);
  if (rc) fprintf(stderr, "%s\n", slr_error_message());
  assert_int_equal(rc, 0);
  assert_int_equal(m.counts[0], 7);
  nn_fixture_open(eval);
  int64_t n;
  float *x = nn_get("", "images", &n), *pooled = nn_get("", "pooled", NULL);
  float *neck = nn_get("", "neck", NULL), *normd = nn_get("", "normalized", NULL);
  nn_fixture_close();
  int N = 3, D = m.feat_dim;
  assert_int_equal(D, 128);
  assert_int_equal(slr_model_plan(&m, N, 64, 32, 0), 0);
  assert_int_equal(slr_model_forward(&m, x, N, 0, MPI_COMM_NULL), 0);
  assert_true(nn_close("pooled", slr_model_pooled(&m), pooled, (int64_t)N * D, TOL));
  assert_true(nn_close("neck", slr_model_neck(&m), neck, (int64_t)N * D, TOL));
  float *out = nn_zeros((int64_t)N * D), nr[3];
  slr_l2norm_forward(out, nr, slr_model_neck(&m), N, D, 1e-12f);
  assert_true(nn_close("normalized", out, normd, (int64_t)N * D, TOL));
  /* evaluation leaves the running statistics alone */
  assert_int_equal(m.counts[0], 7);
  /* two threads after the plan: the scratch is resized, the result is the same */
  slr_threads_set(2, 1);
  assert_int_equal(slr_model_forward(&m, x, N, 0, MPI_COMM_NULL), 0);
  slr_threads_set(1, 1);
  assert_true(nn_close("pooled, 2 threads", slr_model_pooled(&m), pooled, (int64_t)N * D, TOL));
  free(out), free(x), free(pooled), free(neck), free(normd);
  slr_model_free(&m);
}

static void test_resnet50_eval(void **state) {
  eval_case(SLR_ARCH_RESNET50, "r50_weights.h5", "r50_eval.h5");
}

static void test_resnet50_ibn_a_eval(void **state) {
  eval_case(SLR_ARCH_RESNET50_IBN_A, "ibn_weights.h5", "ibn_eval.h5");
}

static void test_weight_errors_and_roundtrip(void **state) {
  char path[1024];
  fixture_path(path, sizeof path, "r50_weights.h5");
  slr_model_config cfg;
  slr_model_config_default(&cfg, SLR_ARCH_RESNET50);
  cfg.width = 8, cfg.last_stride = 1, cfg.pool = SLR_POOL_GEM, cfg.neck = 1;
  slr_model m;
  /* wrong width: the first key has another shape; the message names both */
  assert_int_equal(slr_model_init(&m, &cfg, 1), 0);
  assert_int_not_equal(slr_model_load(&m, MPI_COMM_SELF, path, 0), 0);
  const char *msg = slr_error_message();
  assert_non_null(strstr(msg, "conv1.weight"));
  assert_non_null(strstr(msg, "(4, 3, 7, 7)"));
  assert_non_null(strstr(msg, "(8, 3, 7, 7)"));
  slr_model_free(&m);
  /* a classifier the file lacks: missing key, unless only the backbone is asked */
  cfg.width = 4, cfg.num_classes = 10;
  assert_int_equal(slr_model_init(&m, &cfg, 1), 0);
  assert_int_not_equal(slr_model_load(&m, MPI_COMM_SELF, path, 0), 0);
  assert_non_null(strstr(slr_error_message(), "classifier.weight"));
  assert_non_null(strstr(slr_error_message(), "missing"));
  assert_int_equal(slr_model_load(&m, MPI_COMM_SELF, path, SLR_LOAD_BACKBONE_ONLY), 0);
  /* save and load back: identical tensors */
  char *dir = slr_test_tmpdir(0), out[1024];
  snprintf(out, sizeof out, "%s/w.h5", dir);
  assert_int_equal(slr_model_save(&m, MPI_COMM_SELF, out), 0);
  slr_model m2;
  assert_int_equal(slr_model_init(&m2, &cfg, 2), 0);
  assert_int_equal(slr_model_load(&m2, MPI_COMM_SELF, out, 0), 0);
  assert_memory_equal(m.params, m2.params, sizeof(float) * (size_t)m.nparams);
  assert_memory_equal(m.buffers, m2.buffers, sizeof(float) * (size_t)m.nbuffers);
  assert_memory_equal(m.counts, m2.counts, sizeof(int64_t) * (size_t)m.ncounts);
  slr_model_free(&m), slr_model_free(&m2);
  slr_test_rmtree(dir);
  free(dir);
}

static void test_resnet18_adam_steps(void **state) {
  slr_model_config cfg;
  slr_model_config_default(&cfg, SLR_ARCH_RESNET18);
  cfg.width = 4, cfg.last_stride = 2, cfg.pool = SLR_POOL_GEM, cfg.neck = 1, cfg.num_classes = 5;
  slr_model m;
  assert_int_equal(slr_model_init(&m, &cfg, 1), 0);
  char path[1024];
  fixture_path(path, sizeof path, "r18_weights.h5");
  assert_int_equal(slr_model_load(&m, MPI_COMM_SELF, path, 0), 0);
  nn_fixture_open("r18_train.h5");
  int64_t n;
  float *x = nn_get("", "images", &n);
  int32_t *labels = nn_get_i32("", "labels", NULL);
  double *losses = nn_get_f64("", "losses", NULL);
  const int N = 6, K = 5, D = m.feat_dim;
  assert_int_equal(slr_model_plan(&m, N, 64, 32, 1), 0);
  slr_optimizer opt;
  slr_optimizer_init(&opt, SLR_OPT_ADAM, 5e-4f);
  /* eps 1e-2 as in the fixture: Adam's update then depends smoothly on the
   * gradient, so float32 rounding of near-zero gradients stays small */
  opt.eps = 1e-2f;
  slr_param_group *groups;
  int ng;
  assert_int_equal(slr_model_param_groups(&m, &groups, &ng), 0);
  float *ostate = nn_zeros(2 * m.nparams), *probs = nn_zeros(N * K), *dlogits = nn_zeros(N * K);
  float *dpooled = nn_zeros((int64_t)N * D), dap[6], dan[6];
  int32_t pos[6], neg[6];
  for (int step = 0; step < 3; step++) {
    slr_model_zero_grad(&m);
    assert_int_equal(slr_model_forward(&m, x, N, 1, MPI_COMM_NULL), 0);
    float l1 = slr_xent_forward(probs, slr_model_logits(&m), labels, NULL, N, K, 0.1f);
    float l2 = slr_triplet_forward(slr_model_pooled(&m), labels, N, D, 0.3f, pos, neg, dap, dan);
    float loss = l1 + l2, want = (float)losses[step];
    assert_true(nn_close("loss", &loss, &want, 1, TOL));
    memset(dlogits, 0, sizeof(float) * N * K);
    memset(dpooled, 0, sizeof(float) * (size_t)N * D);
    slr_xent_backward(dlogits, probs, labels, NULL, N, K, 0.1f, 1.0f);
    slr_triplet_backward(dpooled, slr_model_pooled(&m), N, D, 0.3f, pos, neg, dap, dan, 1.0f);
    assert_int_equal(slr_model_backward(&m, dpooled, NULL, dlogits), 0);
    if (step == 0) {
      for (int i = 0; i < m.ntensors; i++) {
        const slr_tensor *t = &m.tensors[i];
        if (t->kind != SLR_TENSOR_PARAM || t->frozen) continue;
        char key[128];
        snprintf(key, sizeof key, "grad0/%s", t->name);
        float *g = nn_get("", key, NULL);
        assert_true(nn_close(key, m.grads + t->offset, g, t->numel, TOL));
        free(g);
      }
    }
    slr_optimizer_step(&opt, m.params, m.grads, ostate, m.nparams, groups, ng, 1e-3f);
  }
  for (int i = 0; i < m.ntensors; i++) {
    const slr_tensor *t = &m.tensors[i];
    char key[128];
    snprintf(key, sizeof key, "after/%s", t->name);
    if (t->kind == SLR_TENSOR_COUNT) {
      int64_t *c = nn_get_i64("", key, NULL);
      assert_int_equal(c[0], m.counts[t->offset]);
      assert_int_equal(c[0], 3);
      free(c);
      continue;
    }
    float *v = nn_get("", key, NULL);
    const float *mine = (t->kind == SLR_TENSOR_PARAM ? m.params : m.buffers) + t->offset;
    /* tensors that start at 0 (BN biases) are a few lr-sized steps from 0
     * after three steps: their scale is taken as at least 0.01 */
    assert_true(nn_close_floor(key, mine, v, t->numel, TOL, 0.01));
    free(v);
  }
  nn_fixture_close();
  free(x), free(labels), free(losses), free(groups), free(ostate), free(probs), free(dlogits), free(dpooled);
  slr_model_free(&m);
}

/* One training forward and backward of a small ResNet-18 with the
 * convolution backend `backend`; the gradients are returned. */
static float *grads_with(const char *backend, int threads, int64_t *np) {
  setenv("SLR_CONV_BACKEND", backend, 1);
  slr_threads_set(threads, 1);
  slr_model_config cfg;
  slr_model_config_default(&cfg, SLR_ARCH_RESNET18);
  cfg.width = 8, cfg.pool = SLR_POOL_GEM, cfg.neck = 1, cfg.num_classes = 5;
  slr_model m;
  assert_int_equal(slr_model_init(&m, &cfg, 3), 0);
  const int N = 5, H = 64, W = 32;
  assert_int_equal(slr_model_plan(&m, N, H, W, 1), 0);
  float *x = nn_zeros((int64_t)N * 3 * H * W), *dlog = nn_zeros(N * 5);
  slr_rng r;
  slr_rng_init(&r, 7, 0, 0);
  for (int64_t i = 0; i < (int64_t)N * 3 * H * W; i++) x[i] = slr_rng_normal(&r);
  for (int i = 0; i < N * 5; i++) dlog[i] = slr_rng_normal(&r);
  slr_model_zero_grad(&m);
  assert_int_equal(slr_model_forward(&m, x, N, 1, MPI_COMM_NULL), 0);
  assert_int_equal(slr_model_backward(&m, NULL, NULL, dlog), 0);
  float *g = nn_zeros(m.nparams);
  memcpy(g, m.grads, sizeof(float) * (size_t)m.nparams);
  *np = m.nparams;
  slr_model_free(&m);
  free(x), free(dlog);
  unsetenv("SLR_CONV_BACKEND");
  slr_threads_set(1, 1);
  return g;
}

/* Both convolution backends give the same gradients within the fixture
 * tolerance, and each gives the same bits when run again. */
static void test_conv_backends(void **state) {
  int64_t n, n2;
  float *a = grads_with("gemm", 2, &n), *a2 = grads_with("gemm", 2, &n2);
  assert_memory_equal(a, a2, sizeof(float) * (size_t)n);
  if (!strstr(slr_nn_kernels(), "ISA")) {
    /* built without oneDNN: forcing it is a configuration error */
    setenv("SLR_CONV_BACKEND", "dnnl", 1);
    slr_model_config cfg;
    slr_model_config_default(&cfg, SLR_ARCH_RESNET18);
    slr_model m;
    assert_int_equal(slr_model_init(&m, &cfg, 3), 0);
    assert_int_equal(slr_model_plan(&m, 2, 64, 32, 0), SLR_ERR_CONFIG);
    slr_model_free(&m);
    unsetenv("SLR_CONV_BACKEND");
    free(a), free(a2);
    return;
  }
  const char *dnnl_kinds[2] = {"dnnl", "dnnl-blocked"};
  for (int k = 0; k < 2; k++) {
    float *b = grads_with(dnnl_kinds[k], 2, &n2), *b2 = grads_with(dnnl_kinds[k], 2, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(b, b2, sizeof(float) * (size_t)n);
    assert_true(nn_close_floor(dnnl_kinds[k], b, a, n, TOL, 0.01));
    free(b), free(b2);
  }
  setenv("SLR_CONV_BACKEND", "bogus", 1);
  slr_model_config cfg;
  slr_model_config_default(&cfg, SLR_ARCH_RESNET18);
  slr_model m;
  assert_int_equal(slr_model_init(&m, &cfg, 3), 0);
  assert_int_equal(slr_model_plan(&m, 2, 64, 32, 0), SLR_ERR_CONFIG);
  assert_non_null(strstr(slr_error_message(), "SLR_CONV_BACKEND"));
  slr_model_free(&m);
  unsetenv("SLR_CONV_BACKEND");
  free(a), free(a2);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_full_width_names),
    cmocka_unit_test(test_resnet50_eval),
    cmocka_unit_test(test_resnet50_ibn_a_eval),
    cmocka_unit_test(test_weight_errors_and_roundtrip),
    cmocka_unit_test(test_resnet18_adam_steps),
    cmocka_unit_test(test_conv_backends),
};
NN_TEST_MAIN(tests, NULL)
