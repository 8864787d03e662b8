/* The job's data: the source and target domains the stages need, the
 * training transform, and one batcher per split. */
#include <string.h>

#include "train_internal.h"

enum { B_SOURCE = 1, B_TARGET = 2, B_QUERY = 4, B_GALLERY = 8 };

static int has_stage(const slr_config *cfg, const char *name) {
  for (int i = 0; i < cfg->train.stages.n; i++)
    if (!strcmp(cfg->train.stages.v[i], name)) return 1;
  return 0;
}

static int load_source(tr_data *d, const slr_ctx *ctx, const slr_config *cfg) {
  SLR_TRY(slr_dataset_load(&d->source, &cfg->data.source, ctx->world));
  d->has_source = 1;
  if (d->source.split[SLR_TRAIN].n == 0)
    return SLR_FAIL(SLR_ERR_INPUT, "the source data set %s has no training images",
                    cfg->data.source.root);
  return 0;
}

static int load_target(tr_data *d, const slr_ctx *ctx, const slr_config *cfg, int adapt) {
  SLR_TRY(slr_dataset_load(&d->target, &cfg->data.target, ctx->world));
  d->has_target = 1;
  if (adapt && d->target.split[SLR_TRAIN].n <= cfg->cluster.k1)
    return SLR_FAIL(SLR_ERR_INPUT,
                    "the target data set %s has %lld training images; clustering needs more "
                    "than cluster.k1 = %lld",
                    cfg->data.target.root, (long long)d->target.split[SLR_TRAIN].n,
                    (long long)cfg->cluster.k1);
  d->has_eval = d->target.split[SLR_QUERY].n > 0 && d->target.split[SLR_GALLERY].n > 0;
  /* checked before any training, not after pretraining */
  const int64_t ne = d->target.split[SLR_QUERY].n + d->target.split[SLR_GALLERY].n;
  if (d->has_eval && cfg->eval.rerank && cfg->eval.rerank_k1 >= ne)
    return SLR_FAIL(SLR_ERR_CONFIG, "eval.rerank_k1 = %lld, but the target %s has %lld query and "
                    "gallery images: re-ranking needs more than k1", (long long)cfg->eval.rerank_k1,
                    cfg->data.target.root, (long long)ne);
  return 0;
}

int tr_data_init(tr_data *d, const slr_ctx *ctx, const slr_config *cfg) {
  memset(d, 0, sizeof *d);
  const int need_source = has_stage(cfg, "pretrain"), need_target = has_stage(cfg, "adapt");
  const int want_eval = cfg->data.target.format != SLR_FMT_NONE;
  if (need_source && cfg->data.source.format == SLR_FMT_NONE)
    return SLR_FAIL(SLR_ERR_CONFIG, "train.stages has pretrain, but data.source.format is none");
  if (need_target && !want_eval)
    return SLR_FAIL(SLR_ERR_CONFIG, "train.stages has adapt, but data.target.format is none");
  SLR_TRY(slr_transform_from_config(&d->tf, &cfg->data));
  if (need_source) SLR_TRY(load_source(d, ctx, cfg));
  if (need_target || want_eval) SLR_TRY(load_target(d, ctx, cfg, need_target));
  const int cache = cfg->data.cache, skip = cfg->data.skip_corrupt;
  if (d->has_source) {
    SLR_TRY(slr_batcher_init(&d->b_source, &d->source.split[SLR_TRAIN], &d->tf, cache, skip));
    d->batchers |= B_SOURCE;
  }
  if (d->has_target) {
    SLR_TRY(slr_batcher_init(&d->b_target, &d->target.split[SLR_TRAIN], &d->tf, cache, skip));
    d->batchers |= B_TARGET;
    SLR_TRY(slr_batcher_init(&d->b_query, &d->target.split[SLR_QUERY], &d->tf, cache, skip));
    d->batchers |= B_QUERY;
    SLR_TRY(slr_batcher_init(&d->b_gallery, &d->target.split[SLR_GALLERY], &d->tf, cache, skip));
    d->batchers |= B_GALLERY;
  }
  return 0;
}

void tr_data_free(tr_data *d) {
  if (d->batchers & B_SOURCE) slr_batcher_free(&d->b_source);
  if (d->batchers & B_TARGET) slr_batcher_free(&d->b_target);
  if (d->batchers & B_QUERY) slr_batcher_free(&d->b_query);
  if (d->batchers & B_GALLERY) slr_batcher_free(&d->b_gallery);
  if (d->has_source) slr_dataset_free(&d->source);
  if (d->has_target) slr_dataset_free(&d->target);
  memset(d, 0, sizeof *d);
}
