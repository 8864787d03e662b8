/* The job's set-up and tear-down (data sets, batchers, buffers, the model
 * of each stage) and its checkpoints: written collectively at safe points,
 * read back to resume exactly where the run stopped. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train_internal.h"

enum { B_SOURCE = 1, B_TARGET = 2, B_QUERY = 4, B_GALLERY = 8 };

static int has_stage(const slr_config *cfg, const char *name) {
  for (int i = 0; i < cfg->train.stages.n; i++)
    if (!strcmp(cfg->train.stages.v[i], name)) return 1;
  return 0;
}

static int load_checkpoint(job_t *j, const char *path);

int slr_job_open(job_t *j, const char *run_dir, int resume) {
  const slr_config *cfg = j->cfg;
  const slr_ctx *ctx = j->ctx;
  int rc = slr_strlcpy(j->run, run_dir, sizeof j->run);
  snprintf(j->metrics_path, sizeof j->metrics_path, "%s/metrics.jsonl", run_dir);
  SLR_TRY(slr_agree(ctx->world, rc));
  slr_threads_set((int)cfg->run.threads, ctx->node_size);

  /* data */
  int need_source = has_stage(cfg, "pretrain");
  int need_target = has_stage(cfg, "adapt");
  int want_eval = cfg->data.target.format != SLR_FMT_NONE;
  if (need_source && cfg->data.source.format == SLR_FMT_NONE)
    return SLR_FAIL(SLR_ERR_CONFIG, "train.stages has pretrain, but data.source.format is none");
  if (need_target && !want_eval)
    return SLR_FAIL(SLR_ERR_CONFIG, "train.stages has adapt, but data.target.format is none");
  SLR_TRY(slr_transform_from_config(&j->tf, &cfg->data));
  if (need_source) {
    SLR_TRY(slr_dataset_load(&j->source, &cfg->data.source, ctx->world));
    j->have_source = 1;
    if (ctx->rank == 0) slr_dataset_print(&j->source, stdout);
    if (j->source.split[SLR_TRAIN].n == 0)
      return SLR_FAIL(SLR_ERR_INPUT, "the source data set %s has no training images",
                      cfg->data.source.root);
  }
  if (need_target || want_eval) {
    SLR_TRY(slr_dataset_load(&j->target, &cfg->data.target, ctx->world));
    j->have_target = 1;
    if (ctx->rank == 0) slr_dataset_print(&j->target, stdout);
    if (need_target && j->target.split[SLR_TRAIN].n <= cfg->cluster.k1)
      return SLR_FAIL(SLR_ERR_INPUT,
                      "the target data set %s has %lld training images; clustering needs more "
                      "than cluster.k1 = %lld",
                      cfg->data.target.root, (long long)j->target.split[SLR_TRAIN].n,
                      (long long)cfg->cluster.k1);
    j->have_target_eval =
        j->target.split[SLR_QUERY].n > 0 && j->target.split[SLR_GALLERY].n > 0;
  }
  int cache = cfg->data.cache, skip = cfg->data.skip_corrupt;
  if (j->have_source) {
    SLR_TRY(slr_batcher_init(&j->b_source, &j->source.split[SLR_TRAIN], &j->tf, cache, skip));
    j->batchers |= B_SOURCE;
  }
  if (j->have_target) {
    SLR_TRY(slr_batcher_init(&j->b_target, &j->target.split[SLR_TRAIN], &j->tf, cache, skip));
    j->batchers |= B_TARGET;
    SLR_TRY(slr_batcher_init(&j->b_query, &j->target.split[SLR_QUERY], &j->tf, cache, skip));
    j->batchers |= B_QUERY;
    SLR_TRY(slr_batcher_init(&j->b_gallery, &j->target.split[SLR_GALLERY], &j->tf, cache, skip));
    j->batchers |= B_GALLERY;
    int64_t N = j->target.split[SLR_TRAIN].n;
    j->y_prev = calloc((size_t)N + 1, sizeof(int32_t));
    j->y_dbscan = calloc((size_t)N + 1, sizeof(int32_t));
    j->y_refined = calloc((size_t)N + 1, sizeof(int32_t));
    rc = j->y_prev && j->y_dbscan && j->y_refined ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
    SLR_TRY(slr_agree(ctx->world, rc));
  }
  j->gcounts = calloc((size_t)ctx->size * 4, sizeof(int));
  if (!j->gcounts) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  j->gdispls = j->gcounts + ctx->size;
  j->lcounts = j->gdispls + ctx->size;
  j->ldispls = j->lcounts + ctx->size;

  /* the run folder only once the data are there (no partial output), the
   * resolved configuration, and the metrics of a resumed run cut back to
   * its checkpoint */
  if (ctx->rank == 0) {
    char ck[SLR_PATH_MAX + 16];
    snprintf(ck, sizeof ck, "%s/checkpoints", run_dir);
    rc = slr_mkdir_p(ck);
    if (!rc) rc = slr_config_save(cfg, run_dir);
  }
  SLR_TRY(slr_agree(ctx->world, rc));
  if (resume) {
    char path[SLR_PATH_MAX];
    int64_t pos;
    SLR_TRY(slr_ckpt_newest(ctx->world, run_dir, SLR_CHECKPOINT_VERSION, path, sizeof path, &pos));
    if (pos >= 0) {
      SLR_TRY(load_checkpoint(j, path));
      slr_info("resuming from %s (%s, epoch %lld, step %lld)", path,
               cfg->train.stages.v[j->resumed_stage], (long long)j->epoch, (long long)j->step);
      return 0;
    }
  }
  /* a fresh run starts a fresh log */
  if (ctx->rank == 0) rc = slr_file_truncate(j->metrics_path, 0);
  return slr_agree(ctx->world, rc);
}

