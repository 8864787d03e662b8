/* The training job: stages (pretrain on the source domain, adapt to the
 * target domain with the SLR step), data-parallel steps over a global batch
 * that does not depend on the rank count, checkpoints, exact resume, stop
 * requests, label diagnostics and evaluation. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "slr/cluster.h"
#include "slr/eval.h"
#include "slr/io.h"
#include "slr/refine.h"
#include "slr/train.h"
#include "train_internal.h"

int slr_train_model_init(slr_model *m, const slr_config *cfg, int num_classes) {
  slr_model_config mc;
  slr_arch arch;
  SLR_TRY(slr_arch_parse(cfg->model.arch, &arch));
  slr_model_config_default(&mc, arch);
  mc.width = (int)lround(64.0 * cfg->model.width);
  if (mc.width < 1) mc.width = 1;
  mc.last_stride = cfg->model.last_stride;
  SLR_TRY(slr_pool_parse(cfg->model.pool, &mc.pool));
  mc.gem_p = (float)cfg->model.gem_p;
  mc.neck = cfg->model.neck;
  mc.num_classes = num_classes;
  return slr_model_init(m, &mc, (uint64_t)cfg->run.seed);
}

/* ---- small helpers ------------------------------------------------------------ */

static int log_json(job_t *j, slr_json *js) {
  int rc = slr_json_ok(js) ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory writing metrics");
  if (!rc && j->ctx->rank == 0) rc = slr_jsonl_append(j->metrics_path, slr_json_text(js));
  slr_json_free(js);
  return slr_agree(j->ctx->world, rc);
}

static void json_quality(slr_json *js, const char *key, const slr_label_quality *q) {
  slr_json_object_begin(js, key);
  slr_json_int(js, "clusters", q->clusters);
  slr_json_int(js, "outliers", q->outliers);
  slr_json_num(js, "coverage", q->coverage);
  slr_json_num(js, "nmi", q->nmi);
  slr_json_num(js, "ari", q->ari);
  slr_json_num(js, "precision", q->precision);
  slr_json_num(js, "recall", q->recall);
  slr_json_num(js, "f1", q->f1);
  slr_json_object_end(js);
}

/* {"event": ..., "stage": ..., "epoch": ..., "position": ... (left open) */
static void json_event(slr_json *js, const char *event, const char *stage, int64_t epoch,
                       int64_t position) {
  slr_json_init(js);
  slr_json_object_begin(js, NULL);
  slr_json_str(js, "event", event);
  if (stage) slr_json_str(js, "stage", stage);
  slr_json_int(js, "epoch", epoch);
  slr_json_int(js, "position", position);
}

static void json_eval(slr_json *js, const slr_eval_result *res) {
  slr_json_num(js, "mAP", res->map);
  slr_json_num(js, "mINP", res->minp);
  slr_json_array_begin(js, "cmc");
  for (int r = 0; r < SLR_EVAL_MAX_RANK; r++) slr_json_num(js, NULL, res->cmc[r]);
  slr_json_array_end(js);
}

static int stage_of(const slr_config *cfg, int si) {
  return strcmp(cfg->train.stages.v[si], "pretrain") == 0 ? STAGE_PRETRAIN : STAGE_ADAPT;
}

static int build_schedule(const slr_config *cfg, int stage, int64_t epochs, slr_lr_schedule *s) {
  const slr_schedule_cfg *sc = stage == STAGE_PRETRAIN ? &cfg->solver.pretrain : &cfg->solver.adapt;
  memset(s, 0, sizeof *s);
  s->base_lr = sc->lr;
  s->gamma = cfg->solver.gamma;
  s->step_size = sc->step_size;
  s->t_max = epochs > 0 ? epochs : 1;
  s->eta_min = cfg->solver.min_lr;
  s->warmup_iters = sc->warmup_epochs;
  s->warmup_factor = cfg->solver.warmup_factor;
  switch (sc->schedule) {
  case SLR_SCHED_CONSTANT: s->kind = SLR_LR_CONSTANT; break;
  case SLR_SCHED_STEP: s->kind = SLR_LR_STEP; break;
  case SLR_SCHED_COSINE: s->kind = SLR_LR_COSINE; break;
  case SLR_SCHED_MULTISTEP:
    s->kind = SLR_LR_MULTISTEP;
    s->nmilestones = sc->milestones.n;
    for (int i = 0; i < sc->milestones.n; i++) s->milestones[i] = sc->milestones.v[i];
    break;
  default: return SLR_FAIL(SLR_ERR_CONFIG, "unknown learning-rate schedule %d", (int)sc->schedule);
  }
  return 0;
}

