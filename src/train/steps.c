/* The step buffers of a stage (sized once for the global batch) and the
 * gather of the global batch's rows. */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

static void free_buffers(tr_steps *s) {
  free(s->lab_local), free(s->glab), free(s->tpos), free(s->tneg), free(s->gidx);
  free(s->probs), free(s->dlogits), free(s->gfeat), free(s->gdfeat), free(s->tdap), free(s->tdan);
  free(s->feat_n), free(s->norms), free(s->dneck), free(s->gprobs), free(s->gsoft);
  free(s->gcounts);
}

int tr_steps_init(tr_steps *s, const slr_ctx *ctx, int64_t B, int64_t D, int64_t C) {
  memset(s, 0, sizeof *s);
  if (B < ctx->size)
    return SLR_FAIL(SLR_ERR_CONFIG, "the global batch (%lld) is smaller than the rank count (%d): "
                    "every rank needs a share of it", (long long)B, ctx->size);
  s->B = B;
  slr_shard_rows(B, ctx->rank, ctx->size, &s->pos0, &s->nloc);
  const size_t n = (size_t)(s->nloc > 0 ? s->nloc : 1), c = (size_t)(C > 0 ? C : 1);
  s->gidx = malloc(sizeof(int64_t) * (size_t)B);
  s->lab_local = malloc(sizeof(int32_t) * n);
  s->glab = malloc(sizeof(int32_t) * (size_t)B);
  s->tpos = malloc(sizeof(int32_t) * (size_t)B);
  s->tneg = malloc(sizeof(int32_t) * (size_t)B);
  s->probs = malloc(sizeof(float) * n * c);
  s->dlogits = malloc(sizeof(float) * n * c);
  s->gfeat = malloc(sizeof(float) * (size_t)(B * D));
  s->gdfeat = malloc(sizeof(float) * (size_t)(B * D));
  s->tdap = malloc(sizeof(float) * (size_t)B);
  s->tdan = malloc(sizeof(float) * (size_t)B);
  s->feat_n = malloc(sizeof(float) * n * (size_t)D);
  s->norms = malloc(sizeof(float) * n);
  s->dneck = malloc(sizeof(float) * n * (size_t)D);
  s->gcounts = calloc((size_t)ctx->size * 4, sizeof(int));
  if (!(s->gidx && s->lab_local && s->glab && s->tpos && s->tneg && s->probs && s->dlogits &&
        s->gfeat && s->gdfeat && s->tdap && s->tdan && s->feat_n && s->norms && s->dneck &&
        s->gcounts)) {
    free_buffers(s);
    memset(s, 0, sizeof *s);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for a batch of %lld", (long long)B);
  }
  s->gdispls = s->gcounts + ctx->size;
  s->lcounts = s->gdispls + ctx->size;
  s->ldispls = s->lcounts + ctx->size;
  for (int r = 0; r < ctx->size; r++) {
    int64_t p0, cnt;
    slr_shard_rows(B, r, ctx->size, &p0, &cnt);
    s->lcounts[r] = (int)cnt;
    s->ldispls[r] = (int)p0;
  }
  return 0;
}

int tr_steps_reserve(tr_steps *s, int64_t K) {
  if (s->B * K <= s->gk_cap) return 0;
  free(s->gprobs);
  free(s->gsoft);
  s->gprobs = malloc(sizeof(float) * (size_t)(s->B * K));
  s->gsoft = malloc(sizeof(float) * (size_t)(s->B * K));
  s->gk_cap = s->gprobs && s->gsoft ? s->B * K : 0;
  if (!s->gk_cap) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for %lld clusters", (long long)K);
  return 0;
}

void tr_steps_free(tr_steps *s) {
  free_buffers(s);
  memset(s, 0, sizeof *s);
}

int tr_gather_batch(const slr_ctx *ctx, tr_steps *s, const float *local, int64_t D, float *out) {
  for (int r = 0; r < ctx->size; r++) {
    s->gcounts[r] = (int)(s->lcounts[r] * D);
    s->gdispls[r] = (int)(s->ldispls[r] * D);
  }
  SLR_MPI(MPI_Allgatherv(local, (int)(s->nloc * D), MPI_FLOAT, out, s->gcounts, s->gdispls,
                         MPI_FLOAT, ctx->world));
  return 0;
}
