/* ResNet backbones (torchvision structure and state_dict names, IBN-a) with
 * the Re-ID head, as a list of operations over activation slots: the
 * forward pass runs the list, the backward pass runs it in reverse. All
 * parameters live in one buffer (gradients in another of the same layout),
 * running statistics in a third; activations, their gradients and the
 * statistics saved for backward are carved from one block planned once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_dnnl.h"
#include "nn_internal.h"
#include "slr/nn.h"

typedef enum {
  OP_CONV,
  OP_BN,
  OP_IBN,
  OP_RELU,
  OP_MAXPOOL,
  OP_ADD,
  OP_AVGPOOL,
  OP_GEM,
  OP_LINEAR,
} op_kind;

struct slr_op {
  op_kind kind;
  int in, in2, out;           /* slots; RELU works in place (in == out) */
  int64_t w, b, w2, b2;       /* parameter offsets (-1: none); IBN: IN in w/b, BN in w2/b2 */
  int64_t rm, rv;             /* buffer offsets of running mean / var */
  int cnt;                    /* index of num_batches_tracked */
  int k, stride, pad;         /* CONV, MAXPOOL */
  int half;                   /* IBN: instance-normalised channels */
  int frozen_bias;            /* BN: no gradient for the bias (BNNeck) */
  float *mean, *rstd;         /* saved statistics: BN (C); IBN: IN part (N, half) */
  float *mean2, *rstd2;       /* IBN: BN part (C - half) */
  int32_t *argmax;            /* MAXPOOL (N, C, OH, OW) */
  int backend;                /* CONV: SLR_CONV_GEMM, _DNNL or _DNNL_BLOCKED */
  slr_dnnl_conv *dc, *dc_tail; /* CONV on oneDNN: for the planned batch, and
                                  for the last smaller batch seen */
};

/* Per-kind time and multiply-adds, for benchmarks (slr_model_profile_*). */
#define NOPKINDS 9
static const char *op_names[NOPKINDS] = {"conv2d", "batchnorm", "ibn", "relu", "maxpool",
                                         "add", "avgpool", "gem", "linear"};
static int prof_on = 0;
static double prof_fwd[NOPKINDS], prof_bwd[NOPKINDS], prof_macs[NOPKINDS];

void slr_model_profile_enable(int on) { prof_on = on; }
void slr_model_profile_reset(void) {
  memset(prof_fwd, 0, sizeof prof_fwd);
  memset(prof_bwd, 0, sizeof prof_bwd);
  memset(prof_macs, 0, sizeof prof_macs);
}
int slr_model_profile_get(slr_op_profile *out, int max) {
  int n = 0;
  for (int k = 0; k < NOPKINDS && n < max; k++)
    out[n++] = (slr_op_profile){op_names[k], prof_fwd[k], prof_bwd[k], prof_macs[k]};
  return n;
}


/* ---- configuration --------------------------------------------------------------- */

static const char *arch_names[] = {"resnet18", "resnet34", "resnet50", "resnet50_ibn_a"};

void slr_model_config_default(slr_model_config *c, slr_arch arch) {
  memset(c, 0, sizeof *c);
  c->arch = arch;
  c->width = 64;
  c->last_stride = 2;
  c->pool = SLR_POOL_AVG;
  c->neck = 0;
  c->num_classes = 0;
  c->gem_p = 3.0f;
  c->bn_momentum = 0.1f;
}

int slr_arch_parse(const char *name, slr_arch *arch) {
  for (int i = 0; i < 4; i++)
    if (!strcmp(name, arch_names[i])) {
      *arch = (slr_arch)i;
      return 0;
    }
  return SLR_FAIL(SLR_ERR_USAGE,
                  "unknown architecture '%s' (resnet18, resnet34, resnet50, resnet50_ibn_a)", name);
}

const char *slr_arch_name(slr_arch arch) {
  return (unsigned)arch < 4 ? arch_names[arch] : "unknown";
}

int slr_pool_parse(const char *name, slr_pool_kind *pool) {
  if (!strcmp(name, "avg")) *pool = SLR_POOL_AVG;
  else if (!strcmp(name, "gem")) *pool = SLR_POOL_GEM;
  else return SLR_FAIL(SLR_ERR_USAGE, "unknown pooling '%s' (avg, gem)", name);
  return 0;
}

/* ---- building the operation list ------------------------------------------------------ */

typedef struct {
  slr_model *m;
  int cap_t, cap_o, cap_s;
  int err;
} builder;

/* dst = a + sep + c; a name that does not fit is a build error */
static void join(builder *b, char *dst, size_t len, const char *a, const char *sep, const char *c) {
  int n = snprintf(dst, len, "%s%s%s", a, sep, c);
  if (n < 0 || (size_t)n >= len) b->err = SLR_FAIL(SLR_ERR, "model: tensor name %s%s%s too long", a, sep, c);
}

