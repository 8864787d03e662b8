// ranks: 1 2
/* nn data parallel: a global batch split over the ranks with SyncBN and
 * bucketed gradient averaging (overlapped with backward, or after it)
 * gives the gradients, running statistics and updated parameters of the
 * whole batch on one rank. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/dist.h"
#include "slr/nn.h"
#include "slr_test.h"

enum { G = 8, K = 4, H = 64, W = 32 };

static void config(slr_model_config *cfg) {
  slr_model_config_default(cfg, SLR_ARCH_RESNET18);
  cfg->width = 4, cfg->last_stride = 1, cfg->pool = SLR_POOL_GEM, cfg->neck = 1;
  cfg->num_classes = K;
}

/* cross-entropy (smoothing 0.1) step on rows [r0, r0+n) of the batch */
static int step(slr_model *m, slr_dp *dp, const float *x, const int32_t *lab, int r0, int n,
                MPI_Comm bn_comm, float *loss) {
  float probs[G * K], dlog[G * K];
  memset(dlog, 0, sizeof dlog);
  slr_model_zero_grad(m);
  int rc = slr_model_forward(m, x + (int64_t)r0 * 3 * H * W, n, 1, bn_comm);
  if (rc) return rc;
  *loss = slr_xent_forward(probs, slr_model_logits(m), lab + r0, NULL, n, K, 0.1f);
  slr_xent_backward(dlog, probs, lab + r0, NULL, n, K, 0.1f, 1.0f);
  return dp ? slr_dp_backward(dp, NULL, NULL, dlog) : slr_model_backward(m, NULL, NULL, dlog);
}

static int close_rel(const float *a, const float *b, int64_t n, double tol, double floor) {
  double sc = floor, e = 0;
  for (int64_t i = 0; i < n; i++) sc = fmax(sc, fabs(b[i]));
  for (int64_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - b[i]));
  if (e > tol * sc) fprintf(stderr, "max error %.3g, scale %.3g\n", e, sc);
  return e <= tol * sc;
}

static void run_case(int overlap, int64_t bucket) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  /* the same images and labels on every rank */
  float *x = malloc(sizeof(float) * G * 3 * H * W);
  int32_t lab[G];
  slr_rng r;
  slr_rng_init(&r, 42, 1, 0);
  for (int64_t i = 0; i < (int64_t)G * 3 * H * W; i++) x[i] = slr_rng_normal(&r);
  for (int i = 0; i < G; i++) lab[i] = i % K;

  slr_model_config cfg;
  config(&cfg);
  /* reference: the whole batch on this rank alone, from rank 0's initial weights */
  slr_model ref, dm;
  assert_all(slr_model_init(&ref, &cfg, 100) == 0);
  assert_all(slr_model_plan(&ref, G, H, W, 1) == 0);
  /* distributed: different initial weights per rank until the broadcast */
  assert_all(slr_model_init(&dm, &cfg, 100 + (uint64_t)rank) == 0);
  slr_dp dp;
  assert_all(slr_dp_init(&dp, &dm, MPI_COMM_WORLD, bucket, overlap) == 0);
  assert_all(slr_dp_broadcast(&dp) == 0);
  assert_all(memcmp(dm.params, ref.params, sizeof(float) * (size_t)ref.nparams) == 0);
  int64_t row0, nrows;
  slr_shard_rows(G, rank, size, &row0, &nrows);
  assert_all(slr_model_plan(&dm, (int)nrows, H, W, 1) == 0);

  slr_param_group *groups;
  int ng;
  assert_all(slr_model_param_groups(&ref, &groups, &ng) == 0);
  slr_optimizer o1, o2;
  slr_optimizer_init(&o1, SLR_OPT_SGD, 5e-4f);
  slr_optimizer_init(&o2, SLR_OPT_SGD, 5e-4f);
  float *s1 = calloc((size_t)ref.nparams, sizeof(float));
  float *s2 = calloc((size_t)ref.nparams, sizeof(float));
  for (int it = 0; it < 2; it++) {
    float l1, l2;
    assert_all(step(&ref, NULL, x, lab, 0, G, MPI_COMM_NULL, &l1) == 0);
    assert_all(step(&dm, &dp, x, lab, (int)row0, (int)nrows, MPI_COMM_WORLD, &l2) == 0);
    /* the global loss is the mean of the ranks' losses (equal shares) */
    float lsum = 0;
    MPI_Allreduce(&l2, &lsum, 1, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    assert_all(fabsf(lsum / size - l1) <= 1e-5f * fabsf(l1));
    assert_all(close_rel(dm.grads, ref.grads, ref.nparams, 1e-4, 1e-6));
    slr_optimizer_step(&o1, ref.params, ref.grads, s1, ref.nparams, groups, ng, 0.05f);
    slr_optimizer_step(&o2, dm.params, dm.grads, s2, dm.nparams, groups, ng, 0.05f);
  }
  assert_all(close_rel(dm.params, ref.params, ref.nparams, 1e-4, 1e-2));
  assert_all(close_rel(dm.buffers, ref.buffers, ref.nbuffers, 1e-4, 1e-2));
  assert_all(memcmp(dm.counts, ref.counts, sizeof(int64_t) * (size_t)ref.ncounts) == 0);
  /* every rank ends with the same parameters */
  float *p0 = malloc(sizeof(float) * (size_t)dm.nparams);
  memcpy(p0, dm.params, sizeof(float) * (size_t)dm.nparams);
  MPI_Bcast(p0, (int)dm.nparams, MPI_FLOAT, 0, MPI_COMM_WORLD);
  assert_all(memcmp(p0, dm.params, sizeof(float) * (size_t)dm.nparams) == 0);
  free(p0), free(s1), free(s2), free(groups), free(x);
  slr_dp_free(&dp);
  slr_model_free(&ref), slr_model_free(&dm);
}

static void test_dp_overlapped_small_buckets(void **state) { run_case(1, 1000); }
static void test_dp_after_backward(void **state) { run_case(0, 0); }

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dp_overlapped_small_buckets),
      cmocka_unit_test(test_dp_after_backward),
  };
  return slr_test_main_mpi(&argc, &argv, __FILE__, tests, sizeof tests / sizeof tests[0]);
}
