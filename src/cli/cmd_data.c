/* slr data: read the source and target data sets of a configuration, print
 * the summary table of each (ids, images, cameras per split); with --check,
 * decode every image (shared over ranks) to find unreadable ones before a
 * long run; with --bench N, time N training batches of the input pipeline
 * (identity sampler, decode, resize, augment, loader threads). */
#include <string.h>

#include "cli.h"
#include "slr/config.h"
#include "slr/data.h"

/* Time `steps` batches of a train split through the loader, as pretraining
 * reads them (train.pretrain.batch_size, instances). */
static int bench(slr_ctx *ctx, const slr_config *cfg, const slr_split *tr, int64_t steps) {
  slr_transform tf;
  SLR_TRY(slr_transform_from_config(&tf, &cfg->data));
  int K = (int)cfg->train.pretrain.instances, P = (int)(cfg->train.pretrain.batch_size / K);
  slr_id_sampler s;
  SLR_TRY(slr_id_sampler_init(&s, tr->pids, tr->camids, tr->n, P, K));
  slr_batcher b;
  int rc = slr_batcher_init(&b, tr, &tf, cfg->data.cache, cfg->data.skip_corrupt);
  if (rc) {
    slr_id_sampler_free(&s);
    return rc;
  }
  slr_loader *l = NULL;
  rc = slr_loader_create(&l, &b, &s, (uint64_t)cfg->run.seed, ctx->rank, ctx->size,
                         cfg->data.workers, cfg->data.prefetch + 1);
  int64_t steps_per_epoch = (tr->n + (int64_t)P * K - 1) / ((int64_t)P * K);
  /* the first batch (thread start-up, cold start) is timed apart */
  double t0 = slr_now(), t_first = 0;
  for (int64_t i = 0; i <= steps && !rc; i++) {
    const float *x;
    const int64_t *idx;
    int64_t n;
    rc =
        slr_loader_next(l, i / steps_per_epoch, i % steps_per_epoch, steps_per_epoch, &x, &idx, &n);
    if (i == 0) {
      t_first = slr_now() - t0;
      t0 = slr_now();
    }
  }
  rc = slr_agree(ctx->world, rc);
  double dt = slr_now() - t0;
  if (!rc) {
    double img = (double)steps * P * K;
    slr_info("loader: %lld batches of %d x %d at %dx%d in %.2f s: %.0f images/s over %d rank%s "
             "(workers %d per rank, cache %s, first batch %.3f s)",
             (long long)steps, P, K, tf.height, tf.width, dt, img / dt, ctx->size,
             ctx->size > 1 ? "s" : "", cfg->data.workers, cfg->data.cache ? "on" : "off", t_first);
    if (ctx->rank == 0) printf("images_per_second %.1f\n", img / dt);
  }
  slr_loader_free(l);
  slr_batcher_free(&b);
  slr_id_sampler_free(&s);
  return rc;
}

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_data = {
    "data", "read the data sets of a configuration, print their statistics, check the images",
    "[FILE] [--set key=value ...] [--side source|target|both] [--check] [--bench N]", run, 0};

static int run(slr_ctx *ctx, int argc, char **argv) {
  slr_opt_list sets = {0};
  int check = 0;
  int64_t nbench = 0;
  const char *side = "both";
  const slr_opt opts[] = {
      {"set", OPT_LIST, &sets, "KEY=VALUE",
       "override a key (repeatable), e.g. data.target.root=/data/market"},
      {"side", OPT_STR, &side, "NAME", "source | target | both (default both)"},
      {"check", OPT_FLAG, &check, NULL,
       "decode every image; a bad file stops with its name (or is counted with data.skip_corrupt)"},
      {"bench", OPT_INT, &nbench, "N",
       "time N batches (after a first) of the first train split read, with train.pretrain's "
       "batch_size and instances"},
      {NULL, 0, NULL, NULL, NULL}};
  const char *pos[1];
  int npos = 0;
  SLR_TRY(slr_parse_options(&slr_cmd_data, opts, argc, argv, pos, 1, &npos));
  if (nbench < 0)
    return SLR_FAIL(SLR_ERR_USAGE, "slr data: --bench %lld must be >= 0", (long long)nbench);
  int want[2] = {strcmp(side, "source") == 0 || strcmp(side, "both") == 0,
                 strcmp(side, "target") == 0 || strcmp(side, "both") == 0};
  if (!want[0] && !want[1])
    return slr_cli_usage_error(&slr_cmd_data, "--side must be source, target or both (got \"%s\")",
                    side);
  slr_config cfg;
  SLR_TRY(slr_cli_load_config(ctx->world, npos ? pos[0] : NULL, &sets, &cfg));
  const slr_domain_cfg *dom[2] = {&cfg.data.source, &cfg.data.target};
  const char *names[2] = {"source", "target"};
  for (int d = 0; d < 2; d++) {
    if (!want[d] || dom[d]->format == SLR_FMT_NONE) continue;
    slr_dataset ds;
    slr_info("%s:", names[d]);
    SLR_TRY(slr_dataset_load(&ds, dom[d], ctx->world));
    int rc = 0;
    for (int k = 0; k < SLR_NSPLITS && check && !rc; k++) {
      int64_t bad = 0;
      rc = slr_split_check(&ds.split[k], cfg.data.skip_corrupt, ctx->world, &bad);
      if (!rc && bad)
        slr_warn("%s %s: %lld corrupt image file%s skipped (data.skip_corrupt)", names[d],
                 k == SLR_TRAIN   ? "train"
                 : k == SLR_QUERY ? "query"
                                  : "gallery",
                 (long long)bad, bad > 1 ? "s" : "");
    }
    if (!rc && check) slr_info("%s: every image checked", names[d]);
    if (!rc && nbench > 0) {
      rc = bench(ctx, &cfg, &ds.split[SLR_TRAIN], nbench);
      nbench = 0;
    }
    slr_dataset_free(&ds);
    if (rc) return rc;
  }
  return 0;
}
