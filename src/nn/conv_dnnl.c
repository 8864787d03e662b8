/* The oneDNN convolution backend: direct-algorithm primitives (never
 * Winograd, whose rounding differs) for the forward pass and both
 * backward passes, created once per shape. The tensors stay in slr's plain
 * layouts; where a primitive chose another layout, the tensor is reordered
 * into a workspace shared by all convolutions (they run one at a time).
 * Outputs that accumulate (the gradients) are written to the workspace and
 * added to the caller's buffer by a reorder with a sum post-operation, one
 * pass. oneDNN dispatches on CPUID at run time (SSE4.1 up to AVX-512 and
 * AMX); its threads are the OpenMP threads (slr_threads_get()). With the
 * same thread count its primitives give the same result from run to run. */
#include "conv_dnnl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SLR_HAVE_DNNL

int slr_dnnl_available(void) { return 0; }
const char *slr_dnnl_describe(void) { return "oneDNN not built in"; }
int slr_dnnl_conv_create(slr_dnnl_conv **c, const slr_conv2d_dims *d, int blocked, int with_bwd) {
  *c = NULL;
  return SLR_FAIL(SLR_ERR, "conv2d: slr was built without oneDNN (SLR_DNNL=OFF)");
}
void slr_dnnl_conv_free(slr_dnnl_conv *c) {}
const slr_conv2d_dims *slr_dnnl_conv_dims(const slr_dnnl_conv *c) { return NULL; }
const char *slr_dnnl_conv_impl(const slr_dnnl_conv *c) { return "none"; }
int slr_dnnl_conv_forward(slr_dnnl_conv *c, float *out, const float *inp, const float *weight) {
  return SLR_FAIL(SLR_ERR, "conv2d: slr was built without oneDNN");
}
int slr_dnnl_conv_backward(slr_dnnl_conv *c, float *dinp, float *dweight, const float *dout,
                           const float *inp, const float *weight) {
  return SLR_FAIL(SLR_ERR, "conv2d: slr was built without oneDNN");
}

#else

#include <oneapi/dnnl/dnnl.h>

enum { PORT_IN, PORT_OUT, PORT_ADD };

/* One argument of a primitive: the caller's plain buffer and, when the
 * primitive wants another layout or the output accumulates, its own copy
 * in the workspace with the reorder between them. */
typedef struct {
  int arg, kind;
  dnnl_memory_t user, prim; /* prim NULL: the primitive reads/writes user */
  dnnl_primitive_t re;
  size_t off;               /* offset of prim in the workspace */
} port;

enum { P_FWD, P_BWD_D, P_BWD_W, NPRIM };

struct slr_dnnl_conv {
  slr_conv2d_dims d;
  dnnl_primitive_desc_t pd[NPRIM];
  dnnl_primitive_t prim[NPRIM];
  port ports[NPRIM][3];
  size_t ws[NPRIM];
  char impl[192];
};

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static int engine_state; /* 0 not tried, 1 up, -1 failed */
static char *workspace;
static size_t workspace_bytes;
static char describe_buf[96];

static int engine_up(void) {
  if (engine_state == 0) {
    engine_state = -1;
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success &&
        dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) == dnnl_success)
      engine_state = 1;
  }
  return engine_state == 1;
}

int slr_dnnl_available(void) { return engine_up(); }

static const char *isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
  case dnnl_cpu_isa_sse41: return "sse41";
  case dnnl_cpu_isa_avx: return "avx";
  case dnnl_cpu_isa_avx2: return "avx2";
  case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
  case dnnl_cpu_isa_avx512_core: return "avx512_core";
  case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
  default: return "other";
  }
}

const char *slr_dnnl_describe(void) {
  const dnnl_version_t *v = dnnl_version();
  snprintf(describe_buf, sizeof describe_buf, "oneDNN %d.%d.%d, ISA %s", v->major, v->minor,
           v->patch, isa_name(dnnl_get_effective_cpu_isa()));
  return describe_buf;
}