void slr_job_close(job_t *j) {
  if (j->batchers & B_SOURCE) slr_batcher_free(&j->b_source);
  if (j->batchers & B_TARGET) slr_batcher_free(&j->b_target);
  if (j->batchers & B_QUERY) slr_batcher_free(&j->b_query);
  if (j->batchers & B_GALLERY) slr_batcher_free(&j->b_gallery);
  if (j->have_source) slr_dataset_free(&j->source);
  if (j->have_target) slr_dataset_free(&j->target);
  if (j->have_dp) slr_dp_free(&j->dp);
  if (j->have_model) slr_model_free(&j->model);
  free(j->opt_state);
  free(j->groups);
  free(j->ck_params), free(j->ck_buffers), free(j->ck_opt), free(j->ck_counts);
  free(j->y_prev), free(j->y_dbscan), free(j->y_refined);
  free(j->memory);
  slr_refine_result_free(&j->ref);
  free(j->feat_local);
  free(j->lab_local), free(j->glab), free(j->tpos), free(j->tneg), free(j->gidx);
  free(j->probs), free(j->dlogits), free(j->gfeat), free(j->gdfeat), free(j->tdap), free(j->tdan);
  free(j->feat_n), free(j->norms), free(j->dneck), free(j->gprobs);
  slr_csr_free(&j->to_refined);
  free(j->iou_rowsum);
  free(j->soft_t);
  free(j->gcounts);
}

/* The model of stage si: its structure, then its weights from the loaded
 * checkpoint (resumed), the end of pretraining, model.pretrained, or the
 * seeded initialisation. */
