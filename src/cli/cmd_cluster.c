/* slr cluster: pseudo labels from a feature file, as one adaptation epoch
 * makes them (kNN, k-reciprocal Jaccard, DBSCAN), rows sharded over the
 * ranks. Writes /labels to the output file and prints a summary. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cblas.h>

#include "cli.h"
#include "slr/cluster.h"
#include "slr/config.h"
#include "slr/io.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_cluster = {
    "cluster", "pseudo labels: kNN, k-reciprocal Jaccard distance and DBSCAN of features",
    "--features F.h5 --out L.h5 [--k1 30] [--k2 6] [--eps 0.6] [--min-samples 4] [--threads T] [--knn auto|full|pruned]", run, 0};

/* Read and check /features; x gets this rank's rows, L2-normalised. */
static int read_features(slr_ctx *ctx, const char *path, int k1, float **x, int64_t *n,
                         int64_t *d, int64_t *row0, int64_t *nrows) {
  slr_h5 f;
  SLR_TRY(slr_h5_open(&f, ctx->world, path, "features", 1, SLR_H5_FOREIGN_OK));
  int rc = 0, nd = 0, type = -1;
  int64_t dims[SLR_H5_MAXDIMS] = {0};
  int ex = slr_h5_exists(&f, "/features");
  if (ex < 0)
    rc = SLR_ERR;
  else if (!ex)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: dataset /features not found", path);
  if (!rc) rc = slr_h5_shape(&f, "/features", &nd, dims, &type);
  if (!rc && nd != 2)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: dataset /features has %d dimension%s, expected 2 (N x D)",
                  path, nd, nd == 1 ? "" : "s");
  /* float64 (NumPy's default) is converted to float32 on reading, as slr evaluate does */
  if (!rc && type != SLR_F32 && type != SLR_F64)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: dataset /features has type %s, expected float32 or float64",
                  path, type >= 0 ? slr_dtype_name((slr_dtype)type) : "(not numeric)");
  if (!rc && (dims[0] < 1 || dims[1] < 1))
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: dataset /features is empty (%lld x %lld)", path,
                  (long long)dims[0], (long long)dims[1]);
  if (!rc && dims[0] < k1)
    rc = SLR_FAIL(SLR_ERR_INPUT,
                  "%s: dataset /features has %lld rows, too few for k1 = %d nearest neighbours",
                  path, (long long)dims[0], k1);
  if (!rc && dims[0] >= INT32_MAX)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: dataset /features has %lld rows, more than supported",
                  path, (long long)dims[0]);
  *x = NULL;
  if (!rc) {
    *n = dims[0];
    *d = dims[1];
    slr_shard_rows(*n, ctx->rank, ctx->size, row0, nrows);
    *x = malloc((size_t)(*nrows * *d) * sizeof(float) + 1);
    if (!*x)
      rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory reading %lld x %lld features",
                    (long long)*nrows, (long long)*d);
  }
  rc = slr_agree(ctx->world, rc);
  if (!rc) rc = slr_h5_read_rows(&f, "/features", SLR_F32, *row0, *nrows, *x);
  int crc = slr_h5_close(&f);
  if (!rc) rc = crc;
  if (!rc && slr_l2_normalize(*x, *nrows, *d, *row0)) {
    char why[512];
    snprintf(why, sizeof why, "%s", slr_error_text());
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: dataset /features: %s", path, why);
  }
  rc = slr_agree(ctx->world, rc);
  if (rc) {
    free(*x);
    *x = NULL;
  }
  return rc;
}

/* The options are aliases of the configuration keys cluster.*: defaults and
 * ranges come from the key table (slr config --keys), as in slr train. */
/* The command's settings, from its options (aliases of cluster.* keys). */
typedef struct {
  const char *feat, *out;
  int64_t k1, k2, min_samples, threads;
  double eps;
  slr_knn_method knn;
} cluster_args;

