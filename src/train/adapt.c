/* Adaptation to the target domain. Each epoch starts with its labels:
 *   extract   features of every target training image (rows sharded)
 *   labels    kNN, k-reciprocal Jaccard, DBSCAN -> y_dbscan
 *   refine    the SLR step with the previous labels -> y_refined
 *   memory    L2-normalised centroids of the training clusters
 *   diagnose  label quality against the true identities (never trained on),
 *             metrics.jsonl and RUN/labels/epoch-NNN.h5
 * then trains with the cluster-memory loss (and the SLR soft targets when
 * refine.soft_weight > 0); the stage loop evaluates at the epoch's end. */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* ---- the labels of an epoch ------------------------------------------------ */

int tr_labels_init(tr_labels *l, int64_t n) {
  memset(l, 0, sizeof *l);
  l->n = n;
  l->y_prev = calloc((size_t)n + 1, sizeof(int32_t));
  l->y_dbscan = calloc((size_t)n + 1, sizeof(int32_t));
  l->y_refined = calloc((size_t)n + 1, sizeof(int32_t));
  if (!l->y_prev || !l->y_dbscan || !l->y_refined) {
    tr_labels_free(l);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the labels of %lld images", (long long)n);
  }
  return 0;
}

void tr_labels_free(tr_labels *l) {
  free(l->y_prev), free(l->y_dbscan), free(l->y_refined);
  slr_cmemory_free(&l->memory);
  slr_csr_free(&l->proj);
  slr_soft_targets_free(&l->soft);
  memset(l, 0, sizeof *l);
}

const int32_t *tr_labels_train(const tr_labels *l, const slr_refine_params *rp) {
  return rp->memory == SLR_MEMORY_DBSCAN ? l->y_dbscan : l->y_refined;
}

/* The epoch's pseudo labels: DBSCAN on the Jaccard distances. Collective. */
static int pseudo_labels(tr_job *j, const float *feat, int64_t count, double *seconds) {
  const slr_config *cfg = j->cfg;
  const slr_cluster_params cp = {(int)cfg->cluster.k1, (int)cfg->cluster.k2, cfg->cluster.eps,
                                 (int)cfg->cluster.min_samples};
  const double t0 = slr_now();
  SLR_TRY(slr_cluster_labels(j->ctx->world, feat, count, j->labels.n, j->model.net.feat_dim, &cp,
                             j->labels.y_dbscan, NULL));
  *seconds = slr_now() - t0;
  return 0;
}

/* The SLR step on this rank's rows; the refined labels gathered on every
 * rank (the sampler draws the global batch). Keeps the IoU matrix for the
 * soft targets. Collective. */
static int refine_labels(tr_job *j, int64_t epoch, int64_t first, int64_t count,
                         slr_refine_result *ref, double *seconds) {
  tr_labels *l = &j->labels;
  slr_refine_params rp = j->refine;
  rp.alpha = slr_refine_alpha_at(&j->refine, epoch, j->cfg->train.adapt.epochs);
  l->alpha = rp.alpha;
  const double t0 = slr_now();
  const int32_t *prev = l->has_prev ? l->y_prev + first : NULL;
  SLR_TRY(slr_refine(j->ctx->world, &rp, first, count, prev, l->y_dbscan + first, ref));
  *seconds = slr_now() - t0;
  tr_steps *s = &j->steps;
  for (int r = 0; r < j->ctx->size; r++) {
    int64_t f, c;
    slr_shard_rows(l->n, r, j->ctx->size, &f, &c);
    s->gcounts[r] = (int)c;
    s->gdispls[r] = (int)f;
  }
  SLR_MPI(MPI_Allgatherv(ref->labels, (int)count, MPI_INT32_T, l->y_refined, s->gcounts,
                         s->gdispls, MPI_INT32_T, j->ctx->world));
  slr_csr_free(&l->proj);
  l->proj = ref->proj;
  memset(&ref->proj, 0, sizeof ref->proj);
  slr_soft_targets_free(&l->soft);
  l->soft_ready = 0;
  return 0;
}

/* The memory: centroids of the training clusters. Collective. */
static int build_memory(tr_job *j, int64_t epoch, const float *feat, int64_t first, int64_t count) {
  tr_labels *l = &j->labels;
  const int32_t *y = tr_labels_train(l, &j->refine);
  int64_t k = 0;
  for (int64_t i = 0; i < l->n; i++)
    if (y[i] + 1 > k) k = y[i] + 1;
  if (k < 1)
    return SLR_FAIL(SLR_ERR, "adapt epoch %lld: no cluster at all (%lld samples); lower "
                    "cluster.min_samples or raise cluster.eps", (long long)epoch + 1,
                    (long long)l->n);
  slr_cmemory_free(&l->memory);
  SLR_TRY(slr_cmemory_init_centroids(&l->memory, j->ctx->world, feat, y + first, count, k,
                                     j->model.net.feat_dim));
  l->k = k;
  return 0;
}

/* The share of a cluster's members that counts in splits and merges. */
#define TRANSITION_SHARE 0.2

