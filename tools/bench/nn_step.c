/* Benchmark driver for the CNN engine: images per second of a ResNet
 * training step (forward, cross-entropy on a 751-class classifier over a
 * BNNeck, backward, Adam) or of an evaluation forward pass, on 1 or more
 * ranks (data parallel: the global batch split over the ranks, SyncBN,
 * gradients averaged with slr_dp), with the peak resident memory, the
 * sgemm rate of the node measured in the same run (2048^3, all cores) and the
 * fraction of the limit it sets (step FLOP per image / sgemm rate).
 * Built by CMake (target nn_step); run by tools/bench/train_step.sh.
 *
 * mpiexec -n R nn_step train|infer ARCH BATCH H W ITERS [LAST_STRIDE] [THREADS] [WIDTH]
 *
 * SLR_PROFILE=1 also prints the time per kind of operation. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/core.h"
#include "slr/nn.h"

/* "AMD EPYC, avx512: no" from /proc/cpuinfo */
static void cpu_line(char *buf, size_t len) {
  char model[128] = "unknown", line[4096];
  int avx512 = 0, avx2 = 0;
  FILE *f = fopen("/proc/cpuinfo", "r");
  while (f && fgets(line, sizeof line, f)) {
    if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
      snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
      model[strcspn(model, "\n")] = '\0';
    }
    if (!strncmp(line, "flags", 5)) avx512 = strstr(line, " avx512f") != NULL, avx2 = strstr(line, " avx2") != NULL;
  }
  if (f) fclose(f);
  snprintf(buf, len, "%s, avx2: %s, avx512: %s", model, avx2 ? "yes" : "no", avx512 ? "yes" : "no");
}

static double sgemm_rate(void) {
  int n = 2048;
  float *A = malloc(sizeof(float) * n * n), *B = malloc(sizeof(float) * n * n),
        *C = malloc(sizeof(float) * n * n);
  for (int64_t i = 0; i < (int64_t)n * n; i++) A[i] = B[i] = 1e-3f * (float)(i % 97);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, A, n, B, n, 0, C, n);
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    double s0 = slr_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, A, n, B, n, 0, C, n);
    double r = 2.0 * n * (double)n * n / (slr_now() - s0);
    if (r > best) best = r;
  }
  free(A), free(B), free(C);
  return best;
}

