/* slr evaluate: the Market-1501 retrieval metrics (mAP, CMC, mINP) of a
 * query/gallery feature file, queries and gallery row-sharded over the
 * ranks. The file holds /query/{features,pids,camids} and
 * /gallery/{features,pids,camids} (slr's or h5py's). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "slr/eval.h"
#include "slr/io.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_evaluate = {
    "evaluate", "mAP, CMC and mINP of query/gallery features (Market-1501 protocol)",
    "--features F.h5 [--metric euclidean|cosine] [--rerank [--rerank-variant jaccard|zhong]\n"
    "      [--rerank-k1 K] [--rerank-k2 K] [--rerank-lambda L]] [--json OUT.json]\n"
    "      [--query-block N]",
    run, 0};

typedef struct {
  const char *group; /* "/query" or "/gallery" */
  int64_t n, dim, row0, rows;
  float *f;
  int64_t *pid, *cam;
} part;

static int is_int_type(int t) { return t == SLR_I32 || t == SLR_I64 || t == SLR_U8; }

/* Shapes and types of one group's three datasets. Collective. */
static int check_part(slr_h5 *h, part *p) {
  char name[64];
  int nd, type;
  int64_t dims[SLR_H5_MAXDIMS];
  snprintf(name, sizeof name, "%s/features", p->group);
  SLR_TRY(slr_agree(h->comm, slr_h5_shape(h, name, &nd, dims, &type)));
  if (nd != 2)
    return SLR_FAIL(SLR_ERR_INPUT, "%s: %s has %d dimensions, expected 2 (N x D)", h->path, name,
                    nd);
  if (type != SLR_F32 && type != SLR_F64)
    return SLR_FAIL(SLR_ERR_INPUT, "%s: %s has type %s, expected float32 or float64", h->path,
                    name, type < 0 ? "(not a number)" : slr_dtype_name((slr_dtype)type));
  p->n = dims[0];
  p->dim = dims[1];
  if (p->dim < 1)
    return SLR_FAIL(SLR_ERR_INPUT, "%s: %s has feature dimension 0", h->path, name);
  const char *ints[2] = {"pids", "camids"};
  for (int i = 0; i < 2; i++) {
    snprintf(name, sizeof name, "%s/%s", p->group, ints[i]);
    SLR_TRY(slr_agree(h->comm, slr_h5_shape(h, name, &nd, dims, &type)));
    if (nd != 1)
      return SLR_FAIL(SLR_ERR_INPUT, "%s: %s has %d dimensions, expected 1 (N)", h->path, name,
                      nd);
    if (!is_int_type(type))
      return SLR_FAIL(SLR_ERR_INPUT, "%s: %s has type %s, expected an integer type", h->path,
                      name, type < 0 ? "(not a number)" : slr_dtype_name((slr_dtype)type));
    if (dims[0] != p->n)
      return SLR_FAIL(SLR_ERR_INPUT, "%s: %s has %lld entries but %s/features has %lld rows",
                      h->path, name, (long long)dims[0], p->group, (long long)p->n);
  }
  return 0;
}

/* Read this rank's rows of one group and check the features. Collective. */
static int read_part(slr_h5 *h, part *p, int rank, int size) {
  slr_shard_rows(p->n, rank, size, &p->row0, &p->rows);
  size_t r = (size_t)(p->rows ? p->rows : 1);
  p->f = malloc(r * (size_t)p->dim * sizeof(float));
  p->pid = malloc(r * sizeof(int64_t));
  p->cam = malloc(r * sizeof(int64_t));
  int rc = p->f && p->pid && p->cam
               ? 0
               : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for %lld rows of %s/features",
                          (long long)p->rows, p->group);
  SLR_TRY(slr_agree(h->comm, rc));
  char name[64];
  snprintf(name, sizeof name, "%s/features", p->group);
  SLR_TRY(slr_h5_read_rows(h, name, SLR_F32, p->row0, p->rows, p->f));
  snprintf(name, sizeof name, "%s/pids", p->group);
  SLR_TRY(slr_h5_read_rows(h, name, SLR_I64, p->row0, p->rows, p->pid));
  snprintf(name, sizeof name, "%s/camids", p->group);
  SLR_TRY(slr_h5_read_rows(h, name, SLR_I64, p->row0, p->rows, p->cam));
  for (int64_t i = 0; i < p->rows * p->dim && !rc; i++)
    if (!isfinite(p->f[i]))
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: %s/features row %lld has a non-finite value (%g)",
                    h->path, p->group, (long long)(p->row0 + i / p->dim), (double)p->f[i]);
  return slr_agree(h->comm, rc);
}

static void free_part(part *p) {
  free(p->f);
  free(p->pid);
  free(p->cam);
}

static int write_json(const char *path, slr_metric metric, const slr_eval_result *r) {
  char buf[4096];
  SLR_TRY(slr_eval_format_json(r, metric, buf, sizeof buf));
  return slr_write_file_atomic(path, buf, strlen(buf));
}

