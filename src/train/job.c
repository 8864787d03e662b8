/* The training job: the run folder, the stages of train.stages in order
 * (pretrain on the source domain, adapt to the target with the SLR step),
 * their epochs and steps over a global batch that does not depend on the
 * rank count, safe points (checkpoints, stop requests), evaluation and the
 * run's summary. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#include "train_internal.h"

/* ---- metrics.jsonl ---------------------------------------------------------- */

int tr_log_json(tr_job *j, slr_json *js) {
  int rc = slr_json_ok(js) ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory writing metrics");
  if (!rc && j->ctx->rank == 0) rc = slr_jsonl_append(j->metrics_path, slr_json_text(js));
  slr_json_free(js);
  return slr_agree(j->ctx->world, rc);
}

void tr_json_event(slr_json *js, const char *event, const char *stage, int64_t epoch,
                   int64_t position) {
  char stamp[32];
  const time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  slr_json_init(js);
  slr_json_object_begin(js, NULL);
  slr_json_str(js, "event", event);
  if (stage) slr_json_str(js, "stage", stage);
  slr_json_int(js, "epoch", epoch + 1);
  slr_json_int(js, "position", position);
  slr_json_str(js, "time", stamp);
}

void tr_json_quality(slr_json *js, const char *key, const slr_label_quality *q) {
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

/* ---- the step's backward ------------------------------------------------------- */

/* Every rank passes the gradient of the global batch's loss with respect to
 * its own slice; slr_dp averages over the ranks, so the upstream gradients
 * are scaled by the rank count first (backward is linear in them) and the
 * result is the gradient of the global loss. */
int tr_backward_reduce(tr_job *j, float *dpooled, float *dneck, float *dlogits, int64_t n,
                       int64_t ncls) {
  const int64_t D = j->model.net.feat_dim;
  const float scale = (float)j->ctx->size;
  if (scale != 1.0f) {
    if (dpooled)
      for (int64_t i = 0; i < n * D; i++) dpooled[i] *= scale;
    if (dneck)
      for (int64_t i = 0; i < n * D; i++) dneck[i] *= scale;
    if (dlogits)
      for (int64_t i = 0; i < n * ncls; i++) dlogits[i] *= scale;
  }
  return slr_dp_backward(&j->model.dp, dpooled, dneck, dlogits);
}

/* The loss and the reduced gradients must stay finite: a step that breaks
 * them stops the run before any checkpoint holds the bad state. Local (the
 * same verdict on every rank: the gradients are reduced). */
static int check_finite(tr_job *j, double loss) {
  const slr_model *m = &j->model.net;
  if (!isfinite(loss))
    return SLR_FAIL(SLR_ERR, "the training loss is %g at step %lld (epoch %lld): stopping "
                    "without a checkpoint of this state; lower the learning rate or check the "
                    "data", loss, (long long)j->pos.position, (long long)j->pos.epoch + 1);
  for (int64_t i = 0; i < m->nparams; i++)
    if (!isfinite(m->grads[i]) || !isfinite(m->params[i]))
      return SLR_FAIL(SLR_ERR, "a %s is not finite at step %lld (epoch %lld): stopping without "
                      "a checkpoint of this state", isfinite(m->grads[i]) ? "weight" : "gradient",
                      (long long)j->pos.position, (long long)j->pos.epoch + 1);
  return 0;
}

/* ---- stages ------------------------------------------------------------------- */

typedef struct {
  const char *name;
  int64_t epochs, iters, B, instances;
} stage_plan;

static int stage_kind(const slr_config *cfg, int si) {
  return strcmp(cfg->train.stages.v[si], "pretrain") == 0 ? STAGE_PRETRAIN : STAGE_ADAPT;
}

static stage_plan plan_of(const slr_config *cfg, int stage) {
  const int pre = stage == STAGE_PRETRAIN;
  stage_plan p = {pre ? "pretrain" : "adapt",
                  pre ? cfg->train.pretrain.epochs : cfg->train.adapt.epochs,
                  pre ? cfg->train.pretrain.iters : cfg->train.adapt.iters,
                  pre ? cfg->train.pretrain.batch_size : cfg->train.adapt.batch_size,
                  pre ? cfg->train.pretrain.instances : cfg->train.adapt.instances};
  return p;
}

/* At a safe point: checkpoint every checkpoint.every_steps steps, and on a
 * stop request checkpoint and stop. */
static int safe_point(tr_job *j, int end_of_epoch) {
  const int sig = slr_stop_agree(j->ctx->world);
  const int64_t every = j->cfg->checkpoint.every_steps;
  if (end_of_epoch || sig || (every > 0 && j->pos.position % every == 0))
    SLR_TRY(tr_checkpoint_write(j));
  if (!sig) return 0;
  j->stop_signal = sig;
  return slr_error_set(SLR_ERR_STOP, NULL, 0,
                       "stopped on %s at step %lld after writing a checkpoint; run the same "
                       "command again to resume",
                       sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "a signal",
                       (long long)j->pos.position);
}

/* The weights a stage starts from: the checkpoint being resumed, the end of
 * pretraining, model.pretrained, or the seeded initialisation. */
static int stage_weights(tr_job *j, int si, int resumed) {
  const slr_config *cfg = j->cfg;
  const int pretrain = j->pos.stage == STAGE_PRETRAIN;
  const char *who = pretrain ? "pretrain" : "adapt";
  char pre[SLR_PATH_MAX + 16];
  if (resumed) return tr_checkpoint_read_state(j, j->resume_path);
  if (!pretrain && si > 0) {
    snprintf(pre, sizeof pre, "%s/pretrain.h5", j->run);
    SLR_TRY(tr_model_load(&j->model, j->ctx, pre, 0));
    slr_info("%s starts from %s", who, pre);
  } else if (cfg->model.pretrained[0]) {
    SLR_TRY(tr_model_load(&j->model, j->ctx, cfg->model.pretrained, SLR_LOAD_BACKBONE_ONLY));
    slr_info("%s starts from %s", who, cfg->model.pretrained);
  } else {
    slr_warn("%s starts from random weights (model.pretrained is empty)", who);
    SLR_TRY(tr_model_broadcast(&j->model));
  }
  return 0;
}

static int stage_setup(tr_job *j, int si, const stage_plan *p) {
  const int resumed = j->resumed_stage == si;
  j->resumed_stage = -1;
  j->pos.stage_index = si;
  j->pos.stage = stage_kind(j->cfg, si);
  if (!resumed) {
    j->pos.epoch = j->pos.step = 0;
    j->labels.has_prev = 0;
  }
  const int classes =
      j->pos.stage == STAGE_PRETRAIN ? j->data.source.split[SLR_TRAIN].num_pids : 0;
  tr_model_free(&j->model);
  SLR_TRY(tr_model_init(&j->model, j->ctx, j->cfg, j->pos.stage, classes));
  SLR_TRY(stage_weights(j, si, resumed));
  tr_steps_free(&j->steps);
  SLR_TRY(slr_agree(j->ctx->world, tr_steps_init(&j->steps, j->ctx, p->B, j->model.net.feat_dim,
                                                  classes)));
  const int64_t most = j->steps.nloc > j->cfg->eval.batch_size ? j->steps.nloc : j->cfg->eval.batch_size;
  SLR_TRY(slr_agree(j->ctx->world, slr_model_plan(&j->model.net, (int)most, j->cfg->data.height,
                                                  j->cfg->data.width, 1)));
  slr_info("== %s: %lld epochs x %lld iterations, global batch %lld (%lld x %lld), %d rank%s",
           p->name, (long long)p->epochs, (long long)p->iters, (long long)p->B,
           (long long)(p->B / p->instances), (long long)p->instances, j->ctx->size,
           j->ctx->size > 1 ? "s" : "");
  return 0;
}

/* The steps of an epoch from j->pos.step on, with the loader already
 * running. Collective. */
static int epoch_steps(tr_job *j, const stage_plan *p, slr_loader *loader, float lr) {
  char label[64];
  snprintf(label, sizeof label, "%s epoch %lld/%lld", p->name, (long long)j->pos.epoch + 1,
           (long long)p->epochs);
  slr_progress prog;
  slr_progress_begin(&prog, label, p->iters, "it", j->cfg->run.progress_interval);
  int rc = 0;
  while (!rc && j->pos.step < p->iters) {
    const float *x;
    const int64_t *idx;
    int64_t n;
    rc = slr_agree(j->ctx->world, slr_loader_next(loader, j->pos.epoch, j->pos.step, p->iters, &x, &idx, &n));
    if (rc) break;
    double a = 0, b = 0;
    rc = j->pos.stage == STAGE_PRETRAIN ? tr_pretrain_step(j, x, idx, n, &a, &b, lr)
                                        : tr_adapt_step(j, x, idx, n, &a, lr);
    if (!rc) rc = check_finite(j, a + b);
    rc = slr_agree(j->ctx->world, rc);
    if (rc) break;
    j->pos.sum_a += a;
    j->pos.sum_b += b;
    j->pos.nsteps++;
    j->pos.step++;
    j->pos.position++;
    slr_run_progress_set((double)j->total_steps, (double)j->pos.position);
    slr_progress_update(&prog, j->pos.step);
    if (j->pos.step < p->iters) rc = safe_point(j, 0);
  }
  if (!rc) slr_progress_end(&prog);
  return rc;
}

static int log_epoch(tr_job *j, const stage_plan *p, double lr, double seconds, int64_t steps_run) {
  const tr_position *q = &j->pos;
  const double a = q->nsteps ? q->sum_a / (double)q->nsteps : 0;
  const double b = q->nsteps ? q->sum_b / (double)q->nsteps : 0;
  const double ips = seconds > 0 ? (double)(steps_run * p->B) / seconds : 0;
  slr_json js;
  tr_json_event(&js, "train", p->name, q->epoch, q->position);
  slr_json_num(&js, "lr", lr);
  if (q->stage == STAGE_PRETRAIN) {
    slr_json_num(&js, "loss_ce", a);
    slr_json_num(&js, "loss_triplet", b);
    slr_info("pretrain epoch %lld/%lld: loss ce %.4f triplet %.4f, lr %.2e, %.1f img/s",
             (long long)q->epoch + 1, (long long)p->epochs, a, b, lr, ips);
  } else {
    slr_json_num(&js, "loss", a);
    slr_json_int(&js, "clusters", j->labels.k);
    slr_info("adapt epoch %lld/%lld: loss %.4f, lr %.2e, %.1f img/s", (long long)q->epoch + 1,
             (long long)p->epochs, a, lr, ips);
  }
  slr_json_num(&js, "seconds", seconds);
  slr_json_num(&js, "images_per_s", ips);
  slr_json_object_end(&js);
  return tr_log_json(j, &js);
}

/* One epoch (or what is left of it after a resume). Collective. */
static int run_epoch(tr_job *j, const stage_plan *p) {
  const slr_config *cfg = j->cfg;
  const int adapt = j->pos.stage == STAGE_ADAPT;
  if (adapt && j->pos.step == 0) SLR_TRY(tr_adapt_labels(j, j->pos.epoch));
  const slr_split *train = adapt ? &j->data.target.split[SLR_TRAIN] : &j->data.source.split[SLR_TRAIN];
  const int32_t *ids = adapt ? tr_labels_train(&j->labels, &j->refine) : train->pids;
  slr_id_sampler sampler;
  SLR_TRY(slr_agree(j->ctx->world, slr_id_sampler_init(&sampler, ids, train->camids, train->n,
                                                       (int)(p->B / p->instances), (int)p->instances)));
  slr_loader *loader = NULL;
  int rc = slr_loader_create(&loader, adapt ? &j->data.b_target : &j->data.b_source, &sampler,
                             (uint64_t)cfg->run.seed + (uint64_t)j->pos.stage * 1000003u,
                             j->ctx->rank, j->ctx->size, cfg->data.workers, cfg->data.prefetch);
  rc = slr_agree(j->ctx->world, rc);
  const double lr = tr_model_lr(&j->model, j->pos.epoch);
  if (j->pos.step == 0) j->pos.sum_a = j->pos.sum_b = 0, j->pos.nsteps = 0;
  const double t0 = slr_now();
  const int64_t step0 = j->pos.step;
  if (!rc) rc = epoch_steps(j, p, loader, (float)lr);
  if (loader) slr_loader_free(loader);
  slr_id_sampler_free(&sampler);
  SLR_TRY(rc);
  SLR_TRY(log_epoch(j, p, lr, slr_now() - t0, j->pos.step - step0));
  if (adapt) {
    tr_adapt_epoch_end(j);
    const int64_t e = j->pos.epoch;
    if (e + 1 == p->epochs || (cfg->eval.every > 0 && (e + 1) % cfg->eval.every == 0))
      SLR_TRY(tr_evaluate(j, p->name, e));
  }
  /* the checkpoint of the epoch's end holds the position after it */
  j->pos.step = p->iters;
  return safe_point(j, 1);
}

static int run_stage(tr_job *j, int si) {
  const stage_plan p = plan_of(j->cfg, stage_kind(j->cfg, si));
  SLR_TRY(stage_setup(j, si, &p));
  for (; j->pos.epoch < p.epochs; j->pos.epoch++, j->pos.step = 0) SLR_TRY(run_epoch(j, &p));
  if (j->pos.stage != STAGE_PRETRAIN) return 0;
  char path[SLR_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/pretrain.h5", j->run);
  SLR_TRY(slr_model_save(&j->model.net, j->ctx->world, path));
  slr_info("pretrained weights: %s", path);
  return tr_evaluate(j, p.name, p.epochs > 0 ? p.epochs - 1 : 0);
}

/* ---- the run -------------------------------------------------------------------- */

static int write_summary(tr_job *j) {
  slr_json js;
  slr_json_init(&js);
  slr_json_object_begin(&js, NULL);
  slr_json_int(&js, "position", j->pos.position);
  slr_json_str(&js, "stage", j->cfg->train.stages.v[j->pos.stage_index]);
  if (j->have_eval) {
    slr_json_object_begin(&js, "eval");
    slr_json_str(&js, "stage", j->last_eval_stage);
    slr_json_int(&js, "epoch", j->last_eval_epoch + 1);
    slr_json_object_end(&js);
    slr_json_num(&js, "mAP", j->last_eval.map);
    slr_json_num(&js, "mINP", j->last_eval.minp);
    slr_json_array_begin(&js, "cmc");
    for (int r = 0; r < SLR_EVAL_MAX_RANK; r++) slr_json_num(&js, NULL, j->last_eval.cmc[r]);
    slr_json_array_end(&js);
  }
  if (j->labels.have_quality) {
    tr_json_quality(&js, "dbscan", &j->labels.q_dbscan);
    tr_json_quality(&js, "refined", &j->labels.q_refined);
  }
  slr_json_object_end(&js);
  int rc = slr_json_ok(&js) ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  if (!rc && j->ctx->rank == 0) {
    char path[SLR_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/summary.json", j->run);
    const size_t len = strlen(slr_json_text(&js));
    char *text = malloc(len + 2);
    if (!text)
      rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
    else {
      memcpy(text, slr_json_text(&js), len);
      text[len] = '\n';
      rc = slr_write_file_atomic(path, text, len + 1);
      free(text);
    }
  }
  slr_json_free(&js);
  return slr_agree(j->ctx->world, rc);
}

/* RUN/status.json: how the run ended (done, stopped after a checkpoint, or
 * failed with its message), for wrappers that only see the launcher's exit
 * code. The run's own error stays the one reported. Collective. */
static void record_status(tr_job *j, int rc) {
  char msg[1024];
  slr_strlcpy(msg, rc ? slr_error_text() : "", sizeof msg);
  const int code = slr_exit_code(rc);
  const char *state = rc == 0 ? "done" : rc == SLR_ERR_STOP ? "stopped" : "failed";
  const char *ck = rc == SLR_ERR_STOP && j->last_ckpt[0] ? j->last_ckpt : NULL;
  if (slr_run_status_write(j->ctx->world, j->run, state, code, j->stop_signal, j->pos.position, ck,
                           rc ? msg : NULL))
    slr_warn("could not write %s/status.json", j->run);
  /* the run's error is the one to report */
  if (rc) slr_error_set(rc, NULL, 0, "%s", msg);
}

/* RUN/config.yaml -> RUN/config-POSITION.yaml. Local (rank 0). */
static int keep_old_config(tr_job *j) {
  char from[SLR_PATH_MAX + 16], to[SLR_PATH_MAX + 48];
  snprintf(from, sizeof from, "%s/config.yaml", j->run);
  snprintf(to, sizeof to, "%s/config-%lld.yaml", j->run, (long long)j->pos.position);
  if (rename(from, to) != 0) return slr_error_errno("rename", __FILE__, __LINE__);
  return 0;
}

/* The run folder, the data, and the position to resume from. */
static int job_open(tr_job *j, const char *run_dir, int resume) {
  const slr_ctx *ctx = j->ctx;
  const slr_config *cfg = j->cfg;
  int rc = slr_strlcpy(j->run, run_dir, sizeof j->run);
  if (!rc && !run_dir[0]) rc = SLR_FAIL(SLR_ERR_USAGE, "slr train: --out is empty");
  snprintf(j->metrics_path, sizeof j->metrics_path, "%s/metrics.jsonl", run_dir);
  if (!rc) rc = slr_refine_params_from_config(&cfg->refine, &j->refine);
  SLR_TRY(slr_agree(ctx->world, rc));
  slr_threads_set((int)cfg->run.threads, ctx->node_size);
  SLR_TRY(tr_data_init(&j->data, ctx, cfg));
  if (j->data.has_target)
    SLR_TRY(slr_agree(ctx->world, tr_labels_init(&j->labels, j->data.target.split[SLR_TRAIN].n)));
  /* the run folder only once the data are there (no partial output), and
   * its log */
  if (ctx->rank == 0) {
    char ck[SLR_PATH_MAX + 16], log[SLR_PATH_MAX + 16];
    snprintf(ck, sizeof ck, "%s/checkpoints", run_dir);
    snprintf(log, sizeof log, "%s/log.txt", run_dir);
    rc = slr_mkdir_p(ck);
    if (!rc) rc = slr_log_file_open(log);
  }
  SLR_TRY(slr_agree(ctx->world, rc));
  j->run_ready = 1;
  if (resume) {
    int64_t pos;
    SLR_TRY(slr_ckpt_newest(ctx->world, run_dir, SLR_CHECKPOINT_VERSION, j->resume_path,
                            sizeof j->resume_path, &pos));
    if (pos >= 0) {
      SLR_TRY(tr_checkpoint_read_header(j, j->resume_path));
      slr_info("resuming from %s (%s, epoch %lld, step %lld)", j->resume_path,
               cfg->train.stages.v[j->resumed_stage], (long long)j->pos.epoch + 1,
               (long long)j->pos.step);
    }
  }
  /* the resolved configuration (a forced change keeps the old one beside
   * it); a fresh run starts a fresh log */
  if (ctx->rank == 0 && j->config_change[0]) rc = keep_old_config(j);
  if (!rc && ctx->rank == 0) rc = slr_config_save(cfg, run_dir);
  if (!rc && ctx->rank == 0 && j->resumed_stage < 0) rc = slr_file_truncate(j->metrics_path, 0);
  SLR_TRY(slr_agree(ctx->world, rc));
  if (!j->config_change[0]) return 0;
  slr_json js;
  tr_json_event(&js, "config_changed", NULL, j->pos.epoch, j->pos.position);
  slr_json_str(&js, "changes", j->config_change);
  slr_json_object_end(&js);
  return tr_log_json(j, &js);
}

static void job_close(tr_job *j) {
  tr_steps_free(&j->steps);
  tr_labels_free(&j->labels);
  tr_model_free(&j->model);
  tr_data_free(&j->data);
}

int slr_train_run(const slr_ctx *ctx, const slr_config *cfg, const char *run_dir, unsigned flags) {
  if (cfg->train.stages.n == 0)
    return SLR_FAIL(SLR_ERR_CONFIG, "train.stages is empty: nothing to train");
  tr_job *j = calloc(1, sizeof *j);
  if (!j) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  j->ctx = ctx;
  j->cfg = cfg;
  j->resumed_stage = -1;
  j->force_config = (flags & SLR_TRAIN_FORCE_CONFIG) != 0;
  const int resume = (flags & SLR_TRAIN_RESUME) || cfg->checkpoint.resume == SLR_RESUME_AUTO;
  for (int si = 0; si < cfg->train.stages.n; si++) {
    const stage_plan p = plan_of(cfg, stage_kind(cfg, si));
    j->total_steps += p.epochs * p.iters;
  }
  int rc = job_open(j, run_dir, resume);
  int si = j->resumed_stage >= 0 ? j->resumed_stage : 0;
  for (; !rc && si < cfg->train.stages.n; si++) rc = run_stage(j, si);
  if (!rc) {
    char path[SLR_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/final.h5", j->run);
    rc = slr_model_save(&j->model.net, ctx->world, path);
    if (!rc) rc = write_summary(j);
    if (!rc) slr_info("done: %s (final weights final.h5, metrics metrics.jsonl)", j->run);
  }
  slr_run_progress_clear();
  if (j->run_ready) record_status(j, rc);
  job_close(j);
  free(j);
  return rc;
}