int slr_job_stage_model(job_t *j, int si, int resumed) {
  const slr_config *cfg = j->cfg;
  const int pretrain = !strcmp(cfg->train.stages.v[si], "pretrain");
  if (j->have_dp) slr_dp_free(&j->dp);
  if (j->have_model) slr_model_free(&j->model);
  j->have_dp = j->have_model = 0;
  int classes = pretrain ? j->source.split[SLR_TRAIN].num_pids : 0;
  SLR_TRY(slr_train_model_init(&j->model, cfg, classes));
  j->have_model = 1;
  const char *from = NULL;
  unsigned flags = 0;
  char pre[SLR_PATH_MAX + 16];
  if (resumed) {
    if (j->ck_nparams != j->model.nparams || j->ck_nbuffers != j->model.nbuffers ||
        j->ck_ncounts != j->model.ncounts)
      return SLR_FAIL(SLR_ERR_INPUT,
                      "the checkpoint's model (%lld parameters) does not match the configured "
                      "model (%lld parameters): was the configuration changed?",
                      (long long)j->ck_nparams, (long long)j->model.nparams);
    memcpy(j->model.params, j->ck_params, sizeof(float) * (size_t)j->ck_nparams);
    memcpy(j->model.buffers, j->ck_buffers, sizeof(float) * (size_t)j->ck_nbuffers);
    memcpy(j->model.counts, j->ck_counts, sizeof(int64_t) * (size_t)j->ck_ncounts);
  } else if (!pretrain && si > 0) {
    snprintf(pre, sizeof pre, "%s/pretrain.h5", j->run);
    from = pre;
  } else if (cfg->model.pretrained[0]) {
    from = cfg->model.pretrained;
    flags = SLR_LOAD_BACKBONE_ONLY;
  } else {
    slr_warn("%s starts from random weights (model.pretrained is empty)", pretrain ? "pretrain" : "adapt");
  }
  if (from) {
    SLR_TRY(slr_model_load(&j->model, j->ctx->world, from, flags));
    slr_info("%s starts from %s", pretrain ? "pretrain" : "adapt", from);
  }
  SLR_TRY(slr_dp_init(&j->dp, &j->model, j->ctx->world, 0, 1));
  j->have_dp = 1;
  /* the ranks start from the same weights (rank 0's) */
  SLR_TRY(slr_dp_broadcast(&j->dp));
  SLR_TRY(slr_job_setup_optimizer(j));
  if (resumed) {
    if (j->ck_nopt != j->opt_nstate)
      return SLR_FAIL(SLR_ERR_INPUT, "the checkpoint's optimizer state does not match the "
                      "configured optimizer: was solver.optimizer changed?");
    memcpy(j->opt_state, j->ck_opt, sizeof(float) * (size_t)j->ck_nopt);
    j->opt.step = j->ck_opt_step;
  }
  return 0;
}

int slr_job_buffers(job_t *j, int stage, int64_t B) {
  const slr_ctx *ctx = j->ctx;
  const int64_t D = j->model.feat_dim;
  const int64_t C = stage == STAGE_PRETRAIN ? j->model.cfg.num_classes : 0;
  slr_batch_slice(B, ctx->rank, ctx->size, &j->pos0, &j->nloc);
  if (B < ctx->size)
    return SLR_FAIL(SLR_ERR_CONFIG, "the global batch (%lld) is smaller than the rank count (%d): "
                    "every rank needs a share of it", (long long)B, ctx->size);
  const int64_t n = j->nloc > 0 ? j->nloc : 1;
  free(j->lab_local), free(j->glab), free(j->tpos), free(j->tneg), free(j->gidx);
  free(j->probs), free(j->dlogits), free(j->gfeat), free(j->gdfeat), free(j->tdap), free(j->tdan);
  free(j->feat_n), free(j->norms), free(j->dneck), free(j->gprobs);
  j->gprobs = NULL;
  j->gidx = malloc(sizeof(int64_t) * (size_t)B);
  j->gprobs_cap = 0;
  j->lab_local = malloc(sizeof(int32_t) * (size_t)n);
  j->glab = malloc(sizeof(int32_t) * (size_t)B);
  j->tpos = malloc(sizeof(int32_t) * (size_t)B);
  j->tneg = malloc(sizeof(int32_t) * (size_t)B);
  j->probs = malloc(sizeof(float) * (size_t)(n * (C > 0 ? C : 1)));
  j->dlogits = malloc(sizeof(float) * (size_t)(n * (C > 0 ? C : 1)));
  j->gfeat = malloc(sizeof(float) * (size_t)(B * D));
  j->gdfeat = malloc(sizeof(float) * (size_t)(B * D));
  j->tdap = malloc(sizeof(float) * (size_t)B);
  j->tdan = malloc(sizeof(float) * (size_t)B);
  j->feat_n = malloc(sizeof(float) * (size_t)(n * D));
  j->norms = malloc(sizeof(float) * (size_t)n);
  j->dneck = malloc(sizeof(float) * (size_t)(n * D));
  int rc = j->gidx && j->lab_local && j->glab && j->tpos && j->tneg && j->probs && j->dlogits && j->gfeat &&
                   j->gdfeat && j->tdap && j->tdan && j->feat_n && j->norms && j->dneck
               ? 0
               : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for a batch of %lld", (long long)B);
  for (int r = 0; r < ctx->size; r++) {
    int64_t p0, c;
    slr_batch_slice(B, r, ctx->size, &p0, &c);
    j->lcounts[r] = (int)c;
    j->ldispls[r] = (int)p0;
  }
  int64_t most = j->nloc > j->cfg->eval.batch_size ? j->nloc : j->cfg->eval.batch_size;
  if (!rc) rc = slr_model_plan(&j->model, (int)most, j->cfg->data.height, j->cfg->data.width, 1);
  return slr_agree(ctx->world, rc);
}

