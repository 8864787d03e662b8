/* Evaluation during training: features of the target's query and gallery
 * images, Market-1501 mAP / CMC / mINP, logged to metrics.jsonl. */
#include <stdlib.h>

#include "train_internal.h"

static int eval_opts(const slr_config *cfg, slr_eval_opts *o) {
  slr_eval_opts_default(o);
  SLR_TRY(slr_metric_parse(cfg->eval.metric, &o->metric));
  o->rerank = cfg->eval.rerank;
  SLR_TRY(slr_rerank_variant_parse(cfg->eval.rerank_variant, &o->rerank_variant));
  o->rerank_k1 = (int)cfg->eval.rerank_k1;
  o->rerank_k2 = (int)cfg->eval.rerank_k2;
  o->rerank_lambda = cfg->eval.rerank_lambda;
  return 0;
}

/* pids and camids of a split's rows [first, first + n) as int64. Local. */
static int ids_of(const slr_split *s, int64_t first, int64_t n, int64_t **pids, int64_t **cams) {
  *pids = malloc(sizeof(int64_t) * (size_t)(n + 1));
  *cams = malloc(sizeof(int64_t) * (size_t)(n + 1));
  if (!*pids || !*cams) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for evaluation");
  for (int64_t i = 0; i < n; i++) (*pids)[i] = s->pids[first + i], (*cams)[i] = s->camids[first + i];
  return 0;
}

static int log_eval(tr_job *j, const char *stage, int64_t epoch, const slr_eval_result *res) {
  slr_info("%s epoch %lld: mAP %.1f%%  Rank-1 %.1f%%  Rank-5 %.1f%%  Rank-10 %.1f%%  mINP %.1f%%",
           stage, (long long)epoch + 1, 100 * res->map, 100 * res->cmc[0], 100 * res->cmc[4],
           100 * res->cmc[9], 100 * res->minp);
  slr_json js;
  tr_json_event(&js, "eval", stage, epoch, j->pos.position);
  slr_json_num(&js, "mAP", res->map);
  slr_json_num(&js, "mINP", res->minp);
  slr_json_array_begin(&js, "cmc");
  for (int r = 0; r < SLR_EVAL_MAX_RANK; r++) slr_json_num(&js, NULL, res->cmc[r]);
  slr_json_array_end(&js);
  slr_json_object_end(&js);
  return tr_log_json(j, &js);
}

int tr_evaluate(tr_job *j, const char *stage, int64_t epoch) {
  if (!j->data.has_eval) return 0;
  const slr_config *cfg = j->cfg;
  const slr_split *q = &j->data.target.split[SLR_QUERY], *g = &j->data.target.split[SLR_GALLERY];
  float *qf = NULL, *gf = NULL;
  int64_t q0 = 0, qn = 0, g0 = 0, gn = 0, *qp = NULL, *qc = NULL, *gp = NULL, *gc = NULL;
  slr_eval_opts o;
  int rc = slr_agree(j->ctx->world, eval_opts(cfg, &o));
  if (rc) return rc;
  rc = slr_extract_features(j->ctx, &j->model.net, &j->data.b_query, cfg, "extract query", &qf, &q0, &qn);
  if (!rc)
    rc = slr_extract_features(j->ctx, &j->model.net, &j->data.b_gallery, cfg, "extract gallery",
                              &gf, &g0, &gn);
  if (!rc) {
    int lrc = ids_of(q, q0, qn, &qp, &qc);
    if (!lrc) lrc = ids_of(g, g0, gn, &gp, &gc);
    rc = slr_agree(j->ctx->world, lrc);
  }
  slr_eval_result res;
  if (!rc)
    rc = slr_eval_market1501(j->ctx->world, j->model.net.feat_dim, qf, qp, qc, qn, gf, gp, gc, gn,
                             &o, &res);
  free(qf), free(gf), free(qp), free(qc), free(gp), free(gc);
  SLR_TRY(rc);
  j->last_eval = res;
  j->have_eval = 1;
  j->last_eval_epoch = epoch;
  j->last_eval_stage = stage;
  return log_eval(j, stage, epoch, &res);
}