static int add_tensor(builder *b, const char *name, slr_tensor_kind kind, int ndims,
                      int64_t s0, int64_t s1, int64_t s2, int64_t s3) {
  slr_model *m = b->m;
  if (b->err) return -1;
  if (m->ntensors == b->cap_t) {
    int cap = b->cap_t ? 2 * b->cap_t : 64;
    slr_tensor *t = realloc(m->tensors, sizeof(slr_tensor) * (size_t)cap);
    if (!t) {
      b->err = SLR_FAIL(SLR_ERR_NOMEM, "out of memory building the model");
      return -1;
    }
    m->tensors = t, b->cap_t = cap;
  }
  slr_tensor *t = &m->tensors[m->ntensors];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->kind = kind;
  t->ndims = ndims;
  int64_t sh[4] = {s0, s1, s2, s3};
  t->numel = 1;
  for (int i = 0; i < ndims; i++) t->shape[i] = sh[i], t->numel *= sh[i];
  t->head = !strncmp(name, "pool.", 5) || !strncmp(name, "neck.", 5) ||
            !strncmp(name, "classifier.", 11);
  if (kind == SLR_TENSOR_PARAM) t->offset = m->nparams, m->nparams += t->numel;
  else if (kind == SLR_TENSOR_BUFFER) t->offset = m->nbuffers, m->nbuffers += t->numel;
  else t->offset = m->ncounts++;
  return m->ntensors++;
}

static int64_t param(builder *b, const char *prefix, const char *leaf, int ndims, int64_t s0,
                     int64_t s1, int64_t s2, int64_t s3) {
  char name[96];
  join(b, name, sizeof name, prefix, *prefix ? "." : "", leaf);
  int i = add_tensor(b, name, SLR_TENSOR_PARAM, ndims, s0, s1, s2, s3);
  return i < 0 ? -1 : b->m->tensors[i].offset;
}

static int64_t buffer(builder *b, const char *prefix, const char *leaf, int64_t n) {
  char name[96];
  join(b, name, sizeof name, prefix, ".", leaf);
  int i = add_tensor(b, name, SLR_TENSOR_BUFFER, 1, n, 0, 0, 0);
  return i < 0 ? -1 : b->m->tensors[i].offset;
}

static int counter(builder *b, const char *prefix) {
  char name[96];
  join(b, name, sizeof name, prefix, ".", "num_batches_tracked");
  int i = add_tensor(b, name, SLR_TENSOR_COUNT, 0, 0, 0, 0, 0);
  return i < 0 ? -1 : (int)b->m->tensors[i].offset;
}

static int add_slot(builder *b, int C) {
  slr_model *m = b->m;
  if (b->err) return 0;
  if (m->nslots == b->cap_s) {
    int cap = b->cap_s ? 2 * b->cap_s : 64;
    slr_slot *s = realloc(m->slots, sizeof(slr_slot) * (size_t)cap);
    if (!s) {
      b->err = SLR_FAIL(SLR_ERR_NOMEM, "out of memory building the model");
      return 0;
    }
    m->slots = s, b->cap_s = cap;
  }
  slr_slot *s = &m->slots[m->nslots];
  memset(s, 0, sizeof *s);
  s->C = C;
  return m->nslots++;
}

static struct slr_op *add_op(builder *b, op_kind kind, int in) {
  slr_model *m = b->m;
  if (b->err) return NULL;
  if (m->nops == b->cap_o) {
    int cap = b->cap_o ? 2 * b->cap_o : 64;
    struct slr_op *o = realloc(m->ops, sizeof(struct slr_op) * (size_t)cap);
    if (!o) {
      b->err = SLR_FAIL(SLR_ERR_NOMEM, "out of memory building the model");
      return NULL;
    }
    m->ops = o, b->cap_o = cap;
  }
  struct slr_op *o = &m->ops[m->nops++];
  memset(o, 0, sizeof *o);
  o->kind = kind;
  o->in = o->in2 = o->out = in;
  o->w = o->b = o->w2 = o->b2 = o->rm = o->rv = -1;
  o->cnt = -1;
  return o;
}

static int conv(builder *b, const char *name, int in, int OC, int k, int stride, int pad) {
  int C = b->m->slots[in].C;
  int64_t w = param(b, name, "weight", 4, OC, C, k, k);
  struct slr_op *o = add_op(b, OP_CONV, in);
  if (!o) return 0;
  o->w = w, o->k = k, o->stride = stride, o->pad = pad;
  o->out = add_slot(b, OC);
  return o->out;
}

static void relu(builder *b, int slot) { add_op(b, OP_RELU, slot); }

static int bn(builder *b, const char *name, int in, int do_relu) {
  int C = b->m->slots[in].C;
  int64_t w = param(b, name, "weight", 1, C, 0, 0, 0);
  int64_t bb = param(b, name, "bias", 1, C, 0, 0, 0);
  int64_t rm = buffer(b, name, "running_mean", C), rv = buffer(b, name, "running_var", C);
  int cnt = counter(b, name);
  struct slr_op *o = add_op(b, OP_BN, in);
  if (!o) return 0;
  o->w = w, o->b = bb, o->rm = rm, o->rv = rv, o->cnt = cnt;
  int out = o->out = add_slot(b, C);
  if (do_relu) relu(b, out);
  return out;
}

/* IBN-a: instance norm on the first half of the channels, batch norm on the rest */
static int ibn(builder *b, const char *name, int in) {
  int C = b->m->slots[in].C, half = C / 2;
  char p_in[96], p_bn[96];
  join(b, p_in, sizeof p_in, name, ".", "IN");
  join(b, p_bn, sizeof p_bn, name, ".", "BN");
  int64_t w = param(b, p_in, "weight", 1, half, 0, 0, 0), bb = param(b, p_in, "bias", 1, half, 0, 0, 0);
  int64_t w2 = param(b, p_bn, "weight", 1, C - half, 0, 0, 0);
  int64_t b2 = param(b, p_bn, "bias", 1, C - half, 0, 0, 0);
  int64_t rm = buffer(b, p_bn, "running_mean", C - half), rv = buffer(b, p_bn, "running_var", C - half);
  int cnt = counter(b, p_bn);
  struct slr_op *o = add_op(b, OP_IBN, in);
  if (!o) return 0;
  o->w = w, o->b = bb, o->w2 = w2, o->b2 = b2, o->rm = rm, o->rv = rv, o->cnt = cnt, o->half = half;
  int out = o->out = add_slot(b, C);
  relu(b, out);
  return out;
}

