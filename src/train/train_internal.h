/* The training job's state, split into sub-states that each have an init
 * and a free: the data (data.c), the model with its optimizer (model.c),
 * the position in the run, the labels of the adaptation epoch (adapt.c),
 * the step buffers (steps.c). checkpoint.c writes and reads them from one
 * table of fields; job.c runs the stages. Private to src/train. */
#ifndef SLR_TRAIN_INTERNAL_H
#define SLR_TRAIN_INTERNAL_H

#include "slr/cluster.h"
#include "slr/eval.h"
#include "slr/io.h"
#include "slr/refine.h"
#include "slr/train.h"

enum { STAGE_PRETRAIN = 0, STAGE_ADAPT = 1 };

/* ---- data: the two domains, the transform and one batcher per split ---- */
typedef struct {
  slr_dataset source, target;
  int has_source, has_target;
  int has_eval; /* the target has query and gallery images */
  slr_transform tf;
  slr_batcher b_source, b_target, b_query, b_gallery;
  unsigned batchers; /* bit mask of the initialised batchers */
} tr_data;

int tr_data_init(tr_data *d, const slr_ctx *ctx, const slr_config *cfg);
void tr_data_free(tr_data *d);

/* ---- the model of the running stage, its optimizer and schedule ---- */
typedef struct {
  slr_model net;
  slr_dp dp; /* gradient reduction over the ranks */
  slr_optimizer opt;
  float *opt_state; /* (nparams * state per parameter) */
  int64_t opt_nstate;
  slr_param_group *groups;
  int ngroups;
  slr_lr_schedule sched;
  int live; /* net and dp initialised */
} tr_model;

/* The model of `stage` with num_classes outputs (0: none), seeded, the dp
 * context and a fresh optimizer state; weights are not loaded. Collective. */
int tr_model_init(tr_model *m, const slr_ctx *ctx, const slr_config *cfg, int stage,
                  int num_classes);
/* Load weights from a file (flags of slr_model_load), then make every rank
 * hold rank 0's. Collective. */
int tr_model_load(tr_model *m, const slr_ctx *ctx, const char *path, unsigned flags);
/* The ranks start from rank 0's weights. Collective. */
int tr_model_broadcast(tr_model *m);
void tr_model_free(tr_model *m);
/* The learning rate of an epoch. Local. */
double tr_model_lr(const tr_model *m, int64_t epoch);

/* ---- the position in the run ---- */
typedef struct {
  int stage_index; /* index in train.stages */
  int stage;       /* STAGE_PRETRAIN | STAGE_ADAPT */
  int64_t epoch;   /* 0-based inside the stage (shown from 1) */
  int64_t step;    /* steps done in the epoch */
  int64_t position; /* steps done over the whole run */
  double sum_a, sum_b; /* running loss sums of the epoch */
  int64_t nsteps;      /* steps in those sums */
} tr_position;

/* ---- the labels of an adaptation epoch ---- */
typedef struct {
  int64_t n;                      /* target training images */
  int32_t *y_prev;                /* (n) the previous labels projected */
  int32_t *y_dbscan, *y_refined;  /* (n) this epoch's */
  int has_prev;
  int64_t k;                      /* clusters of the memory */
  slr_cmemory memory;
  double alpha;                   /* this epoch's alpha */
  slr_csr proj;                   /* this epoch's projection of the previous labels */
  slr_soft_targets soft;          /* built on first use */
  int soft_ready;
  slr_label_quality q_dbscan, q_refined;
  int have_quality;
} tr_labels;

int tr_labels_init(tr_labels *l, int64_t n);
void tr_labels_free(tr_labels *l);
/* The labels that index the memory (refined or DBSCAN's). Local. */
const int32_t *tr_labels_train(const tr_labels *l, const slr_refine_params *rp);

/* ---- the step buffers ---- */
typedef struct {
  int64_t B, pos0, nloc; /* global batch, this rank's slice of it */
  int32_t *lab_local, *glab, *tpos, *tneg;
  int64_t *gidx; /* (B) sample indices of the global batch */
  float *probs, *dlogits; /* (nloc, C) */
  float *gfeat, *gdfeat;  /* (B, D) */
  float *tdap, *tdan;     /* (B) */
  float *feat_n, *norms, *dneck; /* (nloc, D), (nloc), (nloc, D) */
  float *gprobs, *gsoft;  /* (B, K) */
  int64_t gk_cap;
  int *gcounts, *gdispls, *lcounts, *ldispls; /* (size) each */
} tr_steps;

