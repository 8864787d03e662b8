/* Optimizers (Adam with L2 weight decay added to the gradient, SGD with
 * momentum and Nesterov) over the one flat parameter buffer, following the
 * arithmetic of torch.optim (single-tensor path, float32 tensors, Python
 * double scalars), and the learning-rate schedules. */
#include <math.h>

#include "slr/nn.h"

void slr_optimizer_init(slr_optimizer *o, slr_opt_kind kind, float weight_decay) {
  o->kind = kind;
  o->beta1 = 0.9f;
  o->beta2 = 0.999f;
  o->eps = 1e-8f;
  o->momentum = 0.9f;
  o->dampening = 0.0f;
  o->nesterov = 0;
  o->weight_decay = weight_decay;
  o->step = 0;
}

int slr_optimizer_state_per_param(const slr_optimizer *o) {
  return o->kind == SLR_OPT_ADAM ? 2 : 1;
}

static void adam_range(const slr_optimizer *o, float *p, const float *g, float *m, float *v,
                       int64_t n, double lr, double wd) {
  double b1 = o->beta1, b2 = o->beta2, t = (double)o->step;
  /* torch computes these scalars in double and applies them as float */
  float fb1 = (float)b1, f1b1 = (float)(1.0 - b1), fb2 = (float)b2, f1b2 = (float)(1.0 - b2);
  double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
  float step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2), eps = o->eps, fwd = (float)wd;
#pragma omp for schedule(static) nowait
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    if (wd != 0.0) gi = gi + fwd * p[i];
    m[i] = m[i] * fb1 + f1b1 * gi;
    v[i] = v[i] * fb2 + f1b2 * (gi * gi);
    float denom = sqrtf(v[i]) / bc2s + eps;
    p[i] = p[i] + (-step_size) * m[i] / denom;
  }
}

static void sgd_range(const slr_optimizer *o, float *p, const float *g, float *buf, int64_t n,
                      double lr, double wd, int first) {
  float mom = o->momentum, damp = (float)(1.0 - (double)o->dampening), fwd = (float)wd,
        flr = (float)lr;
#pragma omp for schedule(static) nowait
  for (int64_t i = 0; i < n; i++) {
    float d = g[i];
    if (wd != 0.0) d = d + fwd * p[i];
    if (mom != 0.0f) {
      buf[i] = first ? d : buf[i] * mom + damp * d;
      d = o->nesterov ? d + mom * buf[i] : buf[i];
    }
    p[i] = p[i] + (-flr) * d;
  }
}

void slr_optimizer_step(slr_optimizer *o, float *params, const float *grads, float *state,
                        int64_t P, const slr_param_group *groups, int ngroups, float lr) {
  int first = o->step == 0;
  o->step++;
  /* one thread team for all groups; each element is updated by one thread
   * with the same arithmetic, so the result does not depend on the split */
#pragma omp parallel
  for (int k = 0; k < ngroups; k++) {
    const slr_param_group *gr = &groups[k];
    if (gr->lr_mult == 0.0f || gr->count == 0) continue;
    double glr = (double)lr * gr->lr_mult, gwd = (double)o->weight_decay * gr->wd_mult;
    float *p = params + gr->offset;
    const float *g = grads + gr->offset;
    if (o->kind == SLR_OPT_ADAM)
      adam_range(o, p, g, state + gr->offset, state + P + gr->offset, gr->count, glr, gwd);
    else
      sgd_range(o, p, g, state + gr->offset, gr->count, glr, gwd, first);
  }
}

double slr_lr_at(const slr_lr_schedule *s, int64_t t) {
  double lr = s->base_lr;
  switch (s->kind) {
  case SLR_LR_CONSTANT:
    break;
  case SLR_LR_STEP:
    lr *= pow(s->gamma, (double)(s->step_size > 0 ? t / s->step_size : 0));
    break;
  case SLR_LR_MULTISTEP: {
    int k = 0;
    for (int i = 0; i < s->nmilestones; i++) k += s->milestones[i] <= t;
    lr *= pow(s->gamma, k);
    break;
  }
  case SLR_LR_COSINE:
    lr = s->eta_min + (s->base_lr - s->eta_min) * (1.0 + cos(3.14159265358979323846 * (double)t / (double)s->t_max)) / 2;
    break;
  }
  if (s->warmup_iters > 0 && t < s->warmup_iters) {
    double a = (double)t / (double)s->warmup_iters;
    lr *= s->warmup_factor * (1.0 - a) + a;
  }
  return lr;
}