/* ---- checkpoints -------------------------------------------------------------------- */

#define CK_ATTR_I64(name, v) \
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/", name, v)

/* soft labels: each rank's CSR rows as one global CSR (row-sharded) */
static int write_csr_rows(slr_h5 *f, MPI_Comm comm, const char *group, const slr_csr *m,
                          int64_t row0, int64_t nrows_global) {
  int64_t nnz = slr_csr_nnz(m), off = 0, total = 0;
  SLR_MPI(MPI_Exscan(&nnz, &off, 1, MPI_INT64_T, MPI_SUM, comm));
  int rank;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) off = 0;
  SLR_MPI(MPI_Allreduce(&nnz, &total, 1, MPI_INT64_T, MPI_SUM, comm));
  int64_t *ptr = malloc(sizeof(int64_t) * (size_t)(m->nrows + 1));
  int rc = ptr ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory writing %s", group);
  SLR_TRY(slr_agree(comm, rc));
  for (int64_t i = 0; i <= m->nrows; i++) ptr[i] = (m->indptr ? m->indptr[i] : 0) + off;
  char name[128];
  /* indptr has nrows_global + 1 entries: the last rank also writes the end */
  int size;
  MPI_Comm_size(comm, &size);
  int64_t dims[1] = {nrows_global + 1};
  snprintf(name, sizeof name, "%s/indptr", group);
  rc = slr_h5_write_rows(f, name, SLR_I64, 1, dims, row0, m->nrows + (rank == size - 1), ptr);
  free(ptr);
  SLR_TRY(rc);
  dims[0] = total;
  snprintf(name, sizeof name, "%s/indices", group);
  SLR_TRY(slr_h5_write_rows(f, name, SLR_I32, 1, dims, off, nnz, m->indices));
  snprintf(name, sizeof name, "%s/values", group);
  SLR_TRY(slr_h5_write_rows(f, name, SLR_F64, 1, dims, off, nnz, m->values));
  return slr_h5_attr_set_i64(f, group, "ncols", m->ncols);
}

static int write_csr_all(slr_h5 *f, const char *group, const slr_csr *m) {
  char name[128];
  int64_t dims[1] = {m->nrows + 1};
  int64_t zero = 0;
  snprintf(name, sizeof name, "%s/indptr", group);
  SLR_TRY(slr_h5_write_all(f, name, SLR_I64, 1, dims, m->indptr ? m->indptr : &zero));
  dims[0] = slr_csr_nnz(m);
  snprintf(name, sizeof name, "%s/indices", group);
  SLR_TRY(slr_h5_write_all(f, name, SLR_I32, 1, dims, m->indices));
  snprintf(name, sizeof name, "%s/values", group);
  SLR_TRY(slr_h5_write_all(f, name, SLR_F64, 1, dims, m->values));
  return slr_h5_attr_set_i64(f, group, "ncols", m->ncols);
}