static void print_profile(int iters) {
  slr_op_profile pr[16];
  int np = slr_model_profile_get(pr, 16);
  double total = 0;
  for (int k = 0; k < np; k++) total += pr[k].fwd_s + pr[k].bwd_s;
  printf("per iteration, by kind of operation (forward / backward, ms, share of the step):\n");
  for (int k = 0; k < np; k++)
    if (pr[k].fwd_s + pr[k].bwd_s > 0)
      printf("  %-10s %9.1f %9.1f  %5.1f%%\n", pr[k].name, 1e3 * pr[k].fwd_s / iters,
             1e3 * pr[k].bwd_s / iters, 100 * (pr[k].fwd_s + pr[k].bwd_s) / total);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 7) {
    fprintf(stderr, "usage: nn_step train|infer ARCH BATCH H W ITERS [LAST_STRIDE] [THREADS] [WIDTH]\n");
    return 2;
  }
  int train = !strcmp(argv[1], "train"), GB = atoi(argv[3]), H = atoi(argv[4]), W = atoi(argv[5]);
  int iters = atoi(argv[6]), ls = argc > 7 ? atoi(argv[7]) : 1, th = argc > 8 ? atoi(argv[8]) : 0;
  int width = argc > 9 ? atoi(argv[9]) : 64;
  int B = GB / size + (rank < GB % size);
  slr_threads_set(th, size);
  slr_model_config cfg;
  slr_arch arch;
  if (slr_arch_parse(argv[2], &arch)) return 2;
  slr_model_config_default(&cfg, arch);
  cfg.width = width, cfg.last_stride = ls, cfg.pool = SLR_POOL_GEM, cfg.neck = 1;
  cfg.num_classes = train ? 751 : 0;
  slr_model m;
  slr_dp dp;
  if (slr_model_init(&m, &cfg, 1) || slr_model_plan(&m, B, H, W, train) ||
      (train && slr_dp_init(&dp, &m, MPI_COMM_WORLD, 0, 1))) {
    fprintf(stderr, "%s\n", slr_error_message());
    return 1;
  }
  MPI_Comm bn = size > 1 ? MPI_COMM_WORLD : MPI_COMM_NULL;
  int K = cfg.num_classes;
  float *x = malloc(sizeof(float) * (size_t)B * 3 * H * W);
  float *probs = malloc(sizeof(float) * (size_t)B * (K + 1)), *dlog = malloc(sizeof(float) * (size_t)B * (K + 1));
  int32_t *lab = malloc(sizeof(int32_t) * (size_t)B);
  slr_rng r;
  slr_rng_init(&r, 1, (uint64_t)rank, 0);
  for (int64_t i = 0; i < (int64_t)B * 3 * H * W; i++) x[i] = slr_rng_normal(&r);
  for (int i = 0; i < B; i++) lab[i] = (rank * B + i) % (K > 0 ? K : 1);
  slr_optimizer opt;
  slr_optimizer_init(&opt, SLR_OPT_ADAM, 5e-4f);
  float *ost = calloc((size_t)m.nparams * 2, sizeof(float));
  slr_param_group *groups;
  int ng;
  slr_model_param_groups(&m, &groups, &ng);
  double t_fwd = 0, t_bwd = 0, t0 = 0;
  for (int it = -1; it < iters; it++) { /* iteration -1 warms up */
    MPI_Barrier(MPI_COMM_WORLD);
    double a = slr_now();
    if (it == 0) {
      t0 = a;
      slr_model_profile_reset();
      slr_model_profile_enable(1);
    }
    if (slr_model_forward(&m, x, B, train, train ? bn : MPI_COMM_NULL)) return 1;
    double b = slr_now();
    if (train) {
      memset(dlog, 0, sizeof(float) * (size_t)B * K);
      slr_xent_forward(probs, slr_model_logits(&m), lab, NULL, B, K, 0.1f);
      slr_xent_backward(dlog, probs, lab, NULL, B, K, 0.1f, 1.0f);
      slr_model_zero_grad(&m);
      if (slr_dp_backward(&dp, NULL, NULL, dlog)) return 1;
      slr_optimizer_step(&opt, m.params, m.grads, ost, m.nparams, groups, ng, 3.5e-4f);
    }
    if (it >= 0) t_fwd += b - a, t_bwd += slr_now() - b;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  double dt = slr_now() - t0;
  slr_op_profile pr[16];
  int np = slr_model_profile_get(pr, 16);
  double macs = 0; /* multiply-adds of convolutions and linear layers, this rank */
  for (int k = 0; k < np; k++) macs += pr[k].fwd_macs;
  double flop_img = 2.0 * macs / iters / B * (train ? 3.0 : 1.0);
  double rss = (double)slr_peak_rss(), rss_max = 0;
  MPI_Reduce(&rss, &rss_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  /* the limit: the sgemm rate of the whole node (all its cores, rank 0
   * alone while the others wait) over the FLOP of one image */
  int step_threads = slr_threads_get();
  double gemm = 0;
  if (rank == 0) slr_threads_set(0, 1), gemm = sgemm_rate();
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    char cpu[256];
    cpu_line(cpu, sizeof cpu);
    double ips = (double)GB * iters / dt, limit = gemm / flop_img;
    printf("# CPU %s; %s\n", cpu, slr_nn_kernels());
    printf("slr %s %s/%d batch %d %dx%d ranks %d threads %d: %.2f images/s (forward %.3f s, "
           "backward+step %.3f s per iteration), %.2f GFLOP/image, sgemm %.1f GFLOP/s on %d threads "
           "(limit %.2f images/s, fraction %.2f), activations %.0f MiB, peak RSS %.0f MiB per rank\n",
           argv[1], argv[2], width, GB, H, W, size, step_threads, ips, t_fwd / iters,
           t_bwd / iters, flop_img / 1e9, gemm / 1e9, slr_threads_get(), limit, ips / limit,
           slr_model_activation_bytes(&m) / 1048576.0, rss_max / 1048576.0);
    if (getenv("SLR_PROFILE") && atoi(getenv("SLR_PROFILE"))) print_profile(iters);
  }
  if (train) slr_dp_free(&dp);
  slr_model_free(&m);
  free(x), free(probs), free(dlog), free(lab), free(ost), free(groups);
  MPI_Finalize();
  return 0;
}