static int add(builder *b, int x, int y) {
  struct slr_op *o = add_op(b, OP_ADD, x);
  if (!o) return 0;
  o->in2 = y;
  int out = o->out = add_slot(b, b->m->slots[x].C);
  relu(b, out);
  return out;
}

static int block(builder *b, const char *name, int in, int planes, int stride, int bottleneck,
                 int use_ibn) {
  char n[96];
  int C = b->m->slots[in].C, expansion = bottleneck ? 4 : 1, x;
  if (bottleneck) {
    join(b, n, sizeof n, name, ".", "conv1");
    x = conv(b, n, in, planes, 1, 1, 0);
    join(b, n, sizeof n, name, ".", "bn1");
    x = use_ibn ? ibn(b, n, x) : bn(b, n, x, 1);
    join(b, n, sizeof n, name, ".", "conv2");
    x = conv(b, n, x, planes, 3, stride, 1);
    join(b, n, sizeof n, name, ".", "bn2");
    x = bn(b, n, x, 1);
    join(b, n, sizeof n, name, ".", "conv3");
    x = conv(b, n, x, planes * 4, 1, 1, 0);
    join(b, n, sizeof n, name, ".", "bn3");
    x = bn(b, n, x, 0);
  } else {
    join(b, n, sizeof n, name, ".", "conv1");
    x = conv(b, n, in, planes, 3, stride, 1);
    join(b, n, sizeof n, name, ".", "bn1");
    x = bn(b, n, x, 1);
    join(b, n, sizeof n, name, ".", "conv2");
    x = conv(b, n, x, planes, 3, 1, 1);
    join(b, n, sizeof n, name, ".", "bn2");
    x = bn(b, n, x, 0);
  }
  int id = in;
  if (stride != 1 || C != planes * expansion) {
    join(b, n, sizeof n, name, ".", "downsample.0");
    id = conv(b, n, in, planes * expansion, 1, stride, 0);
    join(b, n, sizeof n, name, ".", "downsample.1");
    id = bn(b, n, id, 0);
  }
  return add(b, x, id);
}

static void init_weights(slr_model *m, uint64_t seed) {
  for (int i = 0; i < m->ntensors; i++) {
    slr_tensor *t = &m->tensors[i];
    const char *leaf = strrchr(t->name, '.');
    leaf = leaf ? leaf + 1 : t->name;
    if (t->kind == SLR_TENSOR_COUNT) {
      m->counts[t->offset] = 0;
      continue;
    }
    float *p = (t->kind == SLR_TENSOR_PARAM ? m->params : m->buffers) + t->offset;
    slr_rng r;
    slr_rng_init(&r, seed, (uint64_t)i, 0);
    if (t->kind == SLR_TENSOR_BUFFER) {
      float v = !strcmp(leaf, "running_var") ? 1.0f : 0.0f;
      for (int64_t k = 0; k < t->numel; k++) p[k] = v;
    } else if (!strcmp(t->name, "pool.p")) {
      p[0] = m->cfg.gem_p;
    } else if (!strcmp(t->name, "classifier.weight")) {
      for (int64_t k = 0; k < t->numel; k++) p[k] = 0.001f * slr_rng_normal(&r);
    } else if (t->ndims == 4) {
      /* Kaiming normal, fan_out, ReLU gain */
      float sd = (float)sqrt(2.0 / (double)(t->shape[0] * t->shape[2] * t->shape[3]));
      for (int64_t k = 0; k < t->numel; k++) p[k] = sd * slr_rng_normal(&r);
    } else {
      float v = !strcmp(leaf, "weight") ? 1.0f : 0.0f;
      for (int64_t k = 0; k < t->numel; k++) p[k] = v;
    }
  }
}