int slr_job_checkpoint(job_t *j) {
  const slr_ctx *ctx = j->ctx;
  const slr_config *cfg = j->cfg;
  char path[SLR_PATH_MAX];
  SLR_TRY(slr_ckpt_path(j->run, j->position, path, sizeof path));
  int64_t offset = ctx->rank == 0 ? slr_file_size(j->metrics_path) : 0;
  SLR_MPI(MPI_Bcast(&offset, 1, MPI_INT64_T, 0, ctx->world));
  int si = j->stage_index;
  slr_h5 f;
  SLR_TRY(slr_h5_create(&f, ctx->world, path, "checkpoint", SLR_CHECKPOINT_VERSION));
  int rc = slr_h5_attr_set_str(&f, "/", "stage", cfg->train.stages.v[si]);
  CK_ATTR_I64("stage_index", si);
  CK_ATTR_I64("epoch", j->epoch);
  CK_ATTR_I64("step", j->step);
  CK_ATTR_I64("position", j->position);
  CK_ATTR_I64("metrics_offset", offset);
  CK_ATTR_I64("seed", cfg->run.seed);
  CK_ATTR_I64("ranks", ctx->size);
  CK_ATTR_I64("threads", slr_threads_get());
  CK_ATTR_I64("steps_in_sum", j->nsteps);
  CK_ATTR_I64("optimizer_step", j->opt.step);
  CK_ATTR_I64("has_prev", j->has_prev);
  CK_ATTR_I64("clusters", j->K);
  if (!rc) rc = slr_h5_attr_set_f64(&f, "/", "loss_sum_a", j->sum_a);
  if (!rc) rc = slr_h5_attr_set_f64(&f, "/", "loss_sum_b", j->sum_b);
  if (!rc) rc = slr_h5_attr_set_str(&f, "/", "rng", "Philox4x32-10 keyed by (run.seed, epoch, step, sample): no state beyond the position");
  int64_t dims[2];
  dims[0] = j->model.nparams;
  if (!rc) rc = slr_h5_write_all(&f, "/model/params", SLR_F32, 1, dims, j->model.params);
  dims[0] = j->model.nbuffers;
  if (!rc) rc = slr_h5_write_all(&f, "/model/buffers", SLR_F32, 1, dims, j->model.buffers);
  dims[0] = j->model.ncounts;
  if (!rc) rc = slr_h5_write_all(&f, "/model/counts", SLR_I64, 1, dims, j->model.counts);
  dims[0] = j->opt_nstate;
  if (!rc) rc = slr_h5_write_all(&f, "/optimizer/state", SLR_F32, 1, dims, j->opt_state);
  if (!rc && j->stage == STAGE_ADAPT && j->K > 0) {
    const int64_t N = j->target.split[SLR_TRAIN].n, D = j->model.feat_dim;
    dims[0] = j->K;
    dims[1] = D;
    rc = slr_h5_write_all(&f, "/memory", SLR_F32, 2, dims, j->memory);
    dims[0] = N;
    if (!rc) rc = slr_h5_write_all(&f, "/labels/dbscan", SLR_I32, 1, dims, j->y_dbscan);
    if (!rc) rc = slr_h5_write_all(&f, "/labels/refined", SLR_I32, 1, dims, j->y_refined);
    if (!rc) rc = slr_h5_write_all(&f, "/labels/previous", SLR_I32, 1, dims, j->y_prev);
    if (!rc) rc = write_csr_rows(&f, ctx->world, "/labels/soft", &j->ref.soft, j->feat_first, N);
    if (!rc) rc = write_csr_all(&f, "/labels/iou", &j->ref.iou);
    dims[1] = D;
    if (!rc) rc = slr_h5_write_rows(&f, "/features", SLR_F32, 2, dims, j->feat_first, j->feat_count, j->feat_local);
  }
  rc = slr_agree(ctx->world, rc);
  if (rc) {
    slr_h5_abort(&f);
    return rc;
  }
  SLR_TRY(slr_h5_commit(&f));
  slr_debug("checkpoint %s", path);
  return slr_ckpt_prune(ctx->world, j->run, j->cfg->checkpoint.keep);
}

static int read_i64(slr_h5 *f, const char *name, int64_t *v) {
  return slr_h5_attr_get_i64(f, "/", name, v);
}

