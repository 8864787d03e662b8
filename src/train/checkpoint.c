/* Checkpoints from one table of fields: each field's name, type, shape,
 * owner (the sub-state it belongs to) and what a resume does with it. The
 * same table writes a checkpoint, reads it back, prints it (slr inspect)
 * and documents the layout (slr inspect --schema, docs/train.md). Per-epoch
 * diagnostics that a resume never reads (features, soft labels) go to
 * RUN/labels/epoch-NNN.h5 instead. */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

typedef enum { F_I64, F_F64, F_STR, F_DATA, F_CSR } f_kind;
/* what a resume does with a field */
typedef enum { R_READ, R_CHECK, R_INFO } f_resume;

typedef struct {
  const char *name;  /* root attribute, dataset or CSR group */
  f_kind kind;
  const char *type;  /* for the documentation */
  const char *shape;
  const char *owner; /* position | model | optimizer | labels | run */
  int adapt_only;    /* written in adaptation checkpoints with labels only */
  f_resume resume;
  const char *help;
  int64_t (*get_i)(const tr_job *j);
  void (*set_i)(tr_job *j, int64_t v);
  double (*get_f)(const tr_job *j);
  void (*set_f)(tr_job *j, double v);
  /* F_DATA: the buffer, its type and shape (allocated for reading) */
  void *(*data)(tr_job *j, slr_dtype *type, int *nd, int64_t dims[2]);
  slr_csr *(*csr)(tr_job *j);
} tr_field;

/* metrics.jsonl's size at the checkpoint, staged between the table and the file */
static int64_t metrics_offset;

#define I64_FIELD(id, lvalue)                                                \
  static int64_t get_##id(const tr_job *j) { return (int64_t)(lvalue); }    \
  static void set_##id(tr_job *j, int64_t v) { (lvalue) = v; }
#define F64_FIELD(id, lvalue)                                                \
  static double get_##id(const tr_job *j) { return (lvalue); }              \
  static void set_##id(tr_job *j, double v) { (lvalue) = v; }

I64_FIELD(stage_index, j->pos.stage_index)
I64_FIELD(epoch, j->pos.epoch)
I64_FIELD(step, j->pos.step)
I64_FIELD(position, j->pos.position)
I64_FIELD(nsteps, j->pos.nsteps)
I64_FIELD(opt_step, j->model.opt.step)
I64_FIELD(has_prev, j->labels.has_prev)
I64_FIELD(clusters, j->labels.k)
F64_FIELD(sum_a, j->pos.sum_a)
F64_FIELD(sum_b, j->pos.sum_b)
F64_FIELD(alpha, j->labels.alpha)
static int64_t get_offset(const tr_job *j) { (void)j; return metrics_offset; }
static void set_offset(tr_job *j, int64_t v) { (void)j; metrics_offset = v; }
static int64_t get_seed(const tr_job *j) { return j->cfg->run.seed; }
static int64_t get_ranks(const tr_job *j) { return j->ctx->size; }
static int64_t get_threads(const tr_job *j) { (void)j; return slr_threads_get(); }