static int run(slr_ctx *ctx, int argc, char **argv) {
  const char *features = NULL, *metric_name = "euclidean", *json = NULL;
  int64_t qblock = 0, k1 = 20, k2 = 6;
  int rerank = 0;
  const char *variant = "jaccard";
  double lambda = 0.3;
  const slr_opt opts[] = {
      {"features", OPT_STR, &features, "F.h5",
       "query/gallery features: /query/{features,pids,camids}, /gallery/{...}"},
      {"metric", OPT_STR, &metric_name, "NAME",
       "euclidean (default) or cosine, on L2-normalised features"},
      {"rerank", OPT_FLAG, &rerank, NULL,
       "k-reciprocal re-ranking: (1 - lambda) Jaccard + lambda distance"},
      {"rerank-variant", OPT_STR, &variant, "NAME",
       "jaccard (default: the peers' evaluators) or zhong (their re_ranking function)"},
      {"rerank-k1", OPT_INT, &k1, "K", "re-ranking k1 (default 20)"},
      {"rerank-k2", OPT_INT, &k2, "K", "re-ranking k2, query expansion (default 6)"},
      {"rerank-lambda", OPT_FLOAT, &lambda, "L", "re-ranking lambda in [0, 1] (default 0.3)"},
      {"json", OPT_STR, &json, "OUT.json", "also write the metrics (fractions) as JSON"},
      {"query-block", OPT_INT, &qblock, "N",
       "queries per block (default 256): memory per rank ~ N x local gallery rows x 4 bytes"},
      {NULL, 0, NULL, NULL, NULL}};
  int npos = 0;
  const char *pos[1];
  SLR_TRY(slr_parse_options(&slr_cmd_evaluate, opts, argc, argv, pos, 0, &npos));
  if (!features) return slr_cli_usage_error(&slr_cmd_evaluate, "--features F.h5 is required");
  slr_eval_opts o;
  slr_eval_opts_default(&o);
  if (slr_metric_parse(metric_name, &o.metric))
    return slr_cli_usage_error(&slr_cmd_evaluate, "--metric: unknown metric \"%s\" (euclidean or cosine)",
                               metric_name);
  if (qblock < 0) return slr_cli_usage_error(&slr_cmd_evaluate, "--query-block must be >= 1 (0: the default)");
  o.query_block = qblock;
  if (k1 < 1 || k1 > 100000 || k2 < 1 || k2 > k1)
    return slr_cli_usage_error(&slr_cmd_evaluate, "--rerank-k1 %lld and --rerank-k2 %lld must satisfy "
                    "1 <= k2 <= k1 <= 100000",
                    (long long)k1, (long long)k2);
  if (!(lambda >= 0.0 && lambda <= 1.0))
    return slr_cli_usage_error(&slr_cmd_evaluate, "--rerank-lambda %g must be in [0, 1]", lambda);
  o.rerank = rerank;
  if (slr_rerank_variant_parse(variant, &o.rerank_variant))
    return slr_cli_usage_error(&slr_cmd_evaluate, "--rerank-variant: unknown re-ranking variant \"%s\" (jaccard or zhong)",
                               variant);
  o.rerank_k1 = (int)k1;
  o.rerank_k2 = (int)k2;
  o.rerank_lambda = lambda;
  o.progress = 1;

  double t0 = slr_now();
  slr_h5 h;
  SLR_TRY(slr_h5_open(&h, ctx->world, features, NULL, 0, SLR_H5_FOREIGN_OK));
  part q = {.group = "/query"}, g = {.group = "/gallery"};
  int rc = check_part(&h, &q);
  if (!rc) rc = check_part(&h, &g);
  if (!rc && q.dim != g.dim)
    rc = SLR_FAIL(SLR_ERR_INPUT,
                  "%s: /query/features has dimension %lld but /gallery/features has %lld",
                  features, (long long)q.dim, (long long)g.dim);
  if (!rc && q.n == 0)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: /query/features has 0 rows: the query set is empty",
                  features);
  rc = slr_agree(ctx->world, rc);
  if (!rc) rc = read_part(&h, &q, ctx->rank, ctx->size);
  if (!rc) rc = read_part(&h, &g, ctx->rank, ctx->size);
  slr_h5_close(&h);
  double t_read = slr_now() - t0;
  slr_eval_result res;
  memset(&res, 0, sizeof res);
  if (!rc) {
    rc = slr_eval_market1501(ctx->world, q.dim, q.f, q.pid, q.cam, q.rows, g.f, g.pid, g.cam,
                             g.rows, &o, &res);
    if (rc && res.num_query > 0 && res.num_valid == 0)
      rc = SLR_FAIL(SLR_ERR_INPUT,
                    "%s: no query of /query/pids has a match in /gallery/pids (the same pid "
                    "with another camera in /gallery/camids): nothing to evaluate",
                    features);
  }
  free_part(&q);
  free_part(&g);
  SLR_TRY(rc);
  double t_all = slr_now() - t0;
  if (ctx->rank == 0 && json) rc = write_json(json, o.metric, &res);
  SLR_TRY(slr_agree(ctx->world, rc));
  if (ctx->rank == 0) {
    printf("%s: %lld queries (%lld with a match), %lld gallery, metric %s", features,
           (long long)res.num_query, (long long)res.num_valid, (long long)res.num_gallery,
           slr_metric_name(o.metric));
    if (res.rerank)
      printf(", re-ranked (%s, k1 %d, k2 %d, lambda %g)",
             slr_rerank_variant_name(res.rerank_variant), res.rerank_k1, res.rerank_k2,
             res.rerank_lambda);
    printf("\n");
    slr_eval_print(&res, stdout);
    fflush(stdout);
  }
  slr_info("evaluate: read %.2f s, re-ranking %.2f s, distances %.2f s, matches %.2f s, "
           "communication %.2f s, total %.2f s on %d ranks; peak RSS %.0f MB (rank 0)",
           t_read, res.time_rerank, res.time_distance, res.time_matches, res.time_comm, t_all,
           ctx->size,
           (double)slr_peak_rss() / 1e6);
  return 0;
}