int slr_model_init(slr_model *m, const slr_model_config *cfg, uint64_t seed) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  m->bn_comm = MPI_COMM_NULL;
  if (cfg->width < 1 || (cfg->last_stride != 1 && cfg->last_stride != 2))
    return SLR_FAIL(SLR_ERR_CONFIG, "model: width %d / last_stride %d (1 or 2) invalid", cfg->width,
                    cfg->last_stride);
  static const int depth[4][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}, {3, 4, 6, 3}};
  int bottleneck = cfg->arch >= SLR_ARCH_RESNET50, W = cfg->width;
  builder b = {m, 0, 0, 0, 0};
  int x = add_slot(&b, 3);
  x = conv(&b, "conv1", x, W, 7, 2, 3);
  x = bn(&b, "bn1", x, 1);
  struct slr_op *mp = add_op(&b, OP_MAXPOOL, x);
  if (mp) {
    mp->k = 3, mp->stride = 2, mp->pad = 1;
    mp->out = add_slot(&b, W);
    x = mp->out;
  }
  for (int l = 0; l < 4; l++) {
    int planes = W << l, stride = l == 0 ? 1 : l == 3 ? cfg->last_stride : 2;
    for (int i = 0; i < depth[cfg->arch][l]; i++) {
      char name[64];
      snprintf(name, sizeof name, "layer%d.%d", l + 1, i);
      x = block(&b, name, x, planes, i == 0 ? stride : 1, bottleneck,
                cfg->arch == SLR_ARCH_RESNET50_IBN_A && l < 3);
    }
  }
  if (b.err) return b.err;
  m->feat_dim = m->slots[x].C;
  int D = m->feat_dim;
  struct slr_op *po = add_op(&b, cfg->pool == SLR_POOL_GEM ? OP_GEM : OP_AVGPOOL, x);
  if (po) {
    if (cfg->pool == SLR_POOL_GEM) po->w = param(&b, "pool", "p", 1, 1, 0, 0, 0);
    po->out = add_slot(&b, D);
    m->pooled_slot = m->neck_slot = po->out;
  }
  if (cfg->neck) {
    m->neck_slot = bn(&b, "neck", m->pooled_slot, 0);
    if (!b.err) {
      m->ops[m->nops - 1].frozen_bias = 1;
      m->tensors[m->ntensors - 4].frozen = 1; /* neck.bias */
    }
  }
  m->logits_slot = -1;
  if (cfg->num_classes > 0) {
    int64_t w = param(&b, "classifier", "weight", 2, cfg->num_classes, D, 0, 0);
    struct slr_op *o = add_op(&b, OP_LINEAR, m->neck_slot);
    if (o) {
      o->w = w;
      o->out = m->logits_slot = add_slot(&b, cfg->num_classes);
    }
  }
  if (b.err) {
    slr_model_free(m);
    return b.err;
  }
  SLR_ALLOC(m->params, sizeof(float) * (size_t)m->nparams);
  SLR_ALLOC(m->grads, sizeof(float) * (size_t)m->nparams);
  SLR_ALLOC(m->buffers, sizeof(float) * (size_t)(m->nbuffers + 1));
  SLR_ALLOC(m->counts, sizeof(int64_t) * (size_t)(m->ncounts + 1));
  memset(m->grads, 0, sizeof(float) * (size_t)m->nparams);
  init_weights(m, seed);
  return 0;
}

static void conv_plans_free(slr_model *m) {
  for (int i = 0; i < m->nops; i++) {
    slr_dnnl_conv_free(m->ops[i].dc), slr_dnnl_conv_free(m->ops[i].dc_tail);
    m->ops[i].dc = m->ops[i].dc_tail = NULL;
  }
}

void slr_model_free(slr_model *m) {
  if (m->ops) conv_plans_free(m);
  free(m->tensors), free(m->params), free(m->grads), free(m->buffers), free(m->counts);
  free(m->ops), free(m->slots), free(m->block), free(m->scratch);
  memset(m, 0, sizeof *m);
}

int slr_model_param_groups(const slr_model *m, slr_param_group **groups, int *ngroups) {
  int n = 0;
  for (int i = 0; i < m->ntensors; i++) n += m->tensors[i].kind == SLR_TENSOR_PARAM;
  slr_param_group *g;
  SLR_ALLOC(g, sizeof(slr_param_group) * (size_t)(n + 1));
  n = 0;
  for (int i = 0; i < m->ntensors; i++) {
    const slr_tensor *t = &m->tensors[i];
    if (t->kind != SLR_TENSOR_PARAM) continue;
    g[n].offset = t->offset, g[n].count = t->numel;
    g[n].lr_mult = t->frozen ? 0.0f : 1.0f, g[n].wd_mult = 1.0f;
    n++;
  }
  *groups = g, *ngroups = n;
  return 0;
}

/* ---- planning the activations ------------------------------------------------------- */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static size_t slot_bytes(const slr_model *m, int s, int N) {
  const slr_slot *sl = &m->slots[s];
  return align64(sizeof(float) * (size_t)N * sl->C * sl->H * sl->W);
}

/* Training: the gradient of an activation lives, in backward order, from
 * the first operation that touches it (its last reader in the forward
 * pass, or the start for the outputs that receive the loss gradients) to
 * the operation that made it; dead gradients give their room to later
 * ones (best fit). Returns the bytes; with base set, points the slots. */
static size_t grad_plan(slr_model *m, char *base, int N) {
  int ns = m->nslots, nops = m->nops;
  int *birth = malloc(sizeof(int) * (size_t)ns), *death = malloc(sizeof(int) * (size_t)ns);
  size_t *start = malloc(sizeof(size_t) * (size_t)ns), *len = malloc(sizeof(size_t) * (size_t)ns);
  size_t *fo = malloc(sizeof(size_t) * (size_t)ns), *fl = malloc(sizeof(size_t) * (size_t)ns);
  size_t top = 0;
  int nfree = 0, ok = birth && death && start && len && fo && fl;
  for (int s = 0; ok && s < ns; s++) birth[s] = -1, death[s] = nops + 1;
  for (int i = 0; ok && i < nops; i++) {
    int q3[3] = {m->ops[i].in, m->ops[i].in2, m->ops[i].out};
    for (int k = 0; k < 3; k++) {
      if (i > birth[q3[k]]) birth[q3[k]] = i;
      if (i < death[q3[k]]) death[q3[k]] = i;
    }
  }
  if (ok) {
    birth[m->pooled_slot] = birth[m->neck_slot] = nops;
    if (m->logits_slot >= 0) birth[m->logits_slot] = nops;
  }
  for (int i = nops; ok && i >= 0; i--) {
    for (int s = 1; s < ns; s++) {
      if (birth[s] != i) continue;
      size_t need = slot_bytes(m, s, N);
      int best = -1;
      for (int k = 0; k < nfree; k++)
        if (fl[k] >= need && (best < 0 || fl[k] < fl[best])) best = k;
      if (best >= 0) {
        start[s] = fo[best], len[s] = fl[best];
        fo[best] = fo[--nfree], fl[best] = fl[nfree];
      } else {
        start[s] = top, len[s] = need;
        top += need;
      }
      if (base) m->slots[s].grad = (float *)(void *)(base + start[s]), m->slots[s].grad_birth = i;
    }
    for (int s = 1; s < ns && i < nops; s++)
      if (death[s] == i && birth[s] >= 0) fo[nfree] = start[s], fl[nfree] = len[s], nfree++;
  }
  if (!ok) {
    /* no room to plan: one gradient buffer per slot, all zeroed at the start */
    top = 0;
    for (int s = 1; s < ns; s++) {
      if (base) m->slots[s].grad = (float *)(void *)(base + top), m->slots[s].grad_birth = nops;
      top += slot_bytes(m, s, N);
    }
  }
  free(birth), free(death), free(start), free(len), free(fo), free(fl);
  return top;
}