int slr_job_setup_optimizer(job_t *j) {
  free(j->opt_state);
  free(j->groups);
  j->opt_state = NULL;
  j->groups = NULL;
  slr_opt_kind kind = j->cfg->solver.optimizer == SLR_OPTIM_SGD ? SLR_OPT_SGD : SLR_OPT_ADAM;
  slr_optimizer_init(&j->opt, kind, (float)j->cfg->solver.weight_decay);
  if (kind == SLR_OPT_ADAM) {
    j->opt.beta1 = (float)j->cfg->solver.beta1;
    j->opt.beta2 = (float)j->cfg->solver.beta2;
  } else {
    j->opt.momentum = (float)j->cfg->solver.momentum;
    j->opt.nesterov = j->cfg->solver.nesterov;
  }
  int64_t ns = j->model.nparams * slr_optimizer_state_per_param(&j->opt);
  j->opt_state = calloc((size_t)(ns > 0 ? ns : 1), sizeof(float));
  if (!j->opt_state) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the optimizer state");
  j->opt_nstate = ns;
  return slr_model_param_groups(&j->model, &j->groups, &j->ngroups);
}

/* Backward and the gradient reduction over the ranks (slr_dp: buckets
 * reduced while the backward pass goes on). Every rank passes the gradient of
 * the global batch's loss with respect to its own slice; slr_dp averages over
 * the ranks, so the upstream gradients are scaled by the rank count first
 * (the backward pass is linear in them) and the result is the gradient of the
 * global loss. Collective. */
static int backward_reduce(job_t *j, float *dpooled, float *dneck, float *dlogits, int64_t n,
                           int64_t ncls) {
  const int64_t D = j->model.feat_dim;
  const float scale = (float)j->ctx->size;
  if (scale != 1.0f) {
    if (dpooled)
      for (int64_t i = 0; i < n * D; i++) dpooled[i] *= scale;
    if (dneck)
      for (int64_t i = 0; i < n * D; i++) dneck[i] *= scale;
    if (dlogits)
      for (int64_t i = 0; i < n * ncls; i++) dlogits[i] *= scale;
  }
  return slr_dp_backward(&j->dp, dpooled, dneck, dlogits);
}

/* Gather the rows of the global batch (each rank its slice, rank order). */
static int gather_batch(job_t *j, const float *local, int64_t nlocal, int64_t global, int64_t D,
                        float *out) {
  int size = j->ctx->size;
  int *counts = j->gcounts, *displs = j->gdispls;
  for (int r = 0; r < size; r++) {
    int64_t p0, c;
    slr_batch_slice(global, r, size, &p0, &c);
    counts[r] = (int)(c * D);
    displs[r] = (int)(p0 * D);
  }
  SLR_MPI(MPI_Allgatherv(local, (int)(nlocal * D), MPI_FLOAT, out, counts, displs, MPI_FLOAT,
                         j->ctx->world));
  return 0;
}

/* ---- evaluation ------------------------------------------------------------------- */

static int evaluate(job_t *j, const char *stage, int64_t epoch) {
  if (!j->have_target_eval) return 0;
  const slr_config *cfg = j->cfg;
  float *qf = NULL, *gf = NULL;
  int64_t q0, qn, g0, gn;
  int rc = slr_extract_features(j->ctx, &j->model, &j->b_query, cfg, "extract query", &qf, &q0, &qn);
  if (!rc)
    rc = slr_extract_features(j->ctx, &j->model, &j->b_gallery, cfg, "extract gallery", &gf, &g0, &gn);
  int64_t *qp = NULL, *qc = NULL, *gp = NULL, *gc = NULL;
  if (!rc) {
    qp = malloc(sizeof(int64_t) * (size_t)(qn + 1));
    qc = malloc(sizeof(int64_t) * (size_t)(qn + 1));
    gp = malloc(sizeof(int64_t) * (size_t)(gn + 1));
    gc = malloc(sizeof(int64_t) * (size_t)(gn + 1));
    if (!qp || !qc || !gp || !gc) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for evaluation");
  }
  rc = slr_agree(j->ctx->world, rc);
  slr_eval_result res;
  if (!rc) {
    const slr_split *q = &j->target.split[SLR_QUERY], *g = &j->target.split[SLR_GALLERY];
    for (int64_t i = 0; i < qn; i++) qp[i] = q->pids[q0 + i], qc[i] = q->camids[q0 + i];
    for (int64_t i = 0; i < gn; i++) gp[i] = g->pids[g0 + i], gc[i] = g->camids[g0 + i];
    slr_eval_opts o;
    slr_eval_opts_default(&o);
    slr_metric_parse(cfg->eval.metric, &o.metric);
    o.rerank = cfg->eval.rerank;
    slr_rerank_variant_parse(cfg->eval.rerank_variant, &o.rerank_variant);
    o.rerank_k1 = (int)cfg->eval.rerank_k1;
    o.rerank_k2 = (int)cfg->eval.rerank_k2;
    o.rerank_lambda = cfg->eval.rerank_lambda;
    rc = slr_eval_market1501(j->ctx->world, j->model.feat_dim, qf, qp, qc, qn, gf, gp, gc, gn, &o,
                             &res);
  }
  free(qf), free(gf), free(qp), free(qc), free(gp), free(gc);
  SLR_TRY(rc);
  slr_info("%s epoch %lld: mAP %.1f%%  Rank-1 %.1f%%  Rank-5 %.1f%%  Rank-10 %.1f%%  mINP %.1f%%",
           stage, (long long)epoch, 100 * res.map, 100 * res.cmc[0], 100 * res.cmc[4],
           100 * res.cmc[9], 100 * res.minp);
  j->last_eval = res;
  j->have_eval = 1;
  slr_json js;
  json_event(&js, "eval", stage, epoch, j->position);
  json_eval(&js, &res);
  slr_json_object_end(&js);
  return log_json(j, &js);
}

