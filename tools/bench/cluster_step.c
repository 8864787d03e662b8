/* The clustering of one adaptation epoch at scale, phase by phase (not a
 * test): read + L2-normalise the rows, exact kNN (k = k1), k-reciprocal
 * Jaccard (pairs <= eps), DBSCAN, and one SLR step (slr_refine,
 * hierarchical, average linkage, threshold 0.5, alpha 0.9) against
 * synthetic previous labels made from the DBSCAN labels as refine_step.c
 * makes them (a third of the clusters split by index parity, 10 % of the
 * samples moved to a random cluster, 5 % made outliers; seeded).
 *
 * Per rank and phase it records the wall time, the processor time (user +
 * system, getrusage), the peak resident memory of the phase (VmHWM of
 * /proc/self/status, reset before each phase through /proc/self/clear_refs
 * when the kernel allows it, else the peak so far), the resident memory at
 * the end, and the bytes the rank sent (kNN and Jaccard: their counters;
 * -1 where the library keeps no count). Rank 0 writes one JSON object per
 * rank and phase (and one "total" per rank) to LOG.jsonl and prints tables.
 *
 *   mpiexec -n P cluster_step FEATURES.h5 LOG.jsonl [K1 [K2 [EPS [MIN_SAMPLES]]]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "slr/cluster.h"
#include "slr/io.h"
#include "slr/refine.h"
#include "bench_prev_labels.h"

char *openblas_get_corename(void);

enum { PH_READ, PH_KNN, PH_JACCARD, PH_DBSCAN, PH_REFINE, NPH };
static const char *phase_name[NPH] = {"read", "knn", "jaccard", "dbscan", "refine"};
/* per phase: wall s, cpu s, peak MiB, rss MiB at the end, bytes sent */
enum { F_WALL, F_CPU, F_PEAK, F_RSS, F_BYTES, NF };

