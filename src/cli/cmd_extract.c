/* slr extract: features of a data set's split with a trained model, written
 * collectively with pids, camids and paths (the layout slr evaluate and
 * slr cluster read). */
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

static int run(slr_ctx *ctx, int argc, char **argv) {
  const char *config = NULL, *weights = NULL, *split = NULL, *out = NULL, *domain = "target";
  slr_opt_list sets = {0};
  const slr_opt opts[] = {
      {"config", OPT_STR, &config, "C.yaml", "configuration (data set, model, input size)"},
      {"weights", OPT_STR, &weights, "W.h5", "model weights (RUN/final.h5, RUN/pretrain.h5, ...)"},
      {"split", OPT_STR, &split, "SPLIT", "train, query, gallery, or test (query and gallery)"},
      {"out", OPT_STR, &out, "F.h5", "output file"},
      {"domain", OPT_STR, &domain, "D", "target (default) or source"},
      {"set", OPT_LIST, &sets, "KEY=VALUE", "override a configuration key (repeatable)"},
      {NULL, 0, NULL, NULL, NULL}};
  const char *pos[1];
  int npos;
  int rc = slr_parse_options(&slr_cmd_extract, opts, argc, argv, pos, 0, &npos);
  if (rc) return rc;
  if (!config || !weights || !split || !out)
    return slr_error_set(SLR_ERR_USAGE, NULL, 0,
                         "slr extract: --config, --weights, --split and --out are required\n"
                         "usage: slr extract %s",
                         slr_cmd_extract.usage);
  SLR_TRY(slr_output_path_check(out, "--out"));
  int which = !strcmp(split, "train") ? SLR_TRAIN : !strcmp(split, "query") ? SLR_QUERY
              : !strcmp(split, "gallery") ? SLR_GALLERY : !strcmp(split, "test") ? 3 : -1;
  if (which < 0)
    return slr_error_set(SLR_ERR_USAGE, NULL, 0,
                         "slr extract: --split \"%s\" is not one of train, query, gallery, test",
                         split);
  if (strcmp(domain, "target") && strcmp(domain, "source"))
    return slr_error_set(SLR_ERR_USAGE, NULL, 0,
                         "slr extract: --domain \"%s\" is not target or source", domain);
  slr_config cfg;
  SLR_TRY(slr_cli_load_config(ctx->world, config, &sets, &cfg));
  slr_threads_set((int)cfg.run.threads, ctx->node_size);
  const slr_domain_cfg *dc = !strcmp(domain, "target") ? &cfg.data.target : &cfg.data.source;
  slr_dataset ds;
  SLR_TRY(slr_dataset_load(&ds, dc, ctx->world));
  slr_transform tf;
  slr_model m;
  rc = slr_transform_from_config(&tf, &cfg.data);
  if (!rc) rc = slr_train_model_init(&m, &cfg, 0);
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