static void json_diagnostics(slr_json *js, const slr_refine_diagnostics *d) {
  slr_json_object_begin(js, "refinement");
  slr_json_int(js, "moved", d->moved);
  slr_json_int(js, "reclaimed", d->reclaimed);
  slr_json_int(js, "reclaimed_right", d->reclaimed_right);
  slr_json_num(js, "reclaimed_precision", d->reclaimed_precision);
  slr_json_int(js, "dropped", d->dropped);
  slr_json_int(js, "reassigned", d->reassigned);
  slr_json_int(js, "pairs_joined", d->pairs_joined);
  slr_json_num(js, "join_precision", d->join_precision);
  slr_json_int(js, "pairs_separated", d->pairs_separated);
  slr_json_num(js, "separate_precision", d->separate_precision);
  slr_json_object_end(js);
  if (!d->has_prev) return;
  slr_json_object_begin(js, "transition");
  slr_json_int(js, "clusters_prev", d->transition.clusters_prev);
  slr_json_int(js, "clusters_cur", d->transition.clusters_cur);
  slr_json_int(js, "splits", d->transition.splits);
  slr_json_int(js, "merges", d->transition.merges);
  slr_json_num(js, "share", d->transition.share);
  slr_json_num(js, "nmi", d->transition.nmi);
  slr_json_object_end(js);
}

/* Label quality and what refinement changed, against the true identities;
 * prev_refined: the previous epoch's refined labels of the local rows, or
 * NULL. Logged. Collective. */
static int diagnose(tr_job *j, int64_t epoch, int64_t first, int64_t count,
                    const slr_refine_result *ref, const int32_t *prev_refined, double t_cluster,
                    double t_refine) {
  tr_labels *l = &j->labels;
  const int32_t *truth = j->data.target.split[SLR_TRAIN].pids + first;
  slr_refine_diagnostics dg;
  SLR_TRY(slr_label_quality_compute(j->ctx->world, count, l->y_dbscan + first, truth, &l->q_dbscan));
  SLR_TRY(slr_label_quality_compute(j->ctx->world, count, l->y_refined + first, truth,
                                    &l->q_refined));
  SLR_TRY(slr_refine_diagnostics_compute(j->ctx->world, count, l->y_dbscan + first,
                                         l->y_refined + first, prev_refined, truth,
                                         TRANSITION_SHARE, &dg));
  l->have_quality = 1;
  const slr_label_quality *qd = &l->q_dbscan, *qr = &l->q_refined;
  slr_info("adapt epoch %lld: DBSCAN %lld clusters, %lld outliers (ARI %.3f); %s %lld clusters, "
           "%lld outliers (ARI %.3f); %.1fs clustering, %.2fs refinement",
           (long long)epoch + 1, (long long)qd->clusters, (long long)qd->outliers, qd->ari,
           slr_refine_mode_name(j->refine.mode), (long long)qr->clusters, (long long)qr->outliers, qr->ari, t_cluster,
           t_refine);
  slr_json js;
  tr_json_event(&js, "labels", "adapt", epoch, j->pos.position);
  slr_json_int(&js, "samples", l->n);
  slr_json_str(&js, "refine", slr_refine_mode_name(j->refine.mode));
  slr_json_int(&js, "pairs", ref->npairs);
  slr_json_int(&js, "memory_clusters", l->k);
  tr_json_quality(&js, "dbscan", qd);
  tr_json_quality(&js, "refined", qr);
  slr_json_num(&js, "alpha", l->alpha);
  json_diagnostics(&js, &dg);
  slr_json_num(&js, "t_cluster", t_cluster);
  slr_json_num(&js, "t_refine", t_refine);
  slr_json_object_end(&js);
  return tr_log_json(j, &js);
}

static int write_labels_file(tr_job *j, int64_t epoch, const float *feat, int64_t first,
                             int64_t count, const slr_refine_result *ref) {
  const int64_t every = j->cfg->checkpoint.labels_every;
  if (every <= 0 || (epoch + 1) % every != 0) return 0;
  return tr_labels_file_write(j, feat, first, count, ref);
}

int tr_adapt_labels(tr_job *j, int64_t epoch) {
  float *feat = NULL;
  int64_t first = 0, count = 0;
  double t_cluster = 0, t_refine = 0;
  slr_refine_result ref;
  memset(&ref, 0, sizeof ref);
  int32_t *prev_refined = NULL; /* the previous epoch's refined labels of the local rows */
  int rc = slr_extract_features(j->ctx, &j->model.net, &j->data.b_target, j->cfg,
                                "extract target", &feat, &first, &count);
  if (!rc && j->labels.has_prev) {
    prev_refined = malloc(sizeof(int32_t) * (size_t)(count + 1));
    rc = prev_refined ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the label diagnostics");
    if (!rc) memcpy(prev_refined, j->labels.y_refined + first, sizeof(int32_t) * (size_t)count);
    rc = slr_agree(j->ctx->world, rc);
  }
  if (!rc) rc = pseudo_labels(j, feat, count, &t_cluster);
  if (!rc) rc = refine_labels(j, epoch, first, count, &ref, &t_refine);
  if (!rc) rc = build_memory(j, epoch, feat, first, count);
  if (!rc) rc = diagnose(j, epoch, first, count, &ref, prev_refined, t_cluster, t_refine);
  if (!rc) rc = write_labels_file(j, epoch, feat, first, count, &ref);
  free(prev_refined);
  free(feat);
  slr_refine_result_free(&ref);
  return rc;
}

