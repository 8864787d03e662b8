/* The state of a training job, shared by the files of src/train. */
#ifndef SLR_TRAIN_INTERNAL_H
#define SLR_TRAIN_INTERNAL_H

#include "slr/eval.h"
#include "slr/io.h"
#include "slr/refine.h"
#include "slr/train.h"

enum { STAGE_PRETRAIN = 0, STAGE_ADAPT = 1 };

typedef struct {
  const slr_ctx *ctx;
  const slr_config *cfg;
  char run[SLR_PATH_MAX];
  char metrics_path[SLR_PATH_MAX + 16];

  slr_dataset source, target;
  int have_source, have_target, have_target_eval;
  slr_transform tf;
  slr_batcher b_source, b_target, b_query, b_gallery;
  int batchers; /* bit mask of the initialised batchers */

  slr_model model;
  int have_model;
  slr_dp dp; /* gradient reduction over the ranks */
  int have_dp;
  slr_optimizer opt;
  float *opt_state;
  int64_t opt_nstate;
  slr_param_group *groups;
  int ngroups;

  /* position */
  int64_t epoch, step; /* step = steps done in the current epoch */
  int64_t position;    /* steps done over the whole run */
  double sum_a, sum_b; /* running loss sums of the current epoch */
  int64_t nsteps;
  int resumed_stage;   /* stage index of the loaded checkpoint, or -1 */
  int stage_index, stage; /* the stage running */

  /* a loaded checkpoint's model and optimizer, applied by the stage */
  float *ck_params, *ck_buffers, *ck_opt;
  int64_t *ck_counts;
  int64_t ck_nparams, ck_nbuffers, ck_ncounts, ck_nopt, ck_opt_step;

  /* adaptation */
  int32_t *y_prev, *y_dbscan, *y_refined; /* (N) target train, every rank */
  int has_prev;
  float *memory; /* (K, D) */
  int64_t K;
  slr_refine_result ref;
  /* soft-label loss: soft labels live over the current DBSCAN clusters and
   * are carried to the refined clusters (the memory) by the share of each
   * DBSCAN cluster that went to each refined cluster */
  double *iou_rowsum; /* (K_prev) row sums of ref.iou */
  slr_csr to_refined; /* (K_cur x K) shares */
  int soft_ready;
  float *soft_t;      /* (K) one soft target */
  float *feat_local; /* (feat_count, D) extracted features of this rank */
  int64_t feat_first, feat_count;
  slr_label_quality q_dbscan, q_refined;
  slr_eval_result last_eval;
  int have_eval;

  /* step buffers */
  int64_t pos0, nloc; /* this rank's slice of the global batch */
  int32_t *lab_local, *glab, *tpos, *tneg;
  int64_t *gidx; /* (B) sample indices of the global batch */
  float *probs, *dlogits, *gfeat, *gdfeat, *tdap, *tdan, *feat_n, *norms, *dneck, *gprobs;
  int64_t gprobs_cap;
  int *gcounts, *gdispls, *lcounts, *ldispls;
} job_t;

/* state.c */
int slr_job_open(job_t *j, const char *run_dir, int resume);
void slr_job_close(job_t *j);
int slr_job_stage_model(job_t *j, int si, int resumed);
int slr_job_buffers(job_t *j, int stage, int64_t B);
int slr_job_checkpoint(job_t *j);
/* job.c */
int slr_job_setup_optimizer(job_t *j);

#endif
