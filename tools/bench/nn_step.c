/* Benchmark driver for the CNN engine: images per second of a ResNet
 * training step (forward, cross-entropy on the classifier, backward, Adam)
 * or of an evaluation forward pass, with the peak resident memory.
 * Built and run by tools/bench/train_step.sh.
 *
 * nn_step train|infer ARCH BATCH H W ITERS [LAST_STRIDE] [THREADS]
 *
 * With SLR_PROFILE=1 it also prints the time per kind of operation, the
 * convolutions' GFLOP/s, and their fraction of the sgemm rate measured in the
 * same run (2048^3, the same threads). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/core.h"
#include "slr/nn.h"

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (argc < 7) {
    fprintf(stderr, "usage: nn_step train|infer ARCH BATCH H W ITERS [LAST_STRIDE] [THREADS]\n");
    return 2;
  }
  int train = !strcmp(argv[1], "train"), B = atoi(argv[3]), H = atoi(argv[4]), W = atoi(argv[5]);
  int iters = atoi(argv[6]), ls = argc > 7 ? atoi(argv[7]) : 1, th = argc > 8 ? atoi(argv[8]) : 0;
  slr_threads_set(th, 1);
  slr_model_config cfg;
  slr_arch arch;
  if (slr_arch_parse(argv[2], &arch)) return 2;
  slr_model_config_default(&cfg, arch);
  cfg.last_stride = ls, cfg.pool = SLR_POOL_GEM, cfg.neck = 1, cfg.num_classes = train ? 751 : 0;
  slr_model m;
  if (slr_model_init(&m, &cfg, 1) || slr_model_plan(&m, B, H, W, train)) {
    fprintf(stderr, "%s\n", slr_error_message());
    return 1;
  }
  int K = cfg.num_classes;
  float *x = malloc(sizeof(float) * (size_t)B * 3 * H * W);
  float *probs = malloc(sizeof(float) * (size_t)B * (K + 1)), *dlog = malloc(sizeof(float) * (size_t)B * (K + 1));
  int32_t *lab = malloc(sizeof(int32_t) * (size_t)B);
  slr_rng r;
  slr_rng_init(&r, 1, 0, 0);
  for (int64_t i = 0; i < (int64_t)B * 3 * H * W; i++) x[i] = slr_rng_normal(&r);
  for (int i = 0; i < B; i++) lab[i] = i % (K > 0 ? K : 1);
  slr_optimizer opt;
  slr_optimizer_init(&opt, SLR_OPT_ADAM, 5e-4f);
  float *ost = calloc((size_t)m.nparams * 2, sizeof(float));
  slr_param_group *groups;
  int ng;
  slr_model_param_groups(&m, &groups, &ng);
  double t_fwd = 0, t_bwd = 0, t0 = 0;
  const int profile = getenv("SLR_PROFILE") && atoi(getenv("SLR_PROFILE"));
  for (int it = -1; it < iters; it++) { /* iteration -1 warms up */
    double a = slr_now();
    if (it == 0) {
      t0 = a;
      slr_model_profile_reset();
      slr_model_profile_enable(profile);
    }
    if (slr_model_forward(&m, x, B, train, MPI_COMM_NULL)) return 1;
    double b = slr_now();
    if (train) {
      memset(dlog, 0, sizeof(float) * (size_t)B * K);
      slr_xent_forward(probs, slr_model_logits(&m), lab, NULL, B, K, 0.1f);
      slr_xent_backward(dlog, probs, lab, NULL, B, K, 0.1f, 1.0f);
      slr_model_zero_grad(&m);
      if (slr_model_backward(&m, NULL, NULL, dlog)) return 1;
      slr_optimizer_step(&opt, m.params, m.grads, ost, m.nparams, groups, ng, 3.5e-4f);
    }
    if (it >= 0) t_fwd += b - a, t_bwd += slr_now() - b;
  }
  double dt = slr_now() - t0;
  printf("slr %s %s batch %d %dx%d threads %d: %.2f images/s (forward %.3f s, backward+step %.3f s "
         "per iteration), activations %.0f MiB, peak RSS %.0f MiB\n",
         argv[1], argv[2], B, H, W, slr_threads_get(), (double)B * iters / dt, t_fwd / iters,
         t_bwd / iters, slr_model_activation_bytes(&m) / 1048576.0, slr_peak_rss() / 1048576.0);
  if (profile) {
    slr_op_profile pr[16];
    int np = slr_model_profile_get(pr, 16);
    double conv_s = 0, conv_macs = 0, total = 0;
    for (int k = 0; k < np; k++) total += pr[k].fwd_s + pr[k].bwd_s;
    printf("per iteration, by kind of operation (forward / backward, ms, share of the step):\n");
    for (int k = 0; k < np; k++) {
      if (pr[k].fwd_s + pr[k].bwd_s == 0) continue;
      printf("  %-10s %9.1f %9.1f  %5.1f%%\n", pr[k].name, 1e3 * pr[k].fwd_s / iters,
             1e3 * pr[k].bwd_s / iters, 100 * (pr[k].fwd_s + pr[k].bwd_s) / total);
      if (!strcmp(pr[k].name, "conv2d")) conv_s = pr[k].fwd_s + pr[k].bwd_s, conv_macs = pr[k].fwd_macs;
    }
    /* backward of a convolution costs twice its forward (input and weight gradients) */
    double conv_flop = 2.0 * conv_macs * (train ? 3.0 : 1.0);
    int n = 2048;
    float *A = malloc(sizeof(float) * n * n), *Bm = malloc(sizeof(float) * n * n),
          *C = malloc(sizeof(float) * n * n);
    for (int64_t i = 0; i < (int64_t)n * n; i++) A[i] = Bm[i] = 1e-3f * (float)(i % 97);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, A, n, Bm, n, 0, C, n);
    double s0 = slr_now();
    for (int rep = 0; rep < 3; rep++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, A, n, Bm, n, 0, C, n);
    double gemm = 3 * 2.0 * n * (double)n * n / (slr_now() - s0);
    double conv = conv_flop / conv_s;
    printf("convolutions: %.1f GFLOP/s; sgemm 2048^3 in this run: %.1f GFLOP/s (core %s); "
           "fraction %.2f\n", conv / 1e9, gemm / 1e9, openblas_get_corename(), conv / gemm);
    free(A), free(Bm), free(C);
  }
  slr_model_free(&m);
  MPI_Finalize();
  return 0;
}
