/* slr evaluate: the Market-1501 retrieval metrics (mAP, CMC, mINP) of a
 * query/gallery feature file, queries and gallery row-sharded over the
 * ranks. The file holds /query/{features,pids,camids} and
 * /gallery/{features,pids,camids} (slr's or h5py's). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "slr/config.h"
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

/* The metric and re-ranking options are aliases of the configuration keys
 * eval.*: defaults and ranges come from the key table, as in slr train. */
/* The options (aliases of eval.* keys) into the file names and the
 * evaluation's options. Local. */
static int parse_args(int argc, char **argv, const char **features_out, const char **json_out,
                      slr_eval_opts *o) {
  const char *features = NULL, *json = NULL;
  const char *o_metric = NULL, *o_variant = NULL, *o_k1 = NULL, *o_k2 = NULL, *o_lambda = NULL;
  int64_t qblock = 0;
  int rerank = 0;
  char h_k1[96], h_k2[96], h_l[96];
  snprintf(h_k1, sizeof h_k1, "eval.rerank_k1: re-ranking k1 (default %s)",
           slr_config_default_text("eval.rerank_k1"));
  snprintf(h_k2, sizeof h_k2, "eval.rerank_k2: re-ranking k2, query expansion (default %s)",
           slr_config_default_text("eval.rerank_k2"));
  snprintf(h_l, sizeof h_l, "eval.rerank_lambda: re-ranking lambda in [0, 1] (default %s)",
           slr_config_default_text("eval.rerank_lambda"));
  const slr_opt opts[] = {
      {"features", OPT_STR, &features, "F.h5",
       "query/gallery features: /query/{features,pids,camids}, /gallery/{...}"},
      {"metric", OPT_STR, &o_metric, "NAME",
       "eval.metric: euclidean (default) or cosine, on L2-normalised features"},
      {"rerank", OPT_FLAG, &rerank, NULL,
       "eval.rerank: k-reciprocal re-ranking, (1 - lambda) Jaccard + lambda distance"},
      {"rerank-variant", OPT_STR, &o_variant, "NAME",
       "eval.rerank_variant: jaccard (default: the peers' evaluators) or zhong (their "
       "re_ranking function)"},
      {"rerank-k1", OPT_STR, &o_k1, "K", h_k1},
      {"rerank-k2", OPT_STR, &o_k2, "K", h_k2},
      {"rerank-lambda", OPT_STR, &o_lambda, "L", h_l},
      {"json", OPT_STR, &json, "OUT.json", "also write the metrics (fractions) as JSON"},
      {"query-block", OPT_INT, &qblock, "N",
       "queries per block (default 256): memory per rank ~ N x local gallery rows x 4 bytes"},
      {NULL, 0, NULL, NULL, NULL}};
  int npos = 0;
  const char *pos[1];
  SLR_TRY(slr_parse_options(&slr_cmd_evaluate, opts, argc, argv, pos, 0, &npos));
  if (!features) return slr_cli_usage_error(&slr_cmd_evaluate, "--features F.h5 is required");
  if (json) SLR_TRY(slr_output_path_check(json, "--json"));
  slr_config cfg;
  slr_config_defaults(&cfg);
  int rc = slr_config_set_option(&cfg, "metric", "eval.metric", o_metric);
  if (!rc) rc = slr_config_set_option(&cfg, "rerank-variant", "eval.rerank_variant", o_variant);
  if (!rc) rc = slr_config_set_option(&cfg, "rerank-k1", "eval.rerank_k1", o_k1);
  if (!rc) rc = slr_config_set_option(&cfg, "rerank-k2", "eval.rerank_k2", o_k2);
  if (!rc) rc = slr_config_set_option(&cfg, "rerank-lambda", "eval.rerank_lambda", o_lambda);
  if (!rc && rerank) rc = slr_config_set_option(&cfg, "rerank", "eval.rerank", "true");
  if (!rc) {
    slr_strlcpy(cfg.source_file, "--rerank-k1/--rerank-k2", sizeof cfg.source_file);
    rc = slr_config_validate(&cfg);
  }
  if (rc) {
    char why[1024];
    slr_strlcpy(why, slr_error_text(), sizeof why);
    return slr_cli_usage_error(&slr_cmd_evaluate, "%s", why);
  }
  slr_eval_opts_default(o);
  SLR_TRY(slr_metric_parse(cfg.eval.metric, &o->metric));
  if (qblock < 0) return slr_cli_usage_error(&slr_cmd_evaluate, "--query-block must be >= 1 (0: the default)");
  o->query_block = qblock;
  o->rerank = cfg.eval.rerank;
  SLR_TRY(slr_rerank_variant_parse(cfg.eval.rerank_variant, &o->rerank_variant));
  o->rerank_k1 = (int)cfg.eval.rerank_k1;
  o->rerank_k2 = (int)cfg.eval.rerank_k2;
  o->rerank_lambda = cfg.eval.rerank_lambda;
  o->progress = 1;
  *features_out = features;
  *json_out = json;
  return 0;
}

static void print_result(slr_ctx *ctx, const char *features, const slr_eval_opts *o,
                         const slr_eval_result *res, double t_read, double t_all) {
  if (ctx->rank == 0) {
    printf("%s: %lld queries (%lld with a match), %lld gallery, metric %s", features,
           (long long)res->num_query, (long long)res->num_valid, (long long)res->num_gallery,
           slr_metric_name(o->metric));
    if (res->rerank)
      printf(", re-ranked (%s, k1 %d, k2 %d, lambda %g)",
             slr_rerank_variant_name(res->rerank_variant), res->rerank_k1, res->rerank_k2,
             res->rerank_lambda);
    printf("\n");
    slr_eval_print(res, stdout);
    fflush(stdout);
  }
  slr_info("evaluate: read %.2f s, re-ranking %.2f s, distances %.2f s, matches %.2f s, "
           "communication %.2f s, total %.2f s on %d ranks; peak RSS %.0f MB (rank 0)",
           t_read, res->time_rerank, res->time_distance, res->time_matches, res->time_comm,
           t_all, ctx->size, (double)slr_peak_rss() / 1e6);
}

static int run(slr_ctx *ctx, int argc, char **argv) {
  const char *features = NULL, *json = NULL;
  slr_eval_opts o;
  int rc = parse_args(argc, argv, &features, &json, &o);
  if (rc) return rc;

  double t0 = slr_now();
  slr_h5 h;
  SLR_TRY(slr_h5_open(&h, ctx->world, features, "features", 1, SLR_H5_FOREIGN_OK));
  part q = {.group = "/query"}, g = {.group = "/gallery"};
  rc = check_part(&h, &q);
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
  print_result(ctx, features, &o, &res, t_read, t_all);
  return 0;
}