/* ---- stop requests and checkpoints ------------------------------------------------ */

/* At a safe point: checkpoint every `every_steps` steps, and on a stop
 * request checkpoint and stop. */
static int safe_point(job_t *j, int end_of_epoch) {
  int sig = slr_stop_agree(j->ctx->world);
  int every = j->cfg->checkpoint.every_steps > 0 &&
              j->position % j->cfg->checkpoint.every_steps == 0;
  if (end_of_epoch || every || sig) SLR_TRY(slr_job_checkpoint(j));
  if (sig) {
    return slr_error_set(SLR_ERR_STOP, NULL, 0,
                         "stopped on %s at step %lld after writing a checkpoint; run the same "
                         "command again to resume",
                         sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "a signal",
                         (long long)j->position);
  }
  return 0;
}

/* ---- pretraining ---------------------------------------------------------------------- */

static int pretrain_step(job_t *j, const float *x, const int64_t *idx, int64_t n, int64_t B,
                         double *loss_ce, double *loss_tri, float lr) {
  const slr_config *cfg = j->cfg;
  slr_model *m = &j->model;
  const int D = m->feat_dim, K = m->cfg.num_classes;
  const slr_split *s = &j->source.split[SLR_TRAIN];
  int32_t *lab = j->lab_local;
  for (int64_t i = 0; i < n; i++) lab[i] = s->pids[idx[i]];
  slr_model_zero_grad(m);
  MPI_Comm bn = cfg->model.sync_bn ? j->ctx->world : MPI_COMM_NULL;
  SLR_TRY(slr_model_forward(m, x, (int)n, 1, bn));
  /* cross-entropy on this rank's slice, weighted into the global mean */
  float ce = n > 0 ? slr_xent_forward(j->probs, slr_model_logits(m), lab, NULL, (int)n, K,
                                      (float)cfg->train.pretrain.label_smoothing)
                   : 0.0f;
  memset(j->dlogits, 0, sizeof(float) * (size_t)n * K);
  if (n > 0)
    slr_xent_backward(j->dlogits, j->probs, lab, NULL, (int)n, K,
                      (float)cfg->train.pretrain.label_smoothing, (float)n / (float)B);
  /* batch-hard triplet over the whole global batch on the pooled features */
  SLR_TRY(gather_batch(j, slr_model_pooled(m), n, B, D, j->gfeat));
  SLR_MPI(MPI_Allgatherv(lab, (int)n, MPI_INT32_T, j->glab, j->lcounts, j->ldispls, MPI_INT32_T,
                         j->ctx->world));
  float margin = cfg->train.pretrain.soft_margin ? 0.0f : (float)cfg->train.pretrain.triplet_margin;
  float tri = slr_triplet_forward(j->gfeat, j->glab, (int)B, D, margin, j->tpos, j->tneg, j->tdap,
                                  j->tdan);
  memset(j->gdfeat, 0, sizeof(float) * (size_t)B * D);
  slr_triplet_backward(j->gdfeat, j->gfeat, (int)B, D, margin, j->tpos, j->tneg, j->tdap, j->tdan,
                       1.0f);
  SLR_TRY(backward_reduce(j, j->gdfeat + j->pos0 * D, NULL, j->dlogits, n, K));
  slr_optimizer_step(&j->opt, m->params, m->grads, j->opt_state, m->nparams, j->groups,
                     j->ngroups, lr);
  double ce_sum = (double)ce * (double)n, tot = 0;
  SLR_MPI(MPI_Allreduce(&ce_sum, &tot, 1, MPI_DOUBLE, MPI_SUM, j->ctx->world));
  *loss_ce = tot / (double)B;
  *loss_tri = tri;
  return 0;
}