static int parse_args(int argc, char **argv, cluster_args *a) {
  const char *o_k1 = NULL, *o_k2 = NULL, *o_eps = NULL, *o_ms = NULL, *knn_name = "auto";
  char h_k1[96], h_k2[96], h_eps[96], h_ms[96];
  snprintf(h_k1, sizeof h_k1, "cluster.k1: k-reciprocal neighbours (default %s)",
           slr_config_default_text("cluster.k1"));
  snprintf(h_k2, sizeof h_k2, "cluster.k2: query expansion neighbours (default %s)",
           slr_config_default_text("cluster.k2"));
  snprintf(h_eps, sizeof h_eps, "cluster.eps: DBSCAN radius on the Jaccard distance (default %s)",
           slr_config_default_text("cluster.eps"));
  snprintf(h_ms, sizeof h_ms, "cluster.min_samples: DBSCAN core size, the point included (default %s)",
           slr_config_default_text("cluster.min_samples"));
  memset(a, 0, sizeof *a);
  const slr_opt opts[] = {
      {"features", OPT_STR, &a->feat, "F.h5", "input: /features (N x D float32, or float64 converted), e.g. from h5py"},
      {"out", OPT_STR, &a->out, "L.h5", "output: /labels (N int32, -1 = outlier)"},
      {"k1", OPT_STR, &o_k1, "K", h_k1},
      {"k2", OPT_STR, &o_k2, "K", h_k2},
      {"eps", OPT_STR, &o_eps, "E", h_eps},
      {"min-samples", OPT_STR, &o_ms, "M", h_ms},
      {"threads", OPT_INT, &a->threads, "T", "threads per rank (default: cores / ranks on the node)"},
      {"knn", OPT_STR, &knn_name, "M", "kNN product: auto (default), full or pruned"},
      {NULL, 0, NULL, NULL, NULL}};
  int npos = 0;
  int rc = slr_parse_options(&slr_cmd_cluster, opts, argc, argv, NULL, 0, &npos);
  if (rc) return rc;
  if (!a->feat || !a->out)
    return slr_cli_usage_error(&slr_cmd_cluster, "--features and --out are required");
  SLR_TRY(slr_output_path_check(a->out, "--out"));
  slr_config cfg;
  slr_config_defaults(&cfg);
  rc = slr_config_set_option(&cfg, "k1", "cluster.k1", o_k1);
  if (!rc) rc = slr_config_set_option(&cfg, "k2", "cluster.k2", o_k2);
  if (!rc) rc = slr_config_set_option(&cfg, "eps", "cluster.eps", o_eps);
  if (!rc) rc = slr_config_set_option(&cfg, "min-samples", "cluster.min_samples", o_ms);
  if (!rc) {
    slr_strlcpy(cfg.source_file, "--k1/--k2", sizeof cfg.source_file);
    rc = slr_config_validate(&cfg);
  }
  if (rc) {
    char why[1024];
    slr_strlcpy(why, slr_error_text(), sizeof why);
    return slr_cli_usage_error(&slr_cmd_cluster, "%s", why);
  }
  a->k1 = cfg.cluster.k1, a->k2 = cfg.cluster.k2, a->min_samples = cfg.cluster.min_samples;
  a->eps = cfg.cluster.eps;
  if (a->threads < 0)
    return slr_cli_usage_error(&slr_cmd_cluster, "--threads %lld must be >= 0 (0: the default)",
                               (long long)a->threads);
  a->knn = SLR_KNN_AUTO;
  if (strcmp(knn_name, "full") == 0)
    a->knn = SLR_KNN_FULL;
  else if (strcmp(knn_name, "pruned") == 0)
    a->knn = SLR_KNN_PRUNED;
  else if (strcmp(knn_name, "auto") != 0)
    return slr_cli_usage_error(&slr_cmd_cluster, "--knn %s must be auto, full or pruned", knn_name);
  return 0;
}

static int write_labels(slr_ctx *ctx, const cluster_args *a, const int32_t *labels, int64_t n,
                        const slr_cluster_stats *st) {
  slr_h5 f;
  SLR_TRY(slr_h5_create(&f, ctx->world, a->out, "labels", 1));
  int64_t dims[1] = {n};
  int rc = slr_h5_write_all(&f, "/labels", SLR_I32, 1, dims, labels);
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/labels", "n_clusters", st->n_clusters);
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/labels", "n_outliers", st->n_outliers);
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/", "n_clusters", st->n_clusters);
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/", "n_outliers", st->n_outliers);
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/", "k1", a->k1);
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/", "k2", a->k2);
  if (!rc) rc = slr_h5_attr_set_f64(&f, "/", "eps", a->eps);
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/", "min_samples", a->min_samples);
  if (!rc) rc = slr_h5_attr_set_str(&f, "/", "features", a->feat);
  if (!rc) rc = slr_h5_commit(&f);
  if (rc) slr_h5_abort(&f);
  return slr_agree(ctx->world, rc);
}

/* Timings, pruning, traffic, processor time and memory over the ranks
 * (rank 0 prints). Collective. */