void tr_adapt_epoch_end(tr_job *j) {
  tr_labels *l = &j->labels;
  const int32_t *y = j->refine.previous == SLR_PREVIOUS_REFINED ? l->y_refined : l->y_dbscan;
  memcpy(l->y_prev, y, sizeof(int32_t) * (size_t)l->n);
  l->has_prev = 1;
}

/* ---- one step ------------------------------------------------------------------ */

/* The soft targets of the global batch (B, K) and their loss term, added
 * to the gradient of the features. Local (the same on every rank). */
static int soft_term(tr_job *j, double *loss) {
  tr_labels *l = &j->labels;
  tr_steps *s = &j->steps;
  const slr_config *cfg = j->cfg;
  if (!l->soft_ready) {
    SLR_TRY(slr_soft_targets_init(&l->soft, l->alpha, &l->proj, l->n,
                                  l->has_prev ? l->y_prev : NULL, l->y_dbscan,
                                  tr_labels_train(l, &j->refine), l->k));
    l->soft_ready = 1;
  }
  for (int64_t i = 0; i < s->B; i++) slr_soft_targets_row(&l->soft, s->gidx[i], s->gsoft + i * l->k);
  return slr_cmloss_soft(s->gdfeat, loss, s->gprobs, l->memory.rows, s->gsoft, (int)s->B,
                         j->model.net.feat_dim, (int)l->k, (float)cfg->train.adapt.temperature,
                         (float)cfg->refine.soft_weight, s->B);
}

int tr_adapt_step(tr_job *j, const float *x, const int64_t *idx, int64_t n, double *loss,
                  float lr) {
  const slr_config *cfg = j->cfg;
  slr_model *m = &j->model.net;
  tr_steps *s = &j->steps;
  tr_labels *l = &j->labels;
  const int D = m->feat_dim;
  const int64_t B = s->B;
  const int32_t *y = tr_labels_train(l, &j->refine);
  for (int64_t i = 0; i < n; i++) s->lab_local[i] = y[idx[i]];
  slr_model_zero_grad(m);
  SLR_TRY(slr_model_forward(m, x, (int)n, 1, cfg->model.sync_bn ? j->ctx->world : MPI_COMM_NULL));
  /* features: L2-normalised neck outputs of the global batch */
  if (n > 0) slr_l2norm_forward(s->feat_n, s->norms, slr_model_neck(m), (int)n, D, 1e-12f);
  SLR_TRY(tr_gather_batch(j->ctx, s, s->feat_n, D, s->gfeat));
  SLR_MPI(MPI_Allgatherv(s->lab_local, (int)n, MPI_INT32_T, s->glab, s->lcounts, s->ldispls,
                         MPI_INT32_T, j->ctx->world));
  const int soft = cfg->refine.soft_weight > 0 && l->has_prev;
  if (soft)
    SLR_MPI(MPI_Allgatherv(idx, (int)n, MPI_INT64_T, s->gidx, s->lcounts, s->ldispls, MPI_INT64_T,
                           j->ctx->world));
  /* the loss can fail on one rank only (memory): agreed before the next
   * collective */
  const float temp = (float)cfg->train.adapt.temperature;
  double l_soft = 0;
  float l_hard = 0;
  int rc = tr_steps_reserve(s, l->k);
  if (!rc) {
    l_hard = slr_cmloss_forward(s->gprobs, s->gfeat, l->memory.rows, s->glab, (int)B, D,
                                (int)l->k, temp);
    memset(s->gdfeat, 0, sizeof(float) * (size_t)B * D);
    rc = slr_cmloss_backward(s->gdfeat, s->gprobs, l->memory.rows, s->glab, (int)B, D, (int)l->k,
                             temp, 1.0f);
  }
  if (!rc && soft) rc = soft_term(j, &l_soft);
  SLR_TRY(slr_agree(j->ctx->world, rc));
  memset(s->dneck, 0, sizeof(float) * (size_t)n * D);
  if (n > 0)
    slr_l2norm_backward(s->dneck, s->gdfeat + s->pos0 * D, s->feat_n, s->norms, (int)n, D, 1e-12f);
  SLR_TRY(tr_backward_reduce(j, NULL, s->dneck, NULL, n, 0));
  slr_optimizer_step(&j->model.opt, m->params, m->grads, j->model.opt_state, m->nparams,
                     j->model.groups, j->model.ngroups, lr);
  /* the memory update sees the same global batch on every rank */
  slr_cmemory_update(&l->memory, s->gfeat, s->glab, (int)B, (float)cfg->train.adapt.memory_momentum,
                     cfg->train.adapt.hard);
  *loss = (double)l_hard + l_soft;
  return 0;
}