static void *d_params(tr_job *j, slr_dtype *t, int *nd, int64_t dims[2]) {
  *t = SLR_F32, *nd = 1, dims[0] = j->model.net.nparams;
  return j->model.net.params;
}
static void *d_buffers(tr_job *j, slr_dtype *t, int *nd, int64_t dims[2]) {
  *t = SLR_F32, *nd = 1, dims[0] = j->model.net.nbuffers;
  return j->model.net.buffers;
}
static void *d_counts(tr_job *j, slr_dtype *t, int *nd, int64_t dims[2]) {
  *t = SLR_I64, *nd = 1, dims[0] = j->model.net.ncounts;
  return j->model.net.counts;
}
static void *d_opt(tr_job *j, slr_dtype *t, int *nd, int64_t dims[2]) {
  *t = SLR_F32, *nd = 1, dims[0] = j->model.opt_nstate;
  return j->model.opt_state;
}
static void *d_memory(tr_job *j, slr_dtype *t, int *nd, int64_t dims[2]) {
  *t = SLR_F32, *nd = 2, dims[0] = j->labels.k, dims[1] = j->model.net.feat_dim;
  return j->labels.memory.rows;
}
static void *d_dbscan(tr_job *j, slr_dtype *t, int *nd, int64_t dims[2]) {
  *t = SLR_I32, *nd = 1, dims[0] = j->labels.n;
  return j->labels.y_dbscan;
}
static void *d_refined(tr_job *j, slr_dtype *t, int *nd, int64_t dims[2]) {
  *t = SLR_I32, *nd = 1, dims[0] = j->labels.n;
  return j->labels.y_refined;
}
static void *d_previous(tr_job *j, slr_dtype *t, int *nd, int64_t dims[2]) {
  *t = SLR_I32, *nd = 1, dims[0] = j->labels.n;
  return j->labels.y_prev;
}
static slr_csr *c_proj(tr_job *j) { return &j->labels.proj; }