/* Evaluation: an activation lives from the operation that makes it to its
 * last reader, and later activations reuse the room of dead ones (best fit
 * over the freed regions). Returns the bytes of the region; with base set,
 * points the slots into it. */
static size_t reuse_plan(slr_model *m, char *base, int N) {
  int ns = m->nslots;
  int *last = malloc(sizeof(int) * (size_t)ns);
  size_t *start = malloc(sizeof(size_t) * (size_t)ns), *len = malloc(sizeof(size_t) * (size_t)ns);
  size_t *fo = malloc(sizeof(size_t) * (size_t)ns), *fl = malloc(sizeof(size_t) * (size_t)ns);
  size_t top = 0;
  int nfree = 0;
  if (!last || !start || !len || !fo || !fl) {
    /* no room to plan: one buffer per slot */
    for (int s = 1; s < ns; s++) {
      size_t b = align64(sizeof(float) * (size_t)N * m->slots[s].C * m->slots[s].H * m->slots[s].W);
      if (base) m->slots[s].data = (float *)(void *)(base + top);
      top += b;
    }
    free(last), free(start), free(len), free(fo), free(fl);
    return top;
  }
  for (int s = 0; s < ns; s++) last[s] = -1;
  for (int i = 0; i < m->nops; i++) {
    last[m->ops[i].in] = i;
    last[m->ops[i].in2] = i;
    last[m->ops[i].out] = i;
  }
  /* the outputs stay readable after the forward pass */
  last[m->pooled_slot] = last[m->neck_slot] = m->nops;
  if (m->logits_slot >= 0) last[m->logits_slot] = m->nops;
  for (int i = 0; i < m->nops; i++) {
    struct slr_op *o = &m->ops[i];
    int s = o->out;
    if (s != o->in) {
      size_t need = align64(sizeof(float) * (size_t)N * m->slots[s].C * m->slots[s].H * m->slots[s].W);
      int best = -1;
      for (int k = 0; k < nfree; k++)
        if (fl[k] >= need && (best < 0 || fl[k] < fl[best])) best = k;
      if (best >= 0) {
        start[s] = fo[best], len[s] = fl[best];
        fo[best] = fo[--nfree], fl[best] = fl[nfree];
      } else {
        start[s] = top, len[s] = need;
        top += need;
      }
      if (base) m->slots[s].data = (float *)(void *)(base + start[s]);
    }
    int reads[2] = {o->in, o->in2};
    for (int r = 0; r < 2; r++) {
      int q = reads[r];
      if (q == 0 || q == s || (r == 1 && q == o->in) || last[q] != i) continue;
      fo[nfree] = start[q], fl[nfree] = len[q], nfree++;
    }
  }
  free(last), free(start), free(len), free(fo), free(fl);
  return top;
}

/* Walk the operations to get every slot's H and W; with base != NULL carve
 * the buffers from it. Returns the bytes needed. */
static size_t carve(slr_model *m, char *base, int N, int H, int W, int with_grads, size_t *scratch) {
  size_t off = 0;
#define TAKE(ptr, type, count)                                                        \
  do {                                                                                \
    size_t bytes_ = align64(sizeof(type) * (size_t)(count));                          \
    if (base) (ptr) = (type *)(void *)(base + off);                                   \
    off += bytes_;                                                                    \
  } while (0)
  m->slots[0].H = H, m->slots[0].W = W;
  *scratch = 0;
  for (int i = 0; i < m->nops; i++) {
    struct slr_op *o = &m->ops[i];
    slr_slot *in = &m->slots[o->in], *out = &m->slots[o->out];
    switch (o->kind) {
    case OP_CONV: {
      slr_conv2d_dims d = {N, in->C, in->H, in->W, out->C, o->k, o->k, o->stride, o->pad};
      out->H = slr_conv2d_oh(&d), out->W = slr_conv2d_ow(&d);
      size_t s = slr_conv2d_scratch(&d);
      if (s > *scratch) *scratch = s;
      break;
    }
    case OP_MAXPOOL: {
      slr_pool_dims d = {N, in->C, in->H, in->W, o->k, o->stride, o->pad};
      out->H = slr_pool_oh(&d), out->W = slr_pool_ow(&d);
      TAKE(o->argmax, int32_t, (size_t)N * out->C * out->H * out->W);
      break;
    }
    case OP_BN:
      out->H = in->H, out->W = in->W;
      TAKE(o->mean, float, in->C);
      TAKE(o->rstd, float, in->C);
      break;
    case OP_IBN:
      out->H = in->H, out->W = in->W;
      TAKE(o->mean, float, (size_t)N * o->half);
      TAKE(o->rstd, float, (size_t)N * o->half);
      TAKE(o->mean2, float, in->C - o->half);
      TAKE(o->rstd2, float, in->C - o->half);
      break;
    case OP_AVGPOOL:
    case OP_GEM:
    case OP_LINEAR:
      out->H = out->W = 1;
      break;
    default:
      out->H = in->H, out->W = in->W;
      break;
    }
  }
  if (with_grads) {
    /* training keeps every activation for the backward pass */
    for (int s = 1; s < m->nslots; s++) {
      slr_slot *sl = &m->slots[s];
      TAKE(sl->data, float, (size_t)N * sl->C * sl->H * sl->W);
    }
    off = align64(off);
    off += grad_plan(m, base ? base + off : NULL, N);
  } else {
    off = align64(off);
    off += reuse_plan(m, base ? base + off : NULL, N);
  }
#undef TAKE
  return off;
}