/* ---- adaptation ------------------------------------------------------------------------- */

/* The share of each DBSCAN cluster b in each refined cluster r, from the
 * labels every rank holds, and the row sums of the IoU matrix. Local. */
static int build_soft_map(job_t *j) {
  const int64_t N = j->target.split[SLR_TRAIN].n, K = j->K;
  int64_t kc = 0;
  for (int64_t i = 0; i < N; i++)
    if (j->y_dbscan[i] + 1 > kc) kc = j->y_dbscan[i] + 1;
  slr_csr_free(&j->to_refined);
  free(j->iou_rowsum);
  free(j->soft_t);
  j->iou_rowsum = calloc((size_t)j->ref.iou.nrows + 1, sizeof(double));
  j->soft_t = malloc(sizeof(float) * (size_t)(K > 0 ? K : 1));
  int64_t *cnt = calloc((size_t)(kc * K + 1), sizeof(int64_t));
  int64_t *tot = calloc((size_t)kc + 1, sizeof(int64_t));
  slr_csr *m = &j->to_refined;
  m->nrows = kc;
  m->ncols = K;
  m->indptr = calloc((size_t)kc + 1, sizeof(int64_t));
  int rc = j->iou_rowsum && j->soft_t && cnt && tot && m->indptr
               ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the soft-label loss");
  int64_t nnz = 0;
  for (int64_t i = 0; !rc && i < N; i++) {
    int32_t b = j->y_dbscan[i], r = j->y_refined[i];
    if (b < 0 || r < 0) continue;
    if (cnt[(int64_t)b * K + r]++ == 0) nnz++;
    tot[b]++;
  }
  if (!rc) {
    m->indices = malloc(sizeof(int32_t) * (size_t)(nnz + 1));
    m->values = malloc(sizeof(double) * (size_t)(nnz + 1));
    if (!m->indices || !m->values) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the soft-label loss");
  }
  for (int64_t b = 0, e = 0; !rc && b < kc; b++) {
    for (int64_t r = 0; r < K; r++)
      if (cnt[b * K + r]) {
        m->indices[e] = (int32_t)r;
        m->values[e++] = (double)cnt[b * K + r] / (double)tot[b];
      }
    m->indptr[b + 1] = e;
  }
  for (int64_t a = 0; !rc && a < j->ref.iou.nrows; a++)
    for (int64_t t = j->ref.iou.indptr[a]; t < j->ref.iou.indptr[a + 1]; t++) j->iou_rowsum[a] += j->ref.iou.values[t];
  free(cnt);
  free(tot);
  j->soft_ready = !rc;
  return rc;
}

/* The soft target of sample i over the refined clusters, normalised to sum
 * 1; returns 0 when the sample has no soft label. Local. */
static int soft_target(job_t *j, int64_t i, float *t) {
  const double alpha = j->cfg->refine.alpha;
  const int32_t a = j->has_prev ? j->y_prev[i] : -1, b = j->y_dbscan[i];
  double acc_total = 0;
  memset(t, 0, sizeof(float) * (size_t)j->K);
  /* s = alpha e_b + (1 - alpha) P[a], then carried to the refined clusters */
#define CARRY(col, w)                                                                 \
  do {                                                                                \
    int64_t c_ = (col);                                                               \
    if (c_ < j->to_refined.nrows)                                                     \
      for (int64_t v_ = j->to_refined.indptr[c_]; v_ < j->to_refined.indptr[c_ + 1]; v_++) { \
        t[j->to_refined.indices[v_]] += (float)((w) * j->to_refined.values[v_]);      \
        acc_total += (w) * j->to_refined.values[v_];                                  \
      }                                                                               \
  } while (0)
  if (b >= 0) CARRY(b, j->has_prev ? alpha : 1.0);
  if (j->has_prev && a >= 0 && a < j->ref.iou.nrows && j->iou_rowsum[a] > 0)
    for (int64_t u = j->ref.iou.indptr[a]; u < j->ref.iou.indptr[a + 1]; u++)
      CARRY(j->ref.iou.indices[u], (1.0 - alpha) * j->ref.iou.values[u] / j->iou_rowsum[a]);
#undef CARRY
  if (acc_total <= 0) return 0;
  for (int64_t r = 0; r < j->K; r++) t[r] = (float)(t[r] / acc_total);
  return 1;
}

/* The soft-label term w * mean over the batch of CE(softmax(f M^T / temp),
 * target): its value, and its gradient added to gdfeat (B, D). Local (the
 * same on every rank). */
