/* slr extract: features of a data set's split with a trained model (the one
 * its weights file describes), written collectively with pids, camids and
 * paths (the layout slr evaluate and slr cluster read). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "slr/config.h"
#include "slr/io.h"
#include "slr/train.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_extract = {
    "extract", "features of a split (train, query, gallery, or test = query + gallery)",
    "--config C.yaml --weights W.h5 --split train|query|gallery|test --out F.h5 "
    "[--domain target|source] [--set key=value ...]",
    run, 0};

/* Extract one split and write it under `group` ("" for the root). */
static int write_split(slr_ctx *ctx, slr_model *m, const slr_config *cfg, const slr_split *s,
                       const slr_transform *tf, slr_h5 *f, const char *group, const char *label) {
  slr_batcher b;
  SLR_TRY(slr_batcher_init(&b, s, tf, 0, cfg->data.skip_corrupt));
  float *feat = NULL;
  int64_t first, count;
  int rc = slr_extract_features(ctx, m, &b, cfg, label, &feat, &first, &count);
  if (!rc) rc = slr_batcher_report(&b, ctx->world);
  slr_batcher_free(&b);
  if (!rc)
    rc = slr_check_finite_f32(ctx->world, feat, count * m->feat_dim, first, m->feat_dim,
                              "extract: the model's features");
  if (rc) free(feat);
  SLR_TRY(rc);
  char name[64];
  int64_t dims[2] = {s->n, m->feat_dim};
  snprintf(name, sizeof name, "%s/features", group);
  rc = slr_h5_write_rows(f, name, SLR_F32, 2, dims, first, count, feat);
  free(feat);
  snprintf(name, sizeof name, "%s/pids", group);
  if (!rc) rc = slr_h5_write_rows(f, name, SLR_I32, 1, dims, first, count, s->pids + first);
  snprintf(name, sizeof name, "%s/camids", group);
  if (!rc) rc = slr_h5_write_rows(f, name, SLR_I32, 1, dims, first, count, s->camids + first);
  snprintf(name, sizeof name, "%s/paths", group);
  if (!rc)
    rc = slr_h5_write_strings(f, name, s->n, first, count, (const char *const *)s->paths + first);
  return rc;
}

/* The model the weights file describes. The configuration's model keys fill
 * what the file does not say (the last stride of another tool's file) and
 * otherwise must agree with it: a key that differs is an error naming both
 * values. */
static int model_from_weights(slr_ctx *ctx, const slr_config *cfg, const char *weights,
                              slr_model *m) {
  slr_model_desc d;
  SLR_TRY(slr_model_describe(ctx->world, weights, &d));
  slr_model_config want;
  slr_arch arch;
  SLR_TRY(slr_arch_parse(cfg->model.arch, &arch));
  slr_model_config_default(&want, arch);
  want.width = (int)lround(64.0 * cfg->model.width);
  want.last_stride = cfg->model.last_stride;
  SLR_TRY(slr_pool_parse(cfg->model.pool, &want.pool));
  want.neck = cfg->model.neck;
  const unsigned unknown = ~d.known;
  char diff[512] = "";
  size_t o = 0;
#define DIFF(bit, cond, ...)                                                               \
  do {                                                                                     \
    if (!(d.known & (bit))) {                                                              \
      d.known |= (bit);                                                                    \
    } else if (cond && o < sizeof diff) {                                                  \
      o += (size_t)snprintf(diff + o, sizeof diff - o, "%s", o ? "; " : "");               \
      if (o < sizeof diff) o += (size_t)snprintf(diff + o, sizeof diff - o, __VA_ARGS__);  \
    }                                                                                      \
  } while (0)
  DIFF(SLR_DESC_ARCH, want.arch != d.cfg.arch, "model.arch %s, the file %s", cfg->model.arch,
       slr_arch_name(d.cfg.arch));
  DIFF(SLR_DESC_WIDTH, want.width != d.cfg.width, "model.width %g (%d channels), the file %d",
       cfg->model.width, want.width, d.cfg.width);
  DIFF(SLR_DESC_LAST_STRIDE, want.last_stride != d.cfg.last_stride,
       "model.last_stride %d, the file %d", want.last_stride, d.cfg.last_stride);
  DIFF(SLR_DESC_POOL, want.pool != d.cfg.pool, "model.pool %s, the file %s", cfg->model.pool,
       d.cfg.pool == SLR_POOL_GEM ? "gem" : "avg");
  DIFF(SLR_DESC_NECK, want.neck != d.cfg.neck, "model.neck %s, the file %s",
       want.neck ? "true" : "false", d.cfg.neck ? "true" : "false");
#undef DIFF
  /* what the file does not say comes from the configuration */
  if (unknown & SLR_DESC_ARCH) d.cfg.arch = want.arch;
  if (unknown & SLR_DESC_WIDTH) d.cfg.width = want.width;
  if (unknown & SLR_DESC_LAST_STRIDE) d.cfg.last_stride = want.last_stride;
  if (unknown & SLR_DESC_POOL) d.cfg.pool = want.pool;
  if (unknown & SLR_DESC_NECK) d.cfg.neck = want.neck;
  if (diff[0])
    return SLR_FAIL(SLR_ERR_INPUT, "extract: the configuration's model is not the one %s holds: %s",
                    weights, diff);
  d.cfg.num_classes = 0; /* features only */
  return slr_model_init(m, &d.cfg, 0);
}