#define ATTR_I(name, owner, resume, id, help) \
  {name, F_I64, "int64", "", owner, 0, resume, help, get_##id, NULL, NULL, NULL, NULL, NULL}
#define ATTR_IS(name, owner, resume, id, help) \
  {name, F_I64, "int64", "", owner, 0, resume, help, get_##id, set_##id, NULL, NULL, NULL, NULL}
#define ATTR_F(name, owner, id, help) \
  {name, F_F64, "float64", "", owner, 0, R_READ, help, NULL, NULL, get_##id, set_##id, NULL, NULL}
#define DATA(name, type, shape, owner, adapt, fn, help) \
  {name, F_DATA, type, shape, owner, adapt, R_READ, help, NULL, NULL, NULL, NULL, fn, NULL}

static const tr_field FIELDS[] = {
    {"stage", F_STR, "string", "", "position", 0, R_CHECK, "the stage running (a name of train.stages)",
     NULL, NULL, NULL, NULL, NULL, NULL},
    ATTR_IS("stage_index", "position", R_READ, stage_index, "its index in train.stages"),
    ATTR_IS("epoch", "position", R_READ, epoch, "epoch inside the stage, from 0"),
    ATTR_IS("step", "position", R_READ, step, "steps done in that epoch"),
    ATTR_IS("position", "position", R_READ, position, "steps done over the whole run"),
    ATTR_IS("steps_in_sum", "position", R_READ, nsteps, "steps in the epoch's running loss sums"),
    ATTR_F("loss_sum_a", "position", sum_a, "running sum of the epoch's loss (cross-entropy)"),
    ATTR_F("loss_sum_b", "position", sum_b, "running sum of the epoch's triplet loss"),
    ATTR_IS("metrics_offset", "run", R_READ, offset, "size of metrics.jsonl (cut back on resume)"),
    ATTR_I("seed", "run", R_CHECK, seed, "run.seed (must match)"),
    ATTR_I("ranks", "run", R_CHECK, ranks, "ranks that wrote it (another count warns)"),
    ATTR_I("threads", "run", R_CHECK, threads, "threads per rank (another count warns)"),
    {"config", F_STR, "string", "", "run", 0, R_CHECK,
     "the resolved configuration (a changed one is refused)", NULL, NULL, NULL, NULL, NULL, NULL},
    {"rng", F_STR, "string", "", "run", 0, R_INFO, "how the random draws are keyed", NULL, NULL,
     NULL, NULL, NULL, NULL},
    DATA("/model/params", "float32", "(P)", "model", 0, d_params, "all parameters, one buffer"),
    DATA("/model/buffers", "float32", "(Q)", "model", 0, d_buffers, "batch-norm running statistics"),
    DATA("/model/counts", "int64", "(R)", "model", 0, d_counts, "batch-norm batch counters"),
    ATTR_IS("optimizer_step", "optimizer", R_READ, opt_step, "optimizer steps taken"),
    DATA("/optimizer/state", "float32", "(S)", "optimizer", 0, d_opt,
         "Adam moments or SGD momentum, in the parameters' layout"),
    ATTR_IS("has_prev", "labels", R_READ, has_prev, "previous labels exist (epoch > 0)"),
    ATTR_IS("clusters", "labels", R_READ, clusters, "clusters of the memory (0 in pretraining)"),
    DATA("/memory", "float32", "(K, D)", "labels", 1, d_memory, "the cluster memory"),
    DATA("/labels/dbscan", "int32", "(N)", "labels", 1, d_dbscan, "this epoch's DBSCAN labels"),
    DATA("/labels/refined", "int32", "(N)", "labels", 1, d_refined, "this epoch's refined labels"),
    DATA("/labels/previous", "int32", "(N)", "labels", 1, d_previous,
         "the previous labels that the SLR step projects"),
    ATTR_F("alpha", "labels", alpha, "this epoch's alpha (refine.alpha_schedule)"),
    {"/labels/projection", F_CSR, "CSR", "(K_prev, K_cur)", "labels", 1, R_READ,
     "this epoch's projection P of the previous labels (indptr int64, indices int32, values "
     "float64; attribute ncols)", NULL, NULL, NULL, NULL, NULL, c_proj},
};
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

static const char RNG_TEXT[] =
    "Philox4x32-10 keyed by (run.seed, epoch, step, sample): no state beyond the position";

static int has_labels(const tr_job *j) { return j->pos.stage == STAGE_ADAPT && j->labels.k > 0; }

/* ---- CSR in a group ------------------------------------------------------------- */

static int write_csr(slr_h5 *f, const char *group, const slr_csr *m) {
  char name[128];
  int64_t dims[1] = {m->nrows + 1}, zero = 0;
  snprintf(name, sizeof name, "%s/indptr", group);
  SLR_TRY(slr_h5_write_all(f, name, SLR_I64, 1, dims, m->indptr ? m->indptr : &zero));
  dims[0] = slr_csr_nnz(m);
  snprintf(name, sizeof name, "%s/indices", group);
  SLR_TRY(slr_h5_write_all(f, name, SLR_I32, 1, dims, m->indices));
  snprintf(name, sizeof name, "%s/values", group);
  SLR_TRY(slr_h5_write_all(f, name, SLR_F64, 1, dims, m->values));
  return slr_h5_attr_set_i64(f, group, "ncols", m->ncols);
}

static int read_csr(slr_h5 *f, const char *path, const char *group, slr_csr *m) {
  char name[128];
  void *p = NULL, *ix = NULL, *v = NULL;
  int64_t nptr = 0, nnz = 0, nval = 0, ncols = 0;
  snprintf(name, sizeof name, "%s/indptr", group);
  int rc = slr_h5_read_all(f, name, SLR_I64, &p, &nptr);
  snprintf(name, sizeof name, "%s/indices", group);
  if (!rc) rc = slr_h5_read_all(f, name, SLR_I32, &ix, &nnz);
  snprintf(name, sizeof name, "%s/values", group);
  if (!rc) rc = slr_h5_read_all(f, name, SLR_F64, &v, &nval);
  if (!rc) rc = slr_h5_attr_get_i64(f, group, "ncols", &ncols);
  if (!rc && (nptr < 1 || nnz != nval || ((int64_t *)p)[nptr - 1] != nnz))
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: %s is not a valid CSR matrix", path, group);
  slr_csr_free(m);
  if (rc) {
    free(p), free(ix), free(v);
    return rc;
  }
  m->indptr = p, m->indices = ix, m->values = v;
  m->nrows = nptr - 1;
  m->ncols = ncols;
  return 0;
}

/* ---- writing ---------------------------------------------------------------------- */

static int write_field(tr_job *j, slr_h5 *f, const tr_field *fd, const char *config_text) {
  switch (fd->kind) {
  case F_I64: return slr_h5_attr_set_i64(f, "/", fd->name, fd->get_i(j));
  case F_F64: return slr_h5_attr_set_f64(f, "/", fd->name, fd->get_f(j));
  case F_STR: {
    const char *v = !strcmp(fd->name, "stage") ? j->cfg->train.stages.v[j->pos.stage_index]
                    : !strcmp(fd->name, "config") ? config_text : RNG_TEXT;
    return slr_h5_attr_set_str(f, "/", fd->name, v);
  }
  case F_DATA: {
    slr_dtype t;
    int nd;
    int64_t dims[2];
    void *buf = fd->data(j, &t, &nd, dims);
    return slr_h5_write_all(f, fd->name, t, nd, dims, buf);
  }
  case F_CSR: return write_csr(f, fd->name, fd->csr(j));
  }
  return 0;
}

int tr_checkpoint_write(tr_job *j) {
  const slr_ctx *ctx = j->ctx;
  char path[SLR_PATH_MAX];
  SLR_TRY(slr_ckpt_path(j->run, j->pos.position, path, sizeof path));
  int64_t offset = ctx->rank == 0 ? slr_file_size(j->metrics_path) : 0;
  SLR_MPI(MPI_Bcast(&offset, 1, MPI_INT64_T, 0, ctx->world));
  metrics_offset = offset;
  char *config_text = slr_config_to_string(j->cfg);
  SLR_TRY(slr_agree(ctx->world, config_text ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory")));
  slr_h5 f;
  int rc = slr_h5_create(&f, ctx->world, path, "checkpoint", SLR_CHECKPOINT_VERSION);
  if (rc) {
    free(config_text);
    return rc;
  }
  const int labels = has_labels(j);
  for (size_t i = 0; !rc && i < NFIELDS; i++)
    if (!FIELDS[i].adapt_only || labels) rc = write_field(j, &f, &FIELDS[i], config_text);
  /* the model's description on /model, so that slr export needs nothing else */
  if (!rc) rc = slr_model_desc_write(&f, "/model", &j->model.net.cfg, j->model.net.feat_dim);
  free(config_text);
  rc = slr_agree(ctx->world, rc);
  if (rc) {
    slr_h5_abort(&f);
    return rc;
  }
  SLR_TRY(slr_h5_commit(&f));
  slr_strlcpy(j->last_ckpt, path, sizeof j->last_ckpt);
  slr_debug("checkpoint %s", path);
  return slr_ckpt_prune(ctx->world, j->run, j->cfg->checkpoint.keep);
}

/* ---- reading ---------------------------------------------------------------------- */

/* Keys that do not change a run's arithmetic: a resume may change them. */
static const char *FREE_KEYS[] = {"run.log_level", "run.log_all_ranks", "run.progress_interval",
                                  "run.threads", "checkpoint.", "data.workers", "data.prefetch",
                                  "data.cache", "eval.batch_size"};

static int free_key(const char *line) {
  for (size_t i = 0; i < sizeof FREE_KEYS / sizeof FREE_KEYS[0]; i++)
    if (!strncmp(line, FREE_KEYS[i], strlen(FREE_KEYS[i]))) return 1;
  return 0;
}

/* The keys whose values differ between the configuration a checkpoint was
 * written with (its YAML text) and cfg, as "key: old -> new" joined by "; "
 * into buf ("" when equal), leaving out the keys a resume may change.
 * Local. */
static int config_diff(const char *saved, const slr_config *cfg, const char *path, char *buf,
                       size_t len) {
  buf[0] = 0;
  slr_config *old = malloc(sizeof *old);
  if (!old) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  slr_config_defaults(old);
  int rc = slr_config_load_text(old, saved, path), count = 0;
  char *diff = rc ? NULL : slr_config_diff(old, cfg, &count);
  for (char *line = diff, *next; !rc && line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0; else next = line + strlen(line);
    if (free_key(line)) continue;
    const size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s", used ? "; " : "", line);
  }
  free(diff);
  free(old);
  return rc;
}

static int check_strings(tr_job *j, slr_h5 *f, const char *path) {
  const slr_config *cfg = j->cfg;
  char stage[64] = "";
  SLR_TRY(slr_h5_attr_get_str(f, "/", "stage", stage, sizeof stage));
  const int64_t si = j->pos.stage_index;
  if (si < 0 || si >= cfg->train.stages.n || strcmp(cfg->train.stages.v[si], stage))
    return SLR_FAIL(SLR_ERR_INPUT, "%s was written at stage %lld (%s), which train.stages does "
                    "not have there", path, (long long)si, stage);
  if (!slr_h5_attr_exists(f, "/", "config")) return 0;
  size_t cap = 1 << 16;
  char *saved = malloc(cap), diff[1024];
  int rc = saved ? slr_h5_attr_get_str(f, "/", "config", saved, cap)
                 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  if (!rc) rc = config_diff(saved, cfg, path, diff, sizeof diff);
  if (!rc && diff[0] && !j->force_config)
    rc = SLR_FAIL(SLR_ERR_CONFIG, "%s was written with another configuration (%s); resuming "
                  "with a changed configuration loses the exact resume: use a new --out, or "
                  "--force-config to accept it", path, diff);
  else if (!rc && diff[0]) {
    slr_warn("resuming %s with a changed configuration (--force-config): %s", path, diff);
    slr_strlcpy(j->config_change, diff, sizeof j->config_change);
  }
  free(saved);
  return rc;
}

static int check_ints(tr_job *j, slr_h5 *f, const char *path) {
  int64_t seed = 0, ranks = 0, threads = 0;
  SLR_TRY(slr_h5_attr_get_i64(f, "/", "seed", &seed));
  SLR_TRY(slr_h5_attr_get_i64(f, "/", "ranks", &ranks));
  SLR_TRY(slr_h5_attr_get_i64(f, "/", "threads", &threads));
  if (seed != j->cfg->run.seed)
    return SLR_FAIL(SLR_ERR_INPUT, "%s was written with run.seed %lld, the configuration has %lld",
                    path, (long long)seed, (long long)j->cfg->run.seed);
  if (ranks != j->ctx->size)
    slr_warn("%s was written by %lld ranks, resuming on %d: the run goes on, but not bit for "
             "bit as an uninterrupted run", path, (long long)ranks, j->ctx->size);
  if (threads != slr_threads_get())
    slr_warn("%s was written with %lld threads per rank, resuming with %d: the run goes on, but "
             "not bit for bit as an uninterrupted run", path, (long long)threads, slr_threads_get());
  return 0;
}

/* The attribute fields read back: those of the model and optimizer
 * (model_owned) once the stage's model exists, the others with the header. */
static int read_attrs(tr_job *j, slr_h5 *f, int model_owned) {
  int rc = 0;
  for (size_t i = 0; !rc && i < NFIELDS; i++) {
    const tr_field *fd = &FIELDS[i];
    const int mine = !strcmp(fd->owner, "model") || !strcmp(fd->owner, "optimizer");
    if (fd->resume != R_READ || mine != model_owned) continue;
    if (fd->kind == F_I64) {
      int64_t v = 0;
      rc = slr_h5_attr_get_i64(f, "/", fd->name, &v);
      if (!rc) fd->set_i(j, v);
    } else if (fd->kind == F_F64) {
      double v = 0;
      rc = slr_h5_attr_get_f64(f, "/", fd->name, &v);
      if (!rc) fd->set_f(j, v);
    }
  }
  return rc;
}

int tr_checkpoint_read_header(tr_job *j, const char *path) {
  const slr_ctx *ctx = j->ctx;
  slr_h5 f;
  SLR_TRY(slr_h5_open(&f, ctx->world, path, "checkpoint", SLR_CHECKPOINT_VERSION, 0));
  int rc = read_attrs(j, &f, 0);
  if (!rc) rc = check_strings(j, &f, path);
  if (!rc) rc = check_ints(j, &f, path);
  rc = slr_agree(ctx->world, rc);
  slr_h5_close(&f);
  SLR_TRY(rc);
  j->resumed_stage = j->pos.stage_index;
  j->pos.stage = strcmp(j->cfg->train.stages.v[j->pos.stage_index], "pretrain") == 0
                     ? STAGE_PRETRAIN : STAGE_ADAPT;
  /* an epoch that had ended: go on with the next one */
  const int64_t iters =
      j->pos.stage == STAGE_ADAPT ? j->cfg->train.adapt.iters : j->cfg->train.pretrain.iters;
  if (j->pos.step >= iters) {
    j->pos.epoch++;
    j->pos.step = 0;
  }
  if (ctx->rank == 0) rc = slr_file_truncate(j->metrics_path, metrics_offset);
  return slr_agree(ctx->world, rc);
}

static int read_data(tr_job *j, slr_h5 *f, const char *path, const tr_field *fd) {
  slr_dtype t;
  int nd;
  int64_t dims[2] = {0, 1}, fdims[SLR_H5_MAXDIMS];
  int fnd, ftype;
  void *buf = fd->data(j, &t, &nd, dims);
  SLR_TRY(slr_h5_shape(f, fd->name, &fnd, fdims, &ftype));
  int64_t want = dims[0] * (nd > 1 ? dims[1] : 1), have = fnd > 0 ? 1 : 0;
  for (int d = 0; d < fnd; d++) have *= fdims[d];
  if (fnd != nd || want != have || (fnd > 0 && fdims[0] != dims[0]))
    return SLR_FAIL(SLR_ERR_INPUT, "%s: %s has %lld values where the configured run has %lld: "
                    "was the configuration changed?", path, fd->name, (long long)have,
                    (long long)want);
  return slr_h5_read_rows(f, fd->name, t, 0, dims[0], buf);
}

int tr_checkpoint_read_state(tr_job *j, const char *path) {
  const slr_ctx *ctx = j->ctx;
  const int labels = has_labels(j);
  int rc = 0;
  /* the memory's rows are sized by the checkpoint's cluster count */
  if (labels) rc = slr_cmemory_init(&j->labels.memory, j->labels.k, j->model.net.feat_dim);
  SLR_TRY(slr_agree(ctx->world, rc));
  slr_h5 f;
  SLR_TRY(slr_h5_open(&f, ctx->world, path, "checkpoint", SLR_CHECKPOINT_VERSION, 0));
  rc = read_attrs(j, &f, 1);
  for (size_t i = 0; !rc && i < NFIELDS; i++) {
    const tr_field *fd = &FIELDS[i];
    if (fd->adapt_only && !labels) continue;
    if (fd->kind == F_DATA) rc = read_data(j, &f, path, fd);
    if (fd->kind == F_CSR) rc = read_csr(&f, path, fd->name, fd->csr(j));
  }
  rc = slr_agree(ctx->world, rc);
  slr_h5_close(&f);
  SLR_TRY(rc);
  j->labels.soft_ready = 0;
  return 0;
}

/* ---- the labels file of an epoch --------------------------------------------------- */

/* A row-sharded CSR (each rank its rows) as one global CSR. Collective. */
static int write_csr_rows(slr_h5 *f, const slr_ctx *ctx, const char *group, const slr_csr *m,
                          int64_t row0, int64_t nrows_global) {
  int64_t nnz = slr_csr_nnz(m), off = 0, total = 0;
  SLR_MPI(MPI_Exscan(&nnz, &off, 1, MPI_INT64_T, MPI_SUM, ctx->world));
  if (ctx->rank == 0) off = 0;
  SLR_MPI(MPI_Allreduce(&nnz, &total, 1, MPI_INT64_T, MPI_SUM, ctx->world));
  int64_t *ptr = malloc(sizeof(int64_t) * (size_t)(m->nrows + 1));
  SLR_TRY(slr_agree(ctx->world, ptr ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory writing %s", group)));
  for (int64_t i = 0; i <= m->nrows; i++) ptr[i] = (m->indptr ? m->indptr[i] : 0) + off;
  char name[128];
  /* indptr has nrows_global + 1 entries: the last rank also writes the end */
  int64_t dims[1] = {nrows_global + 1};
  snprintf(name, sizeof name, "%s/indptr", group);
  int rc = slr_h5_write_rows(f, name, SLR_I64, 1, dims, row0, m->nrows + (ctx->rank == ctx->size - 1), ptr);
  free(ptr);
  SLR_TRY(rc);
  dims[0] = total;
  snprintf(name, sizeof name, "%s/indices", group);
  SLR_TRY(slr_h5_write_rows(f, name, SLR_I32, 1, dims, off, nnz, m->indices));
  snprintf(name, sizeof name, "%s/values", group);
  SLR_TRY(slr_h5_write_rows(f, name, SLR_F64, 1, dims, off, nnz, m->values));
  return slr_h5_attr_set_i64(f, group, "ncols", m->ncols);
}

static int write_labels_body(tr_job *j, slr_h5 *f, const float *feat, int64_t first,
                             int64_t count, const slr_refine_result *ref) {
  const tr_labels *l = &j->labels;
  const slr_split *s = &j->data.target.split[SLR_TRAIN];
  int64_t dims[2] = {l->n, j->model.net.feat_dim};
  SLR_TRY(slr_h5_attr_set_i64(f, "/", "epoch", j->pos.epoch + 1));
  SLR_TRY(slr_h5_attr_set_str(f, "/", "refine", slr_refine_mode_name(j->refine.mode)));
  if (j->cfg->checkpoint.labels_features)
    SLR_TRY(slr_h5_write_rows(f, "/features", SLR_F32, 2, dims, first, count, feat));
  SLR_TRY(slr_h5_write_rows(f, "/pids", SLR_I32, 1, dims, first, count, s->pids + first));
  SLR_TRY(slr_h5_write_rows(f, "/camids", SLR_I32, 1, dims, first, count, s->camids + first));
  SLR_TRY(slr_h5_write_all(f, "/labels/dbscan", SLR_I32, 1, dims, l->y_dbscan));
  SLR_TRY(slr_h5_write_all(f, "/labels/refined", SLR_I32, 1, dims, l->y_refined));
  if (l->has_prev) SLR_TRY(slr_h5_write_all(f, "/labels/previous", SLR_I32, 1, dims, l->y_prev));
  SLR_TRY(write_csr_rows(f, j->ctx, "/labels/soft", &ref->soft, first, l->n));
  SLR_TRY(write_csr(f, "/labels/iou", &ref->iou));
  return write_csr(f, "/labels/projection", &l->proj);
}

int tr_labels_file_write(tr_job *j, const float *feat, int64_t first, int64_t count,
                         const slr_refine_result *ref) {
  char dir[SLR_PATH_MAX + 16], path[SLR_PATH_MAX + 64];
  snprintf(dir, sizeof dir, "%s/labels", j->run);
  snprintf(path, sizeof path, "%s/epoch-%03lld.h5", dir, (long long)j->pos.epoch + 1);
  int rc = j->ctx->rank == 0 ? slr_mkdir_p(dir) : 0;
  SLR_TRY(slr_agree(j->ctx->world, rc));
  slr_h5 f;
  SLR_TRY(slr_h5_create(&f, j->ctx->world, path, "labels", 1));
  rc = slr_agree(j->ctx->world, write_labels_body(j, &f, feat, first, count, ref));
  if (rc) {
    slr_h5_abort(&f);
    return rc;
  }
  return slr_h5_commit(&f);
}

/* ---- inspection ---------------------------------------------------------------------- */

void slr_checkpoint_schema(FILE *out) {
  static const char *resume[] = {"read", "checked", "informative"};
  fprintf(out, "| field | kind | type | shape | owner | on resume | what it holds |\n");
  fprintf(out, "| --- | --- | --- | --- | --- | --- | --- |\n");
  for (size_t i = 0; i < NFIELDS; i++) {
    const tr_field *fd = &FIELDS[i];
    const char *kind = fd->kind == F_DATA ? "dataset" : fd->kind == F_CSR ? "group" : "attribute";
    fprintf(out, "| `%s` | %s | %s | %s | %s | %s%s | %s |\n", fd->name, kind, fd->type,
            fd->shape[0] ? fd->shape : "-", fd->owner, resume[fd->resume],
            fd->adapt_only ? " (adaptation only)" : "", fd->help);
  }
}

int slr_checkpoint_inspect(MPI_Comm comm, const char *path, FILE *out) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  slr_h5 f;
  SLR_TRY(slr_h5_open(&f, comm, path, "checkpoint", SLR_CHECKPOINT_VERSION, 0));
  int rc = 0;
  for (size_t i = 0; !rc && i < NFIELDS; i++) {
    const tr_field *fd = &FIELDS[i];
    char line[256] = "";
    if (fd->kind == F_I64 || fd->kind == F_F64 || fd->kind == F_STR) {
      if (!slr_h5_attr_exists(&f, "/", fd->name)) continue;
      if (fd->kind == F_I64) {
        int64_t v = 0;
        rc = slr_h5_attr_get_i64(&f, "/", fd->name, &v);
        snprintf(line, sizeof line, "%lld", (long long)(strcmp(fd->name, "epoch") ? v : v + 1));
      } else if (fd->kind == F_F64) {
        double v = 0;
        rc = slr_h5_attr_get_f64(&f, "/", fd->name, &v);
        snprintf(line, sizeof line, "%.17g", v);
      } else if (strcmp(fd->name, "config")) {
        rc = slr_h5_attr_get_str(&f, "/", fd->name, line, sizeof line);
      } else {
        snprintf(line, sizeof line, "(%s)", "the resolved configuration; slr inspect --config");
      }
    } else {
      char name[160];
      snprintf(name, sizeof name, fd->kind == F_CSR ? "%s/values" : "%s", fd->name);
      if (!slr_h5_exists(&f, name)) continue;
      int nd, type;
      int64_t dims[SLR_H5_MAXDIMS];
      rc = slr_h5_shape(&f, name, &nd, dims, &type);
      size_t u = (size_t)snprintf(line, sizeof line, fd->kind == F_CSR ? "nnz (" : "(");
      for (int d = 0; d < nd && u < sizeof line; d++)
        u += (size_t)snprintf(line + u, sizeof line - u, "%s%lld", d ? ", " : "", (long long)dims[d]);
      if (u < sizeof line) snprintf(line + u, sizeof line - u, ")");
    }
    if (!rc && rank == 0)
      fprintf(out, "  %-18s %-9s %s%s\n", fd->name, fd->owner, line,
              !strcmp(fd->name, "epoch") ? " (from 1)" : "");
  }
  slr_h5_close(&f);
  return slr_agree(comm, rc);
}

int slr_checkpoint_config(MPI_Comm comm, const char *path, char **text) {
  slr_h5 f;
  SLR_TRY(slr_h5_open(&f, comm, path, "checkpoint", SLR_CHECKPOINT_VERSION, 0));
  size_t cap = 1 << 16;
  *text = malloc(cap);
  int rc = *text ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  if (!rc && !slr_h5_attr_exists(&f, "/", "config"))
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s holds no configuration (written by an older slr)", path);
  if (!rc) rc = slr_h5_attr_get_str(&f, "/", "config", *text, cap);
  slr_h5_close(&f);
  if (rc) {
    free(*text);
    *text = NULL;
  }
  return slr_agree(comm, rc);
}