static int load_checkpoint(job_t *j, const char *path) {
  const slr_ctx *ctx = j->ctx;
  const slr_config *cfg = j->cfg;
  slr_h5 f;
  SLR_TRY(slr_h5_open(&f, ctx->world, path, "checkpoint", SLR_CHECKPOINT_VERSION, 0));
  int64_t si = 0, ranks = 0, offset = 0, has_prev = 0, seed = 0;
  char stage[64] = "";
  int rc = slr_h5_attr_get_str(&f, "/", "stage", stage, sizeof stage);
  if (!rc) rc = read_i64(&f, "stage_index", &si);
  if (!rc) rc = read_i64(&f, "epoch", &j->epoch);
  if (!rc) rc = read_i64(&f, "step", &j->step);
  if (!rc) rc = read_i64(&f, "position", &j->position);
  if (!rc) rc = read_i64(&f, "metrics_offset", &offset);
  if (!rc) rc = read_i64(&f, "seed", &seed);
  if (!rc) rc = read_i64(&f, "ranks", &ranks);
  if (!rc) rc = read_i64(&f, "steps_in_sum", &j->nsteps);
  if (!rc) rc = read_i64(&f, "optimizer_step", &j->ck_opt_step);
  if (!rc) rc = read_i64(&f, "has_prev", &has_prev);
  if (!rc) rc = read_i64(&f, "clusters", &j->K);
  if (!rc) rc = slr_h5_attr_get_f64(&f, "/", "loss_sum_a", &j->sum_a);
  if (!rc) rc = slr_h5_attr_get_f64(&f, "/", "loss_sum_b", &j->sum_b);
  if (!rc && (si < 0 || si >= cfg->train.stages.n || strcmp(cfg->train.stages.v[si], stage)))
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s was written at stage %lld (%s), which train.stages (%s...) "
                  "does not have there", path, (long long)si, stage, cfg->train.stages.v[0]);
  if (!rc && seed != cfg->run.seed)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s was written with run.seed %lld, the configuration has %lld",
                  path, (long long)seed, (long long)cfg->run.seed);
  if (!rc && ranks != ctx->size)
    slr_warn("%s was written by %lld ranks, resuming on %d: the run goes on, but not bit for "
             "bit as an uninterrupted run", path, (long long)ranks, ctx->size);
  rc = slr_agree(ctx->world, rc);
  void *buf = NULL;
  if (!rc) rc = slr_h5_read_all(&f, "/model/params", SLR_F32, &buf, &j->ck_nparams);
  j->ck_params = buf;
  if (!rc) rc = slr_h5_read_all(&f, "/model/buffers", SLR_F32, &buf, &j->ck_nbuffers);
  if (!rc) j->ck_buffers = buf;
  if (!rc) rc = slr_h5_read_all(&f, "/model/counts", SLR_I64, &buf, &j->ck_ncounts);
  if (!rc) j->ck_counts = buf;
  if (!rc) rc = slr_h5_read_all(&f, "/optimizer/state", SLR_F32, &buf, &j->ck_nopt);
  if (!rc) j->ck_opt = buf;
  const int adapt = !strcmp(stage, "adapt");
  if (!rc && adapt && j->K > 0) {
    int64_t n = 0, N = j->target.split[SLR_TRAIN].n;
    const char *names[3] = {"/labels/dbscan", "/labels/refined", "/labels/previous"};
    int32_t *dst[3] = {j->y_dbscan, j->y_refined, j->y_prev};
    for (int k = 0; !rc && k < 3; k++) {
      rc = slr_h5_read_all(&f, names[k], SLR_I32, &buf, &n);
      if (!rc && n != N)
        rc = SLR_FAIL(SLR_ERR_INPUT, "%s: %s has %lld labels, the target has %lld images", path,
                      names[k], (long long)n, (long long)N);
      if (!rc) memcpy(dst[k], buf, sizeof(int32_t) * (size_t)N);
      free(buf);
      buf = NULL;
    }
    if (!rc) rc = slr_h5_read_all(&f, "/memory", SLR_F32, &buf, &n);
    if (!rc) j->memory = buf;
    /* the epoch's IoU matrix (for the soft-label loss) */
    int64_t nptr = 0, nnz = 0, ncols = 0;
    void *p = NULL, *ix = NULL, *v = NULL;
    if (!rc) rc = slr_h5_read_all(&f, "/labels/iou/indptr", SLR_I64, &p, &nptr);
    if (!rc) rc = slr_h5_read_all(&f, "/labels/iou/indices", SLR_I32, &ix, &nnz);
    if (!rc) rc = slr_h5_read_all(&f, "/labels/iou/values", SLR_F64, &v, &nnz);
    if (!rc) rc = slr_h5_attr_get_i64(&f, "/labels/iou", "ncols", &ncols);
    j->ref.iou.indptr = p;
    j->ref.iou.indices = ix;
    j->ref.iou.values = v;
    j->ref.iou.nrows = nptr > 0 ? nptr - 1 : 0;
    j->ref.iou.ncols = ncols;
  }
  slr_h5_close(&f);
  SLR_TRY(rc);
  j->has_prev = (int)has_prev;
  j->resumed_stage = (int)si;
  /* an epoch that had ended: go on with the next one */
  const int64_t iters = adapt ? cfg->train.adapt.iters : cfg->train.pretrain.iters;
  if (j->step >= iters) {
    j->epoch++;
    j->step = 0;
  }
  if (ctx->rank == 0) rc = slr_file_truncate(j->metrics_path, offset);
  return slr_agree(ctx->world, rc);
}