static int run(slr_ctx *ctx, int argc, char **argv) {
  const char *config = NULL, *weights = NULL, *split = NULL, *out = NULL, *domain = "target";
  slr_opt_list sets = {0};
  const slr_opt opts[] = {
      {"config", OPT_STR, &config, "C.yaml",
       "configuration: data set, input size, batch; its model keys must agree with --weights"},
      {"weights", OPT_STR, &weights, "W.h5",
       "weights file; its attributes describe the model (RUN/final.h5, RUN/pretrain.h5, ...)"},
      {"split", OPT_STR, &split, "SPLIT", "train, query, gallery, or test (query and gallery)"},
      {"out", OPT_STR, &out, "F.h5",
       "output: /features (N x D float32, L2-normalised), /pids, /camids, /paths (under "
       "/query and /gallery for test)"},
      {"domain", OPT_STR, &domain, "D", "target (default) or source"},
      {"set", OPT_LIST, &sets, "KEY=VALUE", "override a configuration key (repeatable)"},
      {NULL, 0, NULL, NULL, NULL}};
  const char *pos[1];
  int npos;
  int rc = slr_parse_options(&slr_cmd_extract, opts, argc, argv, pos, 0, &npos);
  if (rc) return rc;
  if (!config || !weights || !split || !out)
    return slr_cli_usage_error(&slr_cmd_extract, "--config, --weights, --split and --out are required");
  SLR_TRY(slr_output_path_check(out, "--out"));
  int which = !strcmp(split, "train") ? SLR_TRAIN : !strcmp(split, "query") ? SLR_QUERY
              : !strcmp(split, "gallery") ? SLR_GALLERY : !strcmp(split, "test") ? 3 : -1;
  if (which < 0)
    return slr_cli_usage_error(&slr_cmd_extract,
                               "--split \"%s\" is not one of train, query, gallery, test", split);
  if (strcmp(domain, "target") && strcmp(domain, "source"))
    return slr_cli_usage_error(&slr_cmd_extract, "--domain \"%s\" is not target or source",
                               domain);
  slr_config cfg;
  SLR_TRY(slr_cli_load_config(ctx->world, config, &sets, &cfg));
  slr_threads_set((int)cfg.run.threads, ctx->node_size);
  const slr_domain_cfg *dc = !strcmp(domain, "target") ? &cfg.data.target : &cfg.data.source;
  slr_dataset ds;
  SLR_TRY(slr_dataset_load(&ds, dc, ctx->world));
  slr_transform tf;
  slr_model m;
  rc = slr_transform_from_config(&tf, &cfg.data);
  if (!rc) rc = model_from_weights(ctx, &cfg, weights, &m);
  rc = slr_agree(ctx->world, rc);
  if (rc) {
    slr_dataset_free(&ds);
    return rc;
  }
  rc = slr_model_load(&m, ctx->world, weights, 0);
  slr_h5 f;
  if (!rc) rc = slr_h5_create(&f, ctx->world, out, "features", 1);
  if (!rc) {
    if (which == 3) {
      rc = write_split(ctx, &m, &cfg, &ds.split[SLR_QUERY], &tf, &f, "/query", "extract query");
      if (!rc)
        rc = write_split(ctx, &m, &cfg, &ds.split[SLR_GALLERY], &tf, &f, "/gallery",
                         "extract gallery");
    } else {
      rc = write_split(ctx, &m, &cfg, &ds.split[which], &tf, &f, "", "extract");
    }
    if (!rc) rc = slr_h5_attr_set_str(&f, "/", "weights", weights);
    if (!rc) rc = slr_h5_attr_set_str(&f, "/", "dataset", dc->root);
    if (!rc) rc = slr_h5_attr_set_str(&f, "/", "split", split);
    rc = slr_agree(ctx->world, rc);
    if (rc)
      slr_h5_abort(&f);
    else
      rc = slr_h5_commit(&f);
  }
  if (!rc) slr_info("features: %s", out);
  slr_model_free(&m);
  slr_dataset_free(&ds);
  return rc;
}