static double soft_loss(job_t *j, int64_t B, int D, float temp, double w) {
  const int64_t K = j->K;
  double loss = 0;
  for (int64_t i = 0; i < B; i++) {
    const int64_t sample = j->gidx[i];
    if (!soft_target(j, sample, j->soft_t)) continue;
    const float *p = j->gprobs + i * K;
    float *df = j->gdfeat + i * D;
    for (int64_t r = 0; r < K; r++) {
      if (j->soft_t[r] > 0) loss -= (double)j->soft_t[r] * log((double)p[r] + 1e-30);
      const float g = (float)(w / (double)B / temp) * (p[r] - j->soft_t[r]);
      if (g == 0.0f) continue;
      const float *mr = j->memory + r * D;
      for (int d = 0; d < D; d++) df[d] += g * mr[d];
    }
  }
  return w * loss / (double)B;
}

static int adapt_step(job_t *j, const float *x, const int64_t *idx, int64_t n, int64_t B,
                      double *loss, float lr) {
  const slr_config *cfg = j->cfg;
  slr_model *m = &j->model;
  const int D = m->feat_dim;
  int32_t *lab = j->lab_local;
  for (int64_t i = 0; i < n; i++) lab[i] = j->y_refined[idx[i]];
  slr_model_zero_grad(m);
  MPI_Comm bn = cfg->model.sync_bn ? j->ctx->world : MPI_COMM_NULL;
  SLR_TRY(slr_model_forward(m, x, (int)n, 1, bn));
  /* features: L2-normalised neck outputs of the global batch */
  if (n > 0) slr_l2norm_forward(j->feat_n, j->norms, slr_model_neck(m), (int)n, D, 1e-12f);
  SLR_TRY(gather_batch(j, j->feat_n, n, B, D, j->gfeat));
  SLR_MPI(MPI_Allgatherv(lab, (int)n, MPI_INT32_T, j->glab, j->lcounts, j->ldispls, MPI_INT32_T,
                         j->ctx->world));
  /* the steps below can fail on one rank only (memory): agreed before the
   * next collective */
  int rc = 0;
  if (B * j->K > j->gprobs_cap) {
    free(j->gprobs);
    j->gprobs = malloc(sizeof(float) * (size_t)(B * j->K));
    j->gprobs_cap = j->gprobs ? B * j->K : 0;
    if (!j->gprobs) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for %lld clusters", (long long)j->K);
  }
  float temp = (float)cfg->train.adapt.temperature, l = 0;
  if (!rc) {
    l = slr_cmloss_forward(j->gprobs, j->gfeat, j->memory, j->glab, (int)B, D, (int)j->K, temp);
    memset(j->gdfeat, 0, sizeof(float) * (size_t)B * D);
    rc = slr_cmloss_backward(j->gdfeat, j->gprobs, j->memory, j->glab, (int)B, D, (int)j->K, temp,
                             1.0f);
  }
  const int soft = cfg->refine.soft_weight > 0 && j->has_prev;
  if (!rc && soft && !j->soft_ready) rc = build_soft_map(j);
  SLR_TRY(slr_agree(j->ctx->world, rc));
  if (soft) {
    int64_t nidx = n;
    SLR_MPI(MPI_Allgatherv(idx, (int)nidx, MPI_INT64_T, j->gidx, j->lcounts, j->ldispls,
                           MPI_INT64_T, j->ctx->world));
    l += (float)soft_loss(j, B, D, temp, cfg->refine.soft_weight);
  }
  memset(j->dneck, 0, sizeof(float) * (size_t)n * D);
  if (n > 0)
    slr_l2norm_backward(j->dneck, j->gdfeat + j->pos0 * D, j->feat_n, j->norms, (int)n, D, 1e-12f);
  SLR_TRY(backward_reduce(j, NULL, j->dneck, NULL, n, 0));
  slr_optimizer_step(&j->opt, m->params, m->grads, j->opt_state, m->nparams, j->groups,
                     j->ngroups, lr);
  /* the memory update sees the same global batch on every rank */
  slr_cmloss_update(j->memory, j->gfeat, j->glab, (int)B, D,
                    (float)cfg->train.adapt.memory_momentum, cfg->train.adapt.hard);
  *loss = l;
  return 0;
}