int tr_steps_init(tr_steps *s, const slr_ctx *ctx, int64_t B, int64_t D, int64_t C);
/* Room for (B, K) probabilities and soft targets. Local. */
int tr_steps_reserve(tr_steps *s, int64_t K);
void tr_steps_free(tr_steps *s);
/* Gather the rows of the global batch (each rank its slice, rank order).
 * Collective. */
int tr_gather_batch(const slr_ctx *ctx, tr_steps *s, const float *local, int64_t D, float *out);

/* ---- the job ---- */
typedef struct {
  const slr_ctx *ctx;
  const slr_config *cfg;
  slr_refine_params refine; /* refine.* parsed once */
  char run[SLR_PATH_MAX];
  char metrics_path[SLR_PATH_MAX + 16];
  char resume_path[SLR_PATH_MAX]; /* the checkpoint a resumed stage reads, or "" */
  int resumed_stage;              /* stage index of that checkpoint, or -1 */
  int force_config;               /* resume with a changed configuration */
  char config_change[1024];       /* the keys it changed, or "" */
  int64_t total_steps; /* of every stage, for the run's ETA */
  int run_ready;        /* the run folder exists (RUN/status.json can be written) */
  int stop_signal;      /* the signal a stop was asked with, or 0 */
  char last_ckpt[SLR_PATH_MAX]; /* the newest checkpoint written, or "" */
  tr_data data;
  tr_model model;
  tr_position pos;
  tr_labels labels;
  tr_steps steps;
  slr_eval_result last_eval;
  int have_eval;
  int64_t last_eval_epoch;
  const char *last_eval_stage;
} tr_job;

/* ---- checkpoint.c ---- */
/* Write a checkpoint of the job at its position. Collective. */
int tr_checkpoint_write(tr_job *j);
/* Read the position and run attributes of a checkpoint, check them against
 * the configuration, and cut metrics.jsonl back. Collective. */
int tr_checkpoint_read_header(tr_job *j, const char *path);
/* Read the model, optimizer and label state of the stage being resumed into
 * the job (after tr_model_init). Collective. */
int tr_checkpoint_read_state(tr_job *j, const char *path);
/* RUN/labels/epoch-NNN.h5 of an adaptation epoch: features, the three label
 * vectors, soft labels and IoU matrix. Collective. */
int tr_labels_file_write(tr_job *j, const float *feat, int64_t first, int64_t count,
                         const slr_refine_result *ref);

/* ---- job.c, shared with the stage files ---- */
/* One metrics.jsonl line from rank 0, agreed. Collective. */
int tr_log_json(tr_job *j, slr_json *js);
/* {"event": ..., "stage": ..., "epoch": (1-based), "position": ..., "time": ... (left open) */
void tr_json_event(slr_json *js, const char *event, const char *stage, int64_t epoch,
                   int64_t position);
void tr_json_quality(slr_json *js, const char *key, const slr_label_quality *q);
/* Backward of the global batch's loss and the gradient reduction. Collective. */
int tr_backward_reduce(tr_job *j, float *dpooled, float *dneck, float *dlogits, int64_t n,
                       int64_t ncls);

/* ---- pretrain.c, adapt.c, evaluate.c ---- */
int tr_pretrain_step(tr_job *j, const float *x, const int64_t *idx, int64_t n, double *loss_ce,
                     double *loss_tri, float lr);
/* The labels of adaptation epoch `epoch`: extract, pseudo labels, refine,
 * memory, diagnostics. Collective. */
int tr_adapt_labels(tr_job *j, int64_t epoch);
int tr_adapt_step(tr_job *j, const float *x, const int64_t *idx, int64_t n, double *loss, float lr);
/* End of an adaptation epoch: this epoch's labels become the previous ones. */
void tr_adapt_epoch_end(tr_job *j);
int tr_evaluate(tr_job *j, const char *stage, int64_t epoch);

#endif
