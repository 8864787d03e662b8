/* One pretraining step on the labelled source domain: cross-entropy (label
 * smoothing) on each rank's slice, weighted into the global batch's mean,
 * and the batch-hard triplet loss over the whole global batch. */
#include <string.h>

#include "train_internal.h"

int tr_pretrain_step(tr_job *j, const float *x, const int64_t *idx, int64_t n, double *loss_ce,
                     double *loss_tri, float lr) {
  const slr_config *cfg = j->cfg;
  slr_model *m = &j->model.net;
  tr_steps *s = &j->steps;
  const int64_t B = s->B;
  const int D = m->feat_dim, K = m->cfg.num_classes;
  const slr_split *src = &j->data.source.split[SLR_TRAIN];
  const float smooth = (float)cfg->train.pretrain.label_smoothing;
  for (int64_t i = 0; i < n; i++) s->lab_local[i] = src->pids[idx[i]];
  slr_model_zero_grad(m);
  SLR_TRY(slr_model_forward(m, x, (int)n, 1, cfg->model.sync_bn ? j->ctx->world : MPI_COMM_NULL));
  const float ce = n > 0 ? slr_xent_forward(s->probs, slr_model_logits(m), s->lab_local, NULL,
                                            (int)n, K, smooth)
                         : 0.0f;
  memset(s->dlogits, 0, sizeof(float) * (size_t)n * K);
  if (n > 0)
    slr_xent_backward(s->dlogits, s->probs, s->lab_local, NULL, (int)n, K, smooth,
                      (float)n / (float)B);
  SLR_TRY(tr_gather_batch(j->ctx, s, slr_model_pooled(m), D, s->gfeat));
  SLR_MPI(MPI_Allgatherv(s->lab_local, (int)n, MPI_INT32_T, s->glab, s->lcounts, s->ldispls,
                         MPI_INT32_T, j->ctx->world));
  const float margin =
      cfg->train.pretrain.soft_margin ? 0.0f : (float)cfg->train.pretrain.triplet_margin;
  const float tri = slr_triplet_forward(s->gfeat, s->glab, (int)B, D, margin, s->tpos, s->tneg,
                                        s->tdap, s->tdan);
  memset(s->gdfeat, 0, sizeof(float) * (size_t)B * D);
  slr_triplet_backward(s->gdfeat, s->gfeat, (int)B, D, margin, s->tpos, s->tneg, s->tdap, s->tdan,
                       1.0f);
  SLR_TRY(tr_backward_reduce(j, s->gdfeat + s->pos0 * D, NULL, s->dlogits, n, K));
  slr_optimizer_step(&j->model.opt, m->params, m->grads, j->model.opt_state, m->nparams,
                     j->model.groups, j->model.ngroups, lr);
  double ce_sum = (double)ce * (double)n, tot = 0;
  SLR_MPI(MPI_Allreduce(&ce_sum, &tot, 1, MPI_DOUBLE, MPI_SUM, j->ctx->world));
  *loss_ce = tot / (double)B;
  *loss_tri = tri;
  return 0;
}
