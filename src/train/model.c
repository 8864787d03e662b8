/* The model of the running stage: the network the configuration describes,
 * the gradient reduction over the ranks, the optimizer with its state and
 * the stage's learning-rate schedule. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
  const char *prefix = stage == STAGE_PRETRAIN ? "solver.pretrain" : "solver.adapt";
  switch (sc->schedule) {
  case SLR_SCHED_CONSTANT: s->kind = SLR_LR_CONSTANT; break;
  case SLR_SCHED_STEP: s->kind = SLR_LR_STEP; break;
  case SLR_SCHED_COSINE: s->kind = SLR_LR_COSINE; break;
  case SLR_SCHED_MULTISTEP:
    s->kind = SLR_LR_MULTISTEP;
    s->nmilestones = sc->milestones.n;
    for (int i = 0; i < sc->milestones.n; i++) s->milestones[i] = sc->milestones.v[i];
    break;
  default:
    return SLR_FAIL(SLR_ERR_CONFIG, "%s.schedule: %d is not one of constant|step|multistep|cosine",
                    prefix, (int)sc->schedule);
  }
  return 0;
}

static int setup_optimizer(tr_model *m, const slr_config *cfg) {
  const slr_opt_kind kind = cfg->solver.optimizer == SLR_OPTIM_SGD ? SLR_OPT_SGD : SLR_OPT_ADAM;
  slr_optimizer_init(&m->opt, kind, (float)cfg->solver.weight_decay);
  if (kind == SLR_OPT_ADAM) {
    m->opt.beta1 = (float)cfg->solver.beta1;
    m->opt.beta2 = (float)cfg->solver.beta2;
  } else {
    m->opt.momentum = (float)cfg->solver.momentum;
    m->opt.nesterov = cfg->solver.nesterov;
  }
  const int64_t ns = m->net.nparams * slr_optimizer_state_per_param(&m->opt);
  m->opt_state = calloc((size_t)(ns > 0 ? ns : 1), sizeof(float));
  if (!m->opt_state) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the optimizer state");
  m->opt_nstate = ns;
  return slr_model_param_groups(&m->net, &m->groups, &m->ngroups);
}

int tr_model_init(tr_model *m, const slr_ctx *ctx, const slr_config *cfg, int stage,
                  int num_classes) {
  memset(m, 0, sizeof *m);
  const int64_t epochs = stage == STAGE_PRETRAIN ? cfg->train.pretrain.epochs : cfg->train.adapt.epochs;
  int rc = build_schedule(cfg, stage, epochs, &m->sched);
  if (!rc) rc = slr_train_model_init(&m->net, cfg, num_classes);
  rc = slr_agree(ctx->world, rc);
  if (rc) return rc;
  rc = slr_dp_init(&m->dp, &m->net, ctx->world, 0, 1);
  if (rc) {
    slr_model_free(&m->net);
    return rc;
  }
  m->live = 1;
  return slr_agree(ctx->world, setup_optimizer(m, cfg));
}

int tr_model_load(tr_model *m, const slr_ctx *ctx, const char *path, unsigned flags) {
  SLR_TRY(slr_model_load(&m->net, ctx->world, path, flags));
  return tr_model_broadcast(m);
}

int tr_model_broadcast(tr_model *m) { return slr_dp_broadcast(&m->dp); }

double tr_model_lr(const tr_model *m, int64_t epoch) { return slr_lr_at(&m->sched, epoch); }

void tr_model_free(tr_model *m) {
  if (m->live) {
    slr_dp_free(&m->dp);
    slr_model_free(&m->net);
  }
  free(m->opt_state);
  free(m->groups);
  memset(m, 0, sizeof *m);
}