/* Extract, cluster, refine, diagnose, and initialise the memory. */
static int adapt_labels(job_t *j, int64_t epoch) {
  const slr_config *cfg = j->cfg;
  const slr_split *s = &j->target.split[SLR_TRAIN];
  const int64_t N = s->n;
  const int D = j->model.feat_dim;
  free(j->feat_local);
  j->feat_local = NULL;
  SLR_TRY(slr_extract_features(j->ctx, &j->model, &j->b_target, cfg, "extract target",
                               &j->feat_local, &j->feat_first, &j->feat_count));
  slr_cluster_params cp = {(int)cfg->cluster.k1, (int)cfg->cluster.k2, cfg->cluster.eps,
                           (int)cfg->cluster.min_samples};
  slr_cluster_stats st;
  double t0 = slr_now();
  SLR_TRY(slr_cluster_labels(j->ctx->world, j->feat_local, j->feat_count, N, D, &cp, j->y_dbscan,
                             &st));
  double t1 = slr_now();
  slr_refine_params rp;
  SLR_TRY(slr_refine_mode_parse(cfg->refine.mode, &rp.mode));
  SLR_TRY(slr_linkage_parse(cfg->refine.linkage, &rp.linkage));
  rp.alpha = cfg->refine.alpha;
  rp.threshold = cfg->refine.threshold;
  rp.reclaim_outliers = cfg->refine.reclaim_outliers;
  slr_refine_result_free(&j->ref);
  j->soft_ready = 0;
  const int32_t *prev = j->has_prev ? j->y_prev + j->feat_first : NULL;
  SLR_TRY(slr_refine(j->ctx->world, &rp, j->feat_first, j->feat_count, prev,
                     j->y_dbscan + j->feat_first, &j->ref));
  double t2 = slr_now();
  /* refined labels on every rank (the sampler draws the global batch) */
  int *counts = j->gcounts, *displs = j->gdispls;
  for (int r = 0; r < j->ctx->size; r++) {
    int64_t f, c;
    slr_seq_shard(N, r, j->ctx->size, &f, &c);
    counts[r] = (int)c;
    displs[r] = (int)f;
  }
  SLR_MPI(MPI_Allgatherv(j->ref.labels, (int)j->feat_count, MPI_INT32_T, j->y_refined, counts,
                         displs, MPI_INT32_T, j->ctx->world));
  j->K = j->ref.nclusters;
  if (j->K < 1)
    return SLR_FAIL(SLR_ERR, "adapt epoch %lld: no cluster at all (%lld samples); lower "
                    "cluster.min_samples or raise cluster.eps", (long long)epoch, (long long)N);
  /* memory: L2-normalised centroids of the refined clusters */
  free(j->memory);
  j->memory = calloc((size_t)j->K * D, sizeof(float));
  double *acc = calloc((size_t)j->K * D, sizeof(double));
  int64_t *cnt = calloc((size_t)j->K, sizeof(int64_t));
  int rc = j->memory && acc && cnt ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the memory");
  rc = slr_agree(j->ctx->world, rc);
  if (!rc) {
    for (int64_t i = 0; i < j->feat_count; i++) {
      int32_t y = j->ref.labels[i];
      if (y < 0) continue;
      cnt[y]++;
      for (int d = 0; d < D; d++) acc[(int64_t)y * D + d] += j->feat_local[i * D + d];
    }
    rc = MPI_Allreduce(MPI_IN_PLACE, acc, (int)(j->K * D), MPI_DOUBLE, MPI_SUM, j->ctx->world) ||
                 MPI_Allreduce(MPI_IN_PLACE, cnt, (int)j->K, MPI_INT64_T, MPI_SUM, j->ctx->world)
             ? SLR_FAIL(SLR_ERR, "MPI_Allreduce of the centroids failed")
             : 0;
  }
  if (!rc)
    for (int64_t k = 0; k < j->K; k++) {
      double nrm = 0;
      for (int d = 0; d < D; d++) {
        double v = acc[k * D + d] / (double)cnt[k];
        nrm += v * v;
      }
      nrm = sqrt(nrm);
      for (int d = 0; d < D; d++)
        j->memory[k * D + d] = (float)(acc[k * D + d] / (double)cnt[k] / (nrm > 1e-12 ? nrm : 1e-12));
    }
  free(acc);
  free(cnt);
  SLR_TRY(rc);
  /* diagnostics against the true identities (never used for training) */
  slr_label_quality qd, qr;
  SLR_TRY(slr_label_quality_compute(j->ctx->world, j->feat_count, j->y_dbscan + j->feat_first,
                                    s->pids + j->feat_first, &qd));
  SLR_TRY(slr_label_quality_compute(j->ctx->world, j->feat_count, j->ref.labels,
                                    s->pids + j->feat_first, &qr));
  j->q_dbscan = qd;
  j->q_refined = qr;
  slr_info("adapt epoch %lld: DBSCAN %lld clusters, %lld outliers (ARI %.3f); %s %lld clusters, "
           "%lld outliers (ARI %.3f); %.1fs clustering, %.2fs refinement",
           (long long)epoch, (long long)qd.clusters, (long long)qd.outliers, qd.ari,
           cfg->refine.mode, (long long)qr.clusters, (long long)qr.outliers, qr.ari, t1 - t0,
           t2 - t1);
  slr_json js;
  json_event(&js, "labels", NULL, epoch, j->position);
  slr_json_int(&js, "samples", N);
  slr_json_str(&js, "refine", cfg->refine.mode);
  slr_json_int(&js, "pairs", j->ref.npairs);
  json_quality(&js, "dbscan", &qd);
  json_quality(&js, "refined", &qr);
  slr_json_num(&js, "t_cluster", t1 - t0);
  slr_json_num(&js, "t_refine", t2 - t1);
  slr_json_object_end(&js);
  return log_json(j, &js);
}