static slr_conv2d_dims conv_dims(const slr_model *m, const struct slr_op *o, int N) {
  const slr_slot *in = &m->slots[o->in], *out = &m->slots[o->out];
  return (slr_conv2d_dims){N, in->C, in->H, in->W, out->C, o->k, o->k, o->stride, o->pad};
}

/* the backend of every convolution, and the oneDNN primitives of those on it */
static int conv_plans_make(slr_model *m) {
  int policy;
  SLR_TRY(slr_conv_policy(&policy));
  for (int i = 0; i < m->nops; i++) {
    struct slr_op *o = &m->ops[i];
    if (o->kind != OP_CONV) continue;
    slr_conv2d_dims d = conv_dims(m, o, m->max_batch);
    /* one choice per shape: an earlier layer of the same shape decides */
    int j = 0;
    for (; j < i; j++) {
      slr_conv2d_dims e;
      if (m->ops[j].kind != OP_CONV) continue;
      e = conv_dims(m, &m->ops[j], m->max_batch);
      if (!memcmp(&d, &e, sizeof d)) break;
    }
    if (j < i) o->backend = m->ops[j].backend;
    else SLR_TRY(slr_conv_choose(policy, &d, m->with_grads, &o->backend));
    if (o->backend != SLR_CONV_GEMM)
      SLR_TRY(slr_dnnl_conv_create(&o->dc, &d, o->backend == SLR_CONV_DNNL_BLOCKED, m->with_grads));
  }
  return 0;
}

/* the oneDNN primitives of convolution o for a batch of N */
static int conv_dnnl_for(slr_model *m, struct slr_op *o, int N, slr_dnnl_conv **dc) {
  if (slr_dnnl_conv_dims(o->dc)->N == N) {
    *dc = o->dc;
    return 0;
  }
  if (!o->dc_tail || slr_dnnl_conv_dims(o->dc_tail)->N != N) {
    slr_dnnl_conv_free(o->dc_tail);
    o->dc_tail = NULL;
    slr_conv2d_dims d = conv_dims(m, o, N);
    SLR_TRY(slr_dnnl_conv_create(&o->dc_tail, &d, o->backend == SLR_CONV_DNNL_BLOCKED, m->with_grads));
  }
  *dc = o->dc_tail;
  return 0;
}

static int conv_forward(slr_model *m, struct slr_op *o, int N) {
  slr_slot *in = &m->slots[o->in], *out = &m->slots[o->out];
  if (o->backend != SLR_CONV_GEMM) {
    slr_dnnl_conv *dc;
    SLR_TRY(conv_dnnl_for(m, o, N, &dc));
    return slr_dnnl_conv_forward(dc, out->data, in->data, m->params + o->w);
  }
  slr_conv2d_dims d = conv_dims(m, o, N);
  slr_conv2d_forward(out->data, in->data, m->params + o->w, NULL, &d, m->scratch);
  return 0;
}

static int conv_backward(slr_model *m, struct slr_op *o, int N, float *din) {
  slr_slot *in = &m->slots[o->in], *out = &m->slots[o->out];
  if (o->backend != SLR_CONV_GEMM) {
    slr_dnnl_conv *dc;
    SLR_TRY(conv_dnnl_for(m, o, N, &dc));
    return slr_dnnl_conv_backward(dc, din, m->grads + o->w, out->grad, in->data, m->params + o->w);
  }
  slr_conv2d_dims d = conv_dims(m, o, N);
  slr_conv2d_backward(din, m->grads + o->w, NULL, out->grad, in->data, m->params + o->w, &d,
                      m->scratch);
  return 0;
}

int slr_model_plan(slr_model *m, int max_batch, int H, int W, int with_grads) {
  size_t scratch = 0;
  conv_plans_free(m);
  free(m->block), free(m->scratch);
  m->block = NULL, m->scratch = NULL;
  for (int s = 0; s < m->nslots; s++) m->slots[s].data = m->slots[s].grad = NULL;
  if (max_batch < 1 || H < 32 || W < 32)
    return SLR_FAIL(SLR_ERR_CONFIG, "model plan: batch %d of %dx%d images (at least 32x32)",
                    max_batch, H, W);
  size_t bytes = carve(m, NULL, max_batch, H, W, with_grads, &scratch);
  SLR_ALLOC(m->block, bytes);
  SLR_ALLOC(m->scratch, sizeof(float) * (scratch + 1));
  carve(m, m->block, max_batch, H, W, with_grads, &scratch);
  m->scratch_threads = slr_threads_get();
  m->block_bytes = bytes;
  m->max_batch = max_batch, m->in_h = H, m->in_w = W, m->with_grads = with_grads;
  int rc = conv_plans_make(m);
  if (rc) {
    conv_plans_free(m);
    free(m->block), free(m->scratch);
    m->block = NULL, m->scratch = NULL;
  }
  return rc;
}