#define DNNL_TRY(call)                                                                     \
  do {                                                                                     \
    dnnl_status_t st_ = (call);                                                            \
    if (st_ != dnnl_success)                                                               \
      return SLR_FAIL(SLR_ERR, "oneDNN: %s failed (status %d)", #call, (int)st_);          \
  } while (0)

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* the port of argument arg: user layout user_md, primitive layout prim_md */
static int port_init(port *p, int arg, int kind, const dnnl_memory_desc_t *user_md,
                     const dnnl_memory_desc_t *prim_md, size_t *ws) {
  memset(p, 0, sizeof *p);
  p->arg = arg, p->kind = kind;
  DNNL_TRY(dnnl_memory_create(&p->user, user_md, engine, DNNL_MEMORY_NONE));
  if (kind != PORT_ADD && dnnl_memory_desc_equal(user_md, prim_md)) return 0;
  DNNL_TRY(dnnl_memory_create(&p->prim, prim_md, engine, DNNL_MEMORY_NONE));
  p->off = *ws;
  *ws += align64(dnnl_memory_desc_get_size(prim_md));
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  if (kind == PORT_ADD) {
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    DNNL_TRY(dnnl_post_ops_create(&po));
    DNNL_TRY(dnnl_post_ops_append_sum(po, 1.0f));
    DNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, po));
  }
  dnnl_primitive_desc_t rpd;
  dnnl_status_t st = kind == PORT_IN
                         ? dnnl_reorder_primitive_desc_create(&rpd, user_md, engine, prim_md,
                                                              engine, attr)
                         : dnnl_reorder_primitive_desc_create(&rpd, prim_md, engine, user_md,
                                                              engine, attr);
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (st != dnnl_success) return SLR_FAIL(SLR_ERR, "oneDNN: no reorder (status %d)", (int)st);
  st = dnnl_primitive_create(&p->re, rpd);
  dnnl_primitive_desc_destroy(rpd);
  if (st != dnnl_success) return SLR_FAIL(SLR_ERR, "oneDNN: reorder (status %d)", (int)st);
  return 0;
}

static void port_free(port *p) {
  if (p->user) dnnl_memory_destroy(p->user);
  if (p->prim) dnnl_memory_destroy(p->prim);
  if (p->re) dnnl_primitive_destroy(p->re);
}

/* plain descriptors: activations NCHW, weights OIHW */
static void plain_mds(const slr_conv2d_dims *d, dnnl_memory_desc_t *src, dnnl_memory_desc_t *wei,
                      dnnl_memory_desc_t *dst, dnnl_format_tag_t act_tag) {
  dnnl_dims_t s = {d->N, d->C, d->H, d->W}, w = {d->OC, d->C, d->KH, d->KW};
  dnnl_dims_t o = {d->N, d->OC, slr_conv2d_oh(d), slr_conv2d_ow(d)};
  dnnl_memory_desc_init_by_tag(src, 4, s, dnnl_f32, act_tag);
  dnnl_memory_desc_init_by_tag(wei, 4, w, dnnl_f32, act_tag == dnnl_format_tag_any ? act_tag : dnnl_oihw);
  dnnl_memory_desc_init_by_tag(dst, 4, o, dnnl_f32, act_tag);
}

static void pads(const slr_conv2d_dims *d, dnnl_dims_t st, dnnl_dims_t pl, dnnl_dims_t pr) {
  int oh = slr_conv2d_oh(d), ow = slr_conv2d_ow(d);
  st[0] = st[1] = d->stride;
  pl[0] = pl[1] = d->pad;
  pr[0] = (oh - 1) * d->stride + d->KH - d->H - d->pad;
  pr[1] = (ow - 1) * d->stride + d->KW - d->W - d->pad;
}

static const dnnl_memory_desc_t *q(dnnl_primitive_desc_t pd, dnnl_query_t what) {
  return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* primitive k from its operation descriptor, then its three ports */
static int make_prim(slr_dnnl_conv *c, int k, const dnnl_convolution_desc_t *cd,
                     const int args[3], const int kinds[3], const dnnl_query_t qs[3],
                     const dnnl_memory_desc_t *user[3]) {
  DNNL_TRY(dnnl_primitive_desc_create(&c->pd[k], cd, NULL, engine,
                                      k == P_FWD ? NULL : c->pd[P_FWD]));
  DNNL_TRY(dnnl_primitive_create(&c->prim[k], c->pd[k]));
  for (int i = 0; i < 3; i++)
    SLR_TRY(port_init(&c->ports[k][i], args[i], kinds[i], user[i], q(c->pd[k], qs[i]), &c->ws[k]));
  const char *name = "?";
  dnnl_primitive_desc_query(c->pd[k], dnnl_query_impl_info_str, 0, &name);
  size_t len = strlen(c->impl);
  snprintf(c->impl + len, sizeof c->impl - len, "%s%s", k ? " / " : "", name);
  return 0;
}

static int build(slr_dnnl_conv *c, int blocked, int with_bwd) {
  const slr_conv2d_dims *d = &c->d;
  dnnl_memory_desc_t us, uw, ud, as, aw, ad;
  plain_mds(d, &us, &uw, &ud, dnnl_nchw);
  plain_mds(d, &as, &aw, &ad, dnnl_format_tag_any);
  if (!blocked) as = us, ad = ud;
  dnnl_dims_t st, pl, pr;
  pads(d, st, pl, pr);
  dnnl_convolution_desc_t cd;
  DNNL_TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct,
                                              &as, &aw, NULL, &ad, st, pl, pr));
  const dnnl_memory_desc_t *u0[3] = {&us, &uw, &ud};
  SLR_TRY(make_prim(c, P_FWD, &cd, (int[]){DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
                    (int[]){PORT_IN, PORT_IN, PORT_OUT},
                    (dnnl_query_t[]){dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
                    u0));
  if (!with_bwd) return 0;
  DNNL_TRY(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &as, &aw, &ad,
                                                    st, pl, pr));
  const dnnl_memory_desc_t *u1[3] = {&ud, &uw, &us};
  SLR_TRY(make_prim(c, P_BWD_D, &cd,
                    (int[]){DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
                    (int[]){PORT_IN, PORT_IN, PORT_ADD},
                    (dnnl_query_t[]){dnnl_query_diff_dst_md, dnnl_query_weights_md,
                                     dnnl_query_diff_src_md},
                    u1));
  DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &as, &aw,
                                                       NULL, &ad, st, pl, pr));
  const dnnl_memory_desc_t *u2[3] = {&us, &ud, &uw};
  SLR_TRY(make_prim(c, P_BWD_W, &cd,
                    (int[]){DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS},
                    (int[]){PORT_IN, PORT_IN, PORT_ADD},
                    (dnnl_query_t[]){dnnl_query_src_md, dnnl_query_diff_dst_md,
                                     dnnl_query_diff_weights_md},
                    u2));
  return 0;
}

