/* Feature extraction: every image of a split exactly once over the ranks
 * (sequential shards), test transform, evaluation mode, L2-normalised neck
 * features. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/train.h"

int slr_extract_features(const slr_ctx *ctx, slr_model *m, slr_batcher *b,
                         const slr_config *cfg, const char *label, float **feat,
                         int64_t *first, int64_t *count) {
  const slr_split *s = b->split;
  const int H = cfg->data.height, W = cfg->data.width, D = m->feat_dim;
  const int batch = (int)cfg->eval.batch_size;
  slr_shard_rows(s->n, ctx->rank, ctx->size, first, count);
  const int64_t n = *count;
  float *out = malloc(sizeof(float) * (size_t)D * (size_t)(n > 0 ? n : 1));
  float *img = malloc(sizeof(float) * 3 * (size_t)H * W * (size_t)batch);
  float *norm = malloc(sizeof(float) * (size_t)batch);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)batch);
  int rc = out && img && norm && idx ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory extracting %s", label);
  if (!rc && !slr_model_plan_fits(m, batch, H, W))
    rc = slr_model_plan(m, batch, H, W, 0);
  slr_progress p;
  slr_progress_begin(&p, label, s->n, "img", cfg->run.progress_interval);
  for (int64_t r0 = 0; !rc && r0 < n; r0 += batch) {
    int nb = (int)(n - r0 < batch ? n - r0 : batch);
    for (int i = 0; i < nb; i++) idx[i] = *first + r0 + i;
    rc = slr_batcher_fill(b, idx, nb, 0, 0, 0, 0, 0, img);
    if (!rc) rc = slr_model_forward(m, img, nb, 0, MPI_COMM_NULL);
    if (!rc) slr_l2norm_forward(out + r0 * D, norm, slr_model_neck(m), nb, D, 1e-12f);
    int64_t done = (r0 + nb) * ctx->size;
    slr_progress_update(&p, done < s->n ? done : s->n);
  }
  /* non-finite features (NaN weights or pixels) are never clustered or
   * evaluated */
  for (int64_t i = 0; !rc && i < n * D; i++)
    if (!isfinite(out[i]))
      rc = SLR_FAIL(SLR_ERR, "%s: the features of image %lld are not finite (NaN or Inf in "
                    "the model's weights or the image)", label, (long long)(*first + i / D));
  rc = slr_agree(ctx->world, rc);
  if (!rc) slr_progress_end(&p);
  free(img);
  free(norm);
  free(idx);
  if (rc) {
    free(out);
    return rc;
  }
  *feat = out;
  return 0;
}