int slr_model_plan_fits(const slr_model *m, int batch, int H, int W) {
  return m->block && batch <= m->max_batch && H == m->in_h && W == m->in_w;
}

size_t slr_model_activation_bytes(const slr_model *m) { return m->block_bytes; }

/* ---- forward and backward ---------------------------------------------------------------- */

static slr_bn_dims bn_dims(const slr_model *m, int N, int C, int HW, int ctot) {
  slr_bn_dims d = {N, C, HW, 1e-5f, m->cfg.bn_momentum, m->training, MPI_COMM_NULL, ctot, 0};
  if (m->training) d.comm = m->bn_comm;
  return d;
}

/* operation o of the forward pass; relu: a ReLU on o's output fused in */
static int forward_op(slr_model *m, struct slr_op *o, int N, int relu) {
  slr_slot *in = &m->slots[o->in], *out = &m->slots[o->out];
  const int HW = in->H * in->W;
  float *P = m->params;
  switch (o->kind) {
  case OP_CONV:
    return conv_forward(m, o, N);
  case OP_BN: {
    slr_bn_dims d = bn_dims(m, N, in->C, HW, 0);
    d.relu = relu;
    return slr_batchnorm_forward(out->data, o->mean, o->rstd, in->data, P + o->w, P + o->b,
                                 m->buffers + o->rm, m->buffers + o->rv, m->counts + o->cnt, &d);
  }
  case OP_IBN: {
    int C = in->C, h = o->half;
    for (int n = 0; n < N; n++)
      slr_instnorm_forward(out->data + (int64_t)n * C * HW, o->mean + n * h, o->rstd + n * h,
                           in->data + (int64_t)n * C * HW, P + o->w, P + o->b, 1, h, HW, 1e-5f);
    slr_bn_dims d = bn_dims(m, N, C - h, HW, C);
    return slr_batchnorm_forward(out->data + (int64_t)h * HW, o->mean2, o->rstd2,
                                 in->data + (int64_t)h * HW, P + o->w2, P + o->b2,
                                 m->buffers + o->rm, m->buffers + o->rv, m->counts + o->cnt, &d);
  }
  case OP_RELU:
    slr_relu_forward(out->data, out->data, (int64_t)N * out->C * HW);
    return 0;
  case OP_MAXPOOL: {
    slr_pool_dims d = {N, in->C, in->H, in->W, o->k, o->stride, o->pad};
    slr_maxpool_forward(out->data, o->argmax, in->data, &d);
    return 0;
  }
  case OP_ADD: {
    const float *a = in->data, *b = m->slots[o->in2].data;
    float *y = out->data;
    const float lo = relu ? 0.0f : -INFINITY;
    int64_t n = (int64_t)N * out->C * HW;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < n; k++) {
      float v = a[k] + b[k];
      y[k] = v > lo ? v : lo;
    }
    return 0;
  }
  case OP_AVGPOOL:
    slr_avgpool_forward(out->data, in->data, N, in->C, HW);
    return 0;
  case OP_GEM:
    slr_gem_forward(out->data, in->data, P[o->w], 1e-6f, N, in->C, HW);
    return 0;
  case OP_LINEAR:
    slr_linear_forward(out->data, in->data, P + o->w, NULL, N, in->C, out->C);
    return 0;
  }
  return 0;
}

/* the conv scratch again when the thread setting changed since the plan */
static int rescratch(slr_model *m) {
  if (m->scratch_threads == slr_threads_get()) return 0;
  size_t need = 0;
  carve(m, NULL, m->max_batch, m->in_h, m->in_w, m->with_grads, &need);
  free(m->scratch);
  SLR_ALLOC(m->scratch, sizeof(float) * (need + 1));
  m->scratch_threads = slr_threads_get();
  return 0;
}

int slr_model_forward(slr_model *m, const float *images, int N, int training, MPI_Comm bn_comm) {
  if (!m->block || N < 1 || N > m->max_batch)
    return SLR_FAIL(SLR_ERR, "model forward: batch %d but the plan holds %d", N, m->max_batch);
  SLR_TRY(rescratch(m));
  m->batch = N;
  m->training = training;
  m->bn_comm = bn_comm;
  m->slots[0].data = (float *)images; /* read only */
  for (int i = 0; i < m->nops; i++) {
    struct slr_op *o = &m->ops[i];
    const slr_slot *in = &m->slots[o->in], *out = &m->slots[o->out];
    double t_op = prof_on ? slr_now() : 0;
    if (prof_on && o->kind == OP_CONV)
      prof_macs[OP_CONV] += (double)N * out->C * out->H * out->W * in->C * o->k * o->k;
    if (prof_on && o->kind == OP_LINEAR) prof_macs[OP_LINEAR] += (double)N * in->C * out->C;
    /* a ReLU in place on the output of a batch norm or a residual sum runs
     * inside that operation (its backward stays a separate operation) */
    int relu = (o->kind == OP_BN || o->kind == OP_ADD) && i + 1 < m->nops &&
               m->ops[i + 1].kind == OP_RELU && m->ops[i + 1].in == o->out;
    SLR_TRY(forward_op(m, o, N, relu));
    i += relu;
    if (prof_on) prof_fwd[o->kind] += slr_now() - t_op;
  }
  return 0;
}