static int print_summary(slr_ctx *ctx, const cluster_args *a, int64_t n, int64_t d,
                         const slr_cluster_stats *st, double t_read, double t0) {
  int64_t rss = slr_peak_rss(), rss_sum = 0, rss_max = 0;
  SLR_MPI(MPI_Reduce(&rss, &rss_sum, 1, MPI_INT64_T, MPI_SUM, 0, ctx->world));
  SLR_MPI(MPI_Reduce(&rss, &rss_max, 1, MPI_INT64_T, MPI_MAX, 0, ctx->world));
  /* processor time of the busiest rank: the wall time a rank would take on
   * cores of its own, whatever else runs on the machine */
  struct rusage ru;
  double cpu = 0.0, cpu_max = 0.0;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
          (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
  SLR_MPI(MPI_Reduce(&cpu, &cpu_max, 1, MPI_DOUBLE, MPI_MAX, 0, ctx->world));
  int64_t kn[4] = {st->knn.pairs, st->knn.scored, 0, 0}, by[2] = {st->knn.bytes_sent, st->bytes_jaccard};
  int64_t bymax[2] = {0, 0};
  SLR_MPI(MPI_Reduce(kn, kn + 2, 2, MPI_INT64_T, MPI_SUM, 0, ctx->world));
  SLR_MPI(MPI_Reduce(by, bymax, 2, MPI_INT64_T, MPI_MAX, 0, ctx->world));
  if (ctx->rank != 0) return 0;
  printf("slr cluster: %lld samples x %lld dims on %d rank%s (%d thread%s each)\n",
         (long long)n, (long long)d, ctx->size, ctx->size == 1 ? "" : "s", slr_threads_get(),
         slr_threads_get() == 1 ? "" : "s");
  printf("  k1 %lld  k2 %lld  eps %g  min_samples %lld\n", (long long)a->k1, (long long)a->k2,
         a->eps, (long long)a->min_samples);
  printf("  clusters %lld  outliers %lld (%.1f%%)  Jaccard pairs <= eps %lld\n",
         (long long)st->n_clusters, (long long)st->n_outliers,
         n ? 100.0 * (double)st->n_outliers / (double)n : 0.0, (long long)st->nnz_jaccard);
  printf("  time: read %.2f s  kNN %.2f s  Jaccard %.2f s  DBSCAN %.2f s  total %.2f s\n",
         t_read, st->t_knn, st->t_jaccard, st->t_dbscan, slr_now() - t0);
  printf("  kNN product: %s, exact products for %.2f%% of pairs (pilot estimate %.4f), "
         "basis %.2f s\n", st->knn.pruned ? "pruned" : "full",
         kn[2] ? 100.0 * (double)kn[3] / (double)kn[2] : 0.0, st->knn.est_pilot, st->knn.t_basis);
  printf("  bytes sent by the busiest rank: kNN %.1f MB  Jaccard %.1f MB\n",
         (double)bymax[0] / 1e6, (double)bymax[1] / 1e6);
  printf("  processor time of the busiest rank: %.2f s\n", cpu_max);
  printf("  peak memory: %.1f MiB summed over ranks, %.1f MiB on the largest rank\n",
         (double)rss_sum / 1048576.0, (double)rss_max / 1048576.0);
  printf("  labels written to %s\n", a->out);
  fflush(stdout);
  return 0;
}

static void warn_generic_blas(void) {
  /* OpenBLAS falls back to its SSE3 kernels on CPUs it cannot name (some
   * virtual machines), several times slower for the distance products */
  const char *core = openblas_get_corename();
  if (core && strcmp(core, "Prescott") == 0 &&
      (__builtin_cpu_supports("avx512f") || __builtin_cpu_supports("avx2")))
    slr_warn("OpenBLAS uses its generic Prescott kernels on this CPU; set "
             "OPENBLAS_CORETYPE=%s (mpiexec -x OPENBLAS_CORETYPE) for a faster sgemm",
             __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell");
}

static int run(slr_ctx *ctx, int argc, char **argv) {
  cluster_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc;
  if (a.threads > 0) slr_threads_set((int)a.threads, ctx->node_size);
  warn_generic_blas();
  double t0 = slr_now();
  float *x = NULL;
  int64_t n = 0, d = 0, row0 = 0, nrows = 0;
  SLR_TRY(read_features(ctx, a.feat, (int)a.k1, &x, &n, &d, &row0, &nrows));
  double t_read = slr_now() - t0;
  slr_cluster_params p = {(int)a.k1, (int)a.k2, a.eps, (int)a.min_samples};
  slr_knn_opts ko = {.method = a.knn};
  int32_t *labels = malloc((size_t)n * sizeof(int32_t));
  rc = labels ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory (%lld labels)", (long long)n);
  rc = slr_agree(ctx->world, rc);
  slr_cluster_stats st;
  memset(&st, 0, sizeof st);
  if (!rc) rc = slr_cluster_labels_opts(ctx->world, x, nrows, n, d, &p, &ko, labels, &st);
  free(x);
  if (!rc) rc = write_labels(ctx, &a, labels, n, &st);
  free(labels);
  SLR_TRY(rc);
  return print_summary(ctx, &a, n, d, &st, t_read, t0);
}