int slr_dnnl_conv_create(slr_dnnl_conv **out, const slr_conv2d_dims *d, int blocked,
                         int with_bwd) {
  *out = NULL;
  if (!engine_up()) return SLR_FAIL(SLR_ERR, "oneDNN: the CPU engine did not start");
  slr_dnnl_conv *c = calloc(1, sizeof *c);
  if (!c) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory (oneDNN convolution)");
  c->d = *d;
  int rc = build(c, blocked, with_bwd);
  if (rc) {
    slr_dnnl_conv_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void slr_dnnl_conv_free(slr_dnnl_conv *c) {
  if (!c) return;
  for (int k = 0; k < NPRIM; k++) {
    for (int i = 0; i < 3; i++) port_free(&c->ports[k][i]);
    if (c->prim[k]) dnnl_primitive_destroy(c->prim[k]);
    if (c->pd[k]) dnnl_primitive_desc_destroy(c->pd[k]);
  }
  free(c);
}

const slr_conv2d_dims *slr_dnnl_conv_dims(const slr_dnnl_conv *c) { return &c->d; }
const char *slr_dnnl_conv_impl(const slr_dnnl_conv *c) { return c->impl; }

static int exec1(dnnl_primitive_t p, int n, dnnl_exec_arg_t *args) {
  DNNL_TRY(dnnl_primitive_execute(p, stream, n, args));
  return 0;
}

/* run primitive k on the caller's buffers h[0..2] (in the order of its ports) */
static int run(slr_dnnl_conv *c, int k, void *h[3]) {
  if (!c->prim[k]) return SLR_FAIL(SLR_ERR, "oneDNN convolution made without backward");
  if (c->ws[k] > workspace_bytes) {
    free(workspace);
    workspace_bytes = 0;
    workspace = aligned_alloc(64, align64(c->ws[k]));
    if (!workspace) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory (oneDNN workspace)");
    workspace_bytes = align64(c->ws[k]);
  }
  dnnl_exec_arg_t args[3];
  for (int i = 0; i < 3; i++) {
    port *p = &c->ports[k][i];
    DNNL_TRY(dnnl_memory_set_data_handle(p->user, h[i]));
    if (p->prim) DNNL_TRY(dnnl_memory_set_data_handle(p->prim, workspace + p->off));
    args[i] = (dnnl_exec_arg_t){p->arg, p->prim ? p->prim : p->user};
    if (p->kind == PORT_IN && p->re)
      SLR_TRY(exec1(p->re, 2, (dnnl_exec_arg_t[]){{DNNL_ARG_FROM, p->user}, {DNNL_ARG_TO, p->prim}}));
  }
  SLR_TRY(exec1(c->prim[k], 3, args));
  port *o = &c->ports[k][2];
  if (o->re)
    SLR_TRY(exec1(o->re, 2, (dnnl_exec_arg_t[]){{DNNL_ARG_FROM, o->prim}, {DNNL_ARG_TO, o->user}}));
  DNNL_TRY(dnnl_stream_wait(stream));
  return 0;
}

int slr_dnnl_conv_forward(slr_dnnl_conv *c, float *out, const float *inp, const float *weight) {
  return run(c, P_FWD, (void *[]){(void *)inp, (void *)weight, out});
}

int slr_dnnl_conv_backward(slr_dnnl_conv *c, float *dinp, float *dweight, const float *dout,
                           const float *inp, const float *weight) {
  if (dinp) SLR_TRY(run(c, P_BWD_D, (void *[]){(void *)dout, (void *)weight, dinp}));
  return run(c, P_BWD_W, (void *[]){(void *)inp, (void *)dout, dweight});
}

#endif