const float *slr_model_pooled(const slr_model *m) { return m->slots[m->pooled_slot].data; }
const float *slr_model_neck(const slr_model *m) { return m->slots[m->neck_slot].data; }
const float *slr_model_logits(const slr_model *m) {
  return m->logits_slot >= 0 ? m->slots[m->logits_slot].data : NULL;
}

void slr_model_zero_grad(slr_model *m) {
  memset(m->grads, 0, sizeof(float) * (size_t)m->nparams);
}

static void add_into(float *dst, const float *src, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < n; k++) dst[k] += src[k];
}

/* zero the gradients that come to life before backward operation i */
static void zero_born(slr_model *m, int i, int N) {
  for (int s = 1; s < m->nslots; s++) {
    slr_slot *sl = &m->slots[s];
    if (sl->grad_birth == i) memset(sl->grad, 0, sizeof(float) * (size_t)N * sl->C * sl->H * sl->W);
  }
}

/* operation o of the backward pass; din: the gradient of its input (NULL
 * for the image batch) */
static int backward_op(slr_model *m, struct slr_op *o, int N, float *din) {
  slr_slot *in = &m->slots[o->in], *out = &m->slots[o->out];
  const int HW = in->H * in->W;
  float *P = m->params, *G = m->grads;
  switch (o->kind) {
  case OP_CONV:
    SLR_TRY(conv_backward(m, o, N, din));
    return 0;
  case OP_BN: {
    slr_bn_dims d = bn_dims(m, N, in->C, HW, 0);
    SLR_TRY(slr_batchnorm_backward(din, G + o->w, o->frozen_bias ? NULL : G + o->b, out->grad,
                                   in->data, P + o->w, o->mean, o->rstd, &d));
    return 0;
  }
  case OP_IBN: {
    int C = in->C, h = o->half;
    for (int n = 0; n < N; n++)
      slr_instnorm_backward(din + (int64_t)n * C * HW, G + o->w, G + o->b,
                            out->grad + (int64_t)n * C * HW, in->data + (int64_t)n * C * HW,
                            P + o->w, o->mean + n * h, o->rstd + n * h, 1, h, HW);
    slr_bn_dims d = bn_dims(m, N, C - h, HW, C);
    SLR_TRY(slr_batchnorm_backward(din + (int64_t)h * HW, G + o->w2, G + o->b2,
                                   out->grad + (int64_t)h * HW, in->data + (int64_t)h * HW,
                                   P + o->w2, o->mean2, o->rstd2, &d));
    return 0;
  }
  case OP_RELU: {
    /* in place: the gradient slot becomes the gradient before the ReLU */
    float *g = out->grad;
    const float *y = out->data;
    int64_t n = (int64_t)N * out->C * HW;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < n; k++)
      if (!(y[k] > 0.0f)) g[k] = 0.0f;
    return 0;
  }
  case OP_MAXPOOL: {
    slr_pool_dims d = {N, in->C, in->H, in->W, o->k, o->stride, o->pad};
    slr_maxpool_backward(din, out->grad, o->argmax, &d);
    return 0;
  }
  case OP_ADD: {
    int64_t n = (int64_t)N * out->C * HW;
    float *ga = in->grad, *gb = m->slots[o->in2].grad;
    const float *g = out->grad;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < n; k++) ga[k] += g[k], gb[k] += g[k];
    return 0;
  }
  case OP_AVGPOOL:
    slr_avgpool_backward(din, out->grad, N, in->C, HW);
    return 0;
  case OP_GEM:
    slr_gem_backward(din, G + o->w, out->grad, out->data, in->data, P[o->w], 1e-6f, N, in->C, HW);
    return 0;
  case OP_LINEAR:
    slr_linear_backward(din, G + o->w, NULL, out->grad, in->data, P + o->w, N, in->C, out->C);
    return 0;
  }
  return 0;
}

int slr_model_backward(slr_model *m, const float *dpooled, const float *dneck,
                       const float *dlogits) {
  int N = m->batch;
  if (!m->with_grads || !m->training)
    return SLR_FAIL(SLR_ERR, "model backward needs a training plan and a training forward");
  zero_born(m, m->nops, N);
  int D = m->feat_dim;
  if (dpooled) add_into(m->slots[m->pooled_slot].grad, dpooled, (int64_t)N * D);
  if (dneck) add_into(m->slots[m->neck_slot].grad, dneck, (int64_t)N * D);
  if (dlogits && m->logits_slot >= 0)
    add_into(m->slots[m->logits_slot].grad, dlogits, (int64_t)N * m->cfg.num_classes);
  for (int i = m->nops - 1; i >= 0; i--) {
    struct slr_op *o = &m->ops[i];
    float *din = o->in == 0 ? NULL : m->slots[o->in].grad;
    zero_born(m, i, N);
    double t_op = prof_on ? slr_now() : 0;
    SLR_TRY(backward_op(m, o, N, din));
    if (prof_on) prof_bwd[o->kind] += slr_now() - t_op;
    if (m->grad_ready && o->w >= 0) SLR_TRY(m->grad_ready(m->grad_ready_ctx, o->w));
  }
  return 0;
}