/* ---- the stage loop ------------------------------------------------------------------ */

static int run_stage(job_t *j, int si) {
  const slr_config *cfg = j->cfg;
  const int stage = stage_of(cfg, si);
  const char *name = stage == STAGE_PRETRAIN ? "pretrain" : "adapt";
  const int64_t epochs = stage == STAGE_PRETRAIN ? cfg->train.pretrain.epochs : cfg->train.adapt.epochs;
  const int64_t iters = stage == STAGE_PRETRAIN ? cfg->train.pretrain.iters : cfg->train.adapt.iters;
  const int64_t B = stage == STAGE_PRETRAIN ? cfg->train.pretrain.batch_size : cfg->train.adapt.batch_size;
  const int64_t Kin = stage == STAGE_PRETRAIN ? cfg->train.pretrain.instances : cfg->train.adapt.instances;
  const int resumed = j->resumed_stage == si;
  j->resumed_stage = -1;
  j->stage_index = si;
  j->stage = stage;
  if (!resumed) {
    j->epoch = 0;
    j->step = 0;
    j->has_prev = 0;
  }
  SLR_TRY(slr_job_stage_model(j, si, resumed));
  slr_lr_schedule sched;
  SLR_TRY(build_schedule(cfg, stage, epochs, &sched));
  SLR_TRY(slr_job_buffers(j, stage, B));
  const slr_split *train = stage == STAGE_PRETRAIN ? &j->source.split[SLR_TRAIN] : &j->target.split[SLR_TRAIN];
  slr_batcher *bt = stage == STAGE_PRETRAIN ? &j->b_source : &j->b_target;
  slr_info("== %s: %lld epochs x %lld iterations, global batch %lld (%lld x %lld), %d rank%s",
           name, (long long)epochs, (long long)iters, (long long)B, (long long)(B / Kin),
           (long long)Kin, j->ctx->size, j->ctx->size > 1 ? "s" : "");
  for (; j->epoch < epochs; j->epoch++, j->step = 0) {
    const int64_t e = j->epoch;
    if (stage == STAGE_ADAPT && j->step == 0) SLR_TRY(adapt_labels(j, e));
    const int32_t *pids = stage == STAGE_PRETRAIN ? train->pids : j->y_refined;
    slr_id_sampler sampler;
    int rc = slr_id_sampler_init(&sampler, pids, train->camids, train->n, (int)(B / Kin), (int)Kin);
    SLR_TRY(slr_agree(j->ctx->world, rc));
    slr_loader *loader = NULL;
    rc = slr_loader_create(&loader, bt, &sampler, (uint64_t)cfg->run.seed + (uint64_t)stage * 1000003u,
                               j->ctx->rank, j->ctx->size, cfg->data.workers, cfg->data.prefetch);
    rc = slr_agree(j->ctx->world, rc);
    if (rc) {
      slr_id_sampler_free(&sampler);
      return rc;
    }
    const double lr_d = slr_lr_at(&sched, e);
    const float lr = (float)lr_d;
    if (j->step == 0) {
      j->sum_a = j->sum_b = 0;
      j->nsteps = 0;
    }
    double t0 = slr_now();
    const int64_t step0 = j->step;
    slr_progress p;
    char label[64];
    snprintf(label, sizeof label, "%s epoch %lld/%lld", name, (long long)(e + 1), (long long)epochs);
    slr_progress_begin(&p, label, iters, "it", cfg->run.progress_interval);
    for (; !rc && j->step < iters;) {
      const float *x;
      const int64_t *idx;
      int64_t n;
      rc = slr_loader_next(loader, e, j->step, iters, &x, &idx, &n);
      rc = slr_agree(j->ctx->world, rc);
      if (rc) break;
      double a = 0, b = 0;
      if (stage == STAGE_PRETRAIN)
        rc = pretrain_step(j, x, idx, n, B, &a, &b, lr);
      else
        rc = adapt_step(j, x, idx, n, B, &a, lr);
      rc = slr_agree(j->ctx->world, rc);
      if (rc) break;
      j->sum_a += a;
      j->sum_b += b;
      j->nsteps++;
      j->step++;
      j->position++;
      slr_progress_update(&p, j->step);
      if (j->step < iters) rc = safe_point(j, 0);
    }
    slr_loader_free(loader);
    slr_id_sampler_free(&sampler);
    if (rc) return rc;
    slr_progress_end(&p);
    double dt = slr_now() - t0;
    const double sum_a = j->sum_a, sum_b = j->sum_b;
    const int64_t nsteps = j->nsteps, run_steps = j->step - step0;
    slr_json js;
    json_event(&js, "train", name, e, j->position);
    slr_json_num(&js, "lr", lr_d);
    if (stage == STAGE_PRETRAIN) {
      slr_json_num(&js, "loss_ce", nsteps ? sum_a / (double)nsteps : 0);
      slr_json_num(&js, "loss_triplet", nsteps ? sum_b / (double)nsteps : 0);
    } else {
      slr_json_num(&js, "loss", nsteps ? sum_a / (double)nsteps : 0);
      slr_json_int(&js, "clusters", j->K);
    }
    slr_json_num(&js, "seconds", dt);
    slr_json_num(&js, "images_per_s", dt > 0 ? (double)(run_steps * B) / dt : 0);
    slr_json_object_end(&js);
    SLR_TRY(log_json(j, &js));
    if (stage == STAGE_PRETRAIN)
      slr_info("pretrain epoch %lld: loss ce %.4f triplet %.4f, lr %.2e, %.1f img/s", (long long)e,
               nsteps ? sum_a / (double)nsteps : 0, nsteps ? sum_b / (double)nsteps : 0, lr,
               dt > 0 ? (double)(run_steps * B) / dt : 0);
    else
      slr_info("adapt epoch %lld: loss %.4f, lr %.2e, %.1f img/s", (long long)e,
               nsteps ? sum_a / (double)nsteps : 0, lr, dt > 0 ? (double)(run_steps * B) / dt : 0);
    if (stage == STAGE_ADAPT) {
      /* the DBSCAN labels of this epoch are the previous labels of the next */
      memcpy(j->y_prev, j->y_dbscan, sizeof(int32_t) * (size_t)train->n);
      j->has_prev = 1;
      int last = e + 1 == epochs;
      if (last || (cfg->eval.every > 0 && (e + 1) % cfg->eval.every == 0))
        SLR_TRY(evaluate(j, name, e));
    }
    /* the checkpoint of the epoch's end holds the position after it */
    j->step = iters;
    SLR_TRY(safe_point(j, 1));
  }
  if (stage == STAGE_PRETRAIN) {
    char path[SLR_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/pretrain.h5", j->run);
    SLR_TRY(slr_model_save(&j->model, j->ctx->world, path));
    slr_info("pretrained weights: %s", path);
    SLR_TRY(evaluate(j, name, epochs > 0 ? epochs - 1 : 0));
  }
  return 0;
}

static int write_summary(job_t *j) {
  slr_json js;
  slr_json_init(&js);
  slr_json_object_begin(&js, NULL);
  slr_json_int(&js, "position", j->position);
  if (j->have_eval) json_eval(&js, &j->last_eval);
  if (j->q_refined.samples > 0) {
    json_quality(&js, "dbscan", &j->q_dbscan);
    json_quality(&js, "refined", &j->q_refined);
  }
  slr_json_object_end(&js);
  int rc = slr_json_ok(&js) ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  if (!rc && j->ctx->rank == 0) {
    char path[SLR_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/summary.json", j->run);
    char *text = malloc(strlen(slr_json_text(&js)) + 2);
    if (!text)
      rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
    else {
      sprintf(text, "%s\n", slr_json_text(&js));
      rc = slr_write_file_atomic(path, text, strlen(text));
      free(text);
    }
  }
  slr_json_free(&js);
  return slr_agree(j->ctx->world, rc);
}

int slr_train_run(const slr_ctx *ctx, const slr_config *cfg, const char *run_dir, int resume) {
  job_t *j = calloc(1, sizeof *j);
  if (!j) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  j->ctx = ctx;
  j->cfg = cfg;
  j->resumed_stage = -1;
  int rc = slr_job_open(j, run_dir, resume || cfg->checkpoint.resume == SLR_RESUME_AUTO);
  int si = j->resumed_stage >= 0 ? j->resumed_stage : 0;
  for (; !rc && si < cfg->train.stages.n; si++) rc = run_stage(j, si);
  if (!rc) {
    char path[SLR_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/final.h5", j->run);
    rc = slr_model_save(&j->model, ctx->world, path);
    if (!rc) rc = write_summary(j);
    if (!rc) slr_info("done: %s (final weights final.h5, metrics metrics.jsonl)", j->run);
  }
  slr_job_close(j);
  free(j);
  return rc;
}