static double cpu_seconds(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru)) return -1.0;
  return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
         (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

/* "VmHWM" or "VmRSS" of /proc/self/status in MiB (-1 if unreadable). */
static double status_mib(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  double v = -1.0;
  size_t kl = strlen(key);
  for (char line[256]; f && fgets(line, sizeof line, f);)
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') v = atof(line + kl + 1) / 1024.0;
  if (f) fclose(f);
  return v;
}

/* Resets the peak resident memory (1 if done). */
static int reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return 0;
  int ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

typedef struct {
  double t0, c0, v[NPH][NF];
  int peak_reset;
} meter;

static void phase_start(meter *m, MPI_Comm comm) {
  MPI_Barrier(comm);
  m->peak_reset = reset_peak();
  m->c0 = cpu_seconds();
  m->t0 = slr_now();
}

static void phase_end(meter *m, int ph, int64_t bytes) {
  m->v[ph][F_WALL] = slr_now() - m->t0;
  m->v[ph][F_CPU] = cpu_seconds() - m->c0;
  m->v[ph][F_PEAK] = status_mib("VmHWM");
  m->v[ph][F_RSS] = status_mib("VmRSS");
  m->v[ph][F_BYTES] = (double)bytes;
}

static void fail(MPI_Comm comm, int rank, const char *what) {
  if (!rank) fprintf(stderr, "cluster_step: %s: %s\n", what, slr_error_text());
  MPI_Abort(comm, 1);
}

static void print_cpu(int size) {
  char model[256] = "?", flags[256] = "";
  FILE *f = fopen("/proc/cpuinfo", "r");
  for (char line[8192]; f && fgets(line, sizeof line, f);) {
    if (strncmp(line, "model name", 10) == 0 && model[0] == '?')
      snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
    if (strncmp(line, "flags", 5) == 0 && !flags[0]) {
      size_t at = 0;
      for (char *t = strtok(line, " \n"); t; t = strtok(NULL, " \n"))
        if (strncmp(t, "avx512", 6) == 0 && at + strlen(t) + 2 < sizeof flags)
          at += (size_t)snprintf(flags + at, sizeof flags - at, "%s ", t);
      if (!at) snprintf(flags, sizeof flags, "none");
    }
  }
  if (f) fclose(f);
  model[strcspn(model, "\n")] = 0;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  printf("# CPU: %s; avx512: %s; OpenBLAS core %s\n", model, flags, openblas_get_corename());
  printf("# %d ranks on %ld cores%s\n", size, cores,
         size > cores ? " (oversubscribed: the ranks share the cores, wall times are those of"
                        " the shared cores; processor time per rank is what a core of its own"
                        " would take)"
                      : "");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (argc < 3) {
    if (!rank)
      fprintf(stderr, "usage: cluster_step FEATURES.h5 LOG.jsonl [K1 [K2 [EPS [MIN_SAMPLES]]]]\n");
    MPI_Finalize();
    return 2;
  }
  slr_cluster_params cp;
  slr_cluster_params_default(&cp);
  if (argc > 3) cp.k1 = atoi(argv[3]);
  if (argc > 4) cp.k2 = atoi(argv[4]);
  if (argc > 5) cp.eps = atof(argv[5]);
  if (argc > 6) cp.min_samples = atoi(argv[6]);
  FILE *log = NULL;
  if (!rank && !(log = fopen(argv[2], "w"))) {
    fprintf(stderr, "cluster_step: cannot write %s\n", argv[2]);
    MPI_Abort(comm, 1);
  }
  if (!rank) print_cpu(size);
  meter m;
  memset(&m, 0, sizeof m);

  /* read */
  phase_start(&m, comm);
  slr_h5 h;
  int nd, type;
  int64_t dm[SLR_H5_MAXDIMS];
  if (slr_h5_open(&h, comm, argv[1], NULL, 0, SLR_H5_FOREIGN_OK) ||
      slr_h5_shape(&h, "/features", &nd, dm, &type))
    fail(comm, rank, argv[1]);
  int64_t n = dm[0], d = nd == 2 ? dm[1] : 0, row0, nrows;
  if (nd != 2 || n < cp.k1) {
    if (!rank) fprintf(stderr, "cluster_step: %s: /features must be N x D with N >= k1\n", argv[1]);
    MPI_Abort(comm, 1);
  }
  slr_shard_rows(n, rank, size, &row0, &nrows);
  float *x = malloc((size_t)(nrows * d + 1) * sizeof(float));
  int32_t *labels = malloc((size_t)n * sizeof(int32_t)), *prev = malloc((size_t)n * sizeof(int32_t));
  if (!x || !labels || !prev) {
    fprintf(stderr, "cluster_step: out of memory\n");
    MPI_Abort(comm, 1);
  }
  if (slr_h5_read_rows(&h, "/features", SLR_F32, row0, nrows, x)) fail(comm, rank, argv[1]);
  slr_h5_close(&h);
  if (slr_agree(comm, slr_l2_normalize(x, nrows, d, row0))) fail(comm, rank, "normalise");
  phase_end(&m, PH_READ, -1);
  if (!rank)
    printf("# N = %lld, D = %lld, k1 %d, k2 %d, eps %g, min_samples %d; peak memory per phase %s\n",
           (long long)n, (long long)d, cp.k1, cp.k2, cp.eps, cp.min_samples,
           m.peak_reset ? "(reset before each phase)" : "(cumulative: clear_refs not writable)");

  /* kNN */
  phase_start(&m, comm);
  slr_knn knn;
  if (slr_knn_compute(comm, x, nrows, n, d, cp.k1, NULL, &knn)) fail(comm, rank, "kNN");
  phase_end(&m, PH_KNN, knn.stats.bytes_sent);
  int pruned = knn.stats.pruned;

  /* Jaccard */
  phase_start(&m, comm);
  slr_sparse jac;
  if (slr_jaccard_compute(comm, x, d, &knn, cp.k1, cp.k2, cp.eps < 1.0 ? cp.eps : 1.0, &jac))
    fail(comm, rank, "Jaccard");
  slr_knn_free(&knn);
  phase_end(&m, PH_JACCARD, slr_jaccard_bytes_sent());
  int64_t nnz = jac.indptr[jac.nrows], nnz_all = 0;
  MPI_Allreduce(&nnz, &nnz_all, 1, MPI_INT64_T, MPI_SUM, comm);

  /* DBSCAN */
  phase_start(&m, comm);
  int64_t nclusters = 0, noutliers = 0;
  if (slr_dbscan(comm, &jac, cp.eps, cp.min_samples, labels, &nclusters)) fail(comm, rank, "DBSCAN");
  slr_sparse_free(&jac);
  phase_end(&m, PH_DBSCAN, -1);
  uint64_t hash = 1469598103934665603ull; /* FNV-1a of the labels, to compare runs */
  for (int64_t i = 0; i < n; i++) {
    noutliers += labels[i] < 0;
    for (int b = 0; b < 4; b++) hash = (hash ^ (((uint32_t)labels[i] >> (8 * b)) & 255u)) * 1099511628211ull;
  }

  /* the SLR step against synthetic previous labels */
  bench_prev_labels(labels, n, prev);
  slr_refine_params rp = bench_refine_params();
  slr_refine_result res;
  memset(&res, 0, sizeof res);
  phase_start(&m, comm);
  if (slr_refine(comm, &rp, row0, nrows, prev + row0, labels + row0, &res)) fail(comm, rank, "refine");
  phase_end(&m, PH_REFINE, -1);

  /* gather and report */
  double mine[NPH * NF + 1], *all = rank ? NULL : malloc((size_t)size * sizeof mine);
  memcpy(mine, m.v, sizeof m.v);
  mine[NPH * NF] = (double)slr_peak_rss() / 1048576.0;
  MPI_Gather(mine, NPH * NF + 1, MPI_DOUBLE, all, NPH * NF + 1, MPI_DOUBLE, 0, comm);
  if (!rank) {
    printf("# kNN product %s; %lld Jaccard pairs <= eps; DBSCAN %lld clusters, %lld outliers"
           " (labels hash %016llx); SLR step: %lld distinct pairs, %lld refined clusters\n",
           pruned ? "pruned" : "full", (long long)nnz_all, (long long)nclusters,
           (long long)noutliers, (unsigned long long)hash, (long long)res.npairs,
           (long long)res.nclusters);
    printf("\n## per phase (max over ranks; bytes: busiest rank)\n");
    printf("%-8s %9s %9s %12s %12s %12s\n", "phase", "wall_s", "cpu_s", "peak_MiB", "rss_MiB",
           "sent_MB");
    for (int ph = 0; ph < NPH; ph++) {
      double mx[NF] = {0};
      for (int q = 0; q < size; q++)
        for (int f = 0; f < NF; f++) {
          double v = all[q * (NPH * NF + 1) + ph * NF + f];
          if (q == 0 || v > mx[f]) mx[f] = v;
        }
      char sent[32] = "-";
      if (mx[F_BYTES] >= 0) snprintf(sent, sizeof sent, "%.1f", mx[F_BYTES] / 1e6);
      printf("%-8s %9.2f %9.2f %12.1f %12.1f %12s\n", phase_name[ph], mx[F_WALL], mx[F_CPU],
             mx[F_PEAK], mx[F_RSS], sent);
    }
    printf("\n## per rank (all phases)\n");
    printf("%5s %9s %9s %12s %12s\n", "rank", "wall_s", "cpu_s", "peak_MiB", "sent_MB");
    double sum_peak = 0.0;
    for (int q = 0; q < size; q++) {
      const double *v = all + q * (NPH * NF + 1);
      double wall = 0, cpu = 0, peak = 0, bytes = 0;
      for (int ph = 0; ph < NPH; ph++) {
        const double *p = v + ph * NF;
        wall += p[F_WALL];
        cpu += p[F_CPU];
        peak = p[F_PEAK] > peak ? p[F_PEAK] : peak;
        bytes += p[F_BYTES] > 0 ? p[F_BYTES] : 0;
        fprintf(log,
                "{\"n\": %lld, \"d\": %lld, \"ranks\": %d, \"rank\": %d, \"phase\": \"%s\", "
                "\"wall_s\": %.3f, \"cpu_s\": %.3f, \"peak_rss_mib\": %.1f, \"rss_mib\": %.1f, "
                "\"bytes_sent\": %.0f}\n",
                (long long)n, (long long)d, size, q, phase_name[ph], p[F_WALL], p[F_CPU],
                p[F_PEAK], p[F_RSS], p[F_BYTES]);
      }
      if (!m.peak_reset) peak = v[NPH * NF];
      sum_peak += peak;
      fprintf(log,
              "{\"n\": %lld, \"d\": %lld, \"ranks\": %d, \"rank\": %d, \"phase\": \"total\", "
              "\"wall_s\": %.3f, \"cpu_s\": %.3f, \"peak_rss_mib\": %.1f, \"bytes_sent\": %.0f, "
              "\"clusters\": %lld, \"outliers\": %lld, \"labels_hash\": \"%016llx\", "
              "\"jaccard_pairs\": %lld, \"slr_pairs\": %lld, \"refined_clusters\": %lld}\n",
              (long long)n, (long long)d, size, q, wall, cpu, peak, bytes, (long long)nclusters,
              (long long)noutliers, (unsigned long long)hash, (long long)nnz_all,
              (long long)res.npairs,
              (long long)res.nclusters);
      printf("%5d %9.2f %9.2f %12.1f %12.1f\n", q, wall, cpu, peak, bytes / 1e6);
    }
    printf("peak memory summed over the ranks: %.1f MiB\n", sum_peak);
    fclose(log);
    free(all);
  }
  slr_refine_result_free(&res);
  free(x);
  free(labels);
  free(prev);
  MPI_Finalize();
  return 0;
}
