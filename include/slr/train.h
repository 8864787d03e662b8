/* train: the main job. Pretraining on the labelled source domain, then
 * unsupervised adaptation to the target domain with the SLR step, feature
 * extraction, evaluation, checkpoints and exact resume.
 *
 * A run lives in one folder (RUN):
 *   RUN/config.yaml          the resolved configuration
 *   RUN/metrics.jsonl        one JSON object per line: losses, learning rate,
 *                            throughput, label diagnostics, evaluations
 *   RUN/checkpoints/ckpt-N.h5  checkpoints (N = global step), the newest kept
 *   RUN/pretrain.h5          weights after pretraining (PyTorch names)
 *   RUN/final.h5             weights at the end of the run
 *   RUN/summary.json         the last evaluation and label diagnostics
 *   RUN/labels/epoch-NNN.h5  each adaptation epoch's features, labels (DBSCAN,
 *                            refined, previous), soft labels and IoU matrix
 * A run killed at any moment and started again with the same command goes
 * on from its newest checkpoint and ends with the same weights and metrics,
 * bit for bit, as an uninterrupted run on the same rank and thread counts. */
#ifndef SLR_TRAIN_H
#define SLR_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "slr/config.h"
#include "slr/data.h"
#include "slr/dist.h"
#include "slr/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLR_CHECKPOINT_VERSION 2

/* Flags of slr_train_run. */
enum {
  SLR_TRAIN_RESUME = 1,       /* continue from the newest checkpoint */
  SLR_TRAIN_FORCE_CONFIG = 2, /* accept a resume with a changed configuration */
};

/* Build the model the configuration describes (num_classes > 0 adds the
 * classifier). Local. */
int slr_train_model_init(slr_model *m, const slr_config *cfg, int num_classes);

/* Features of the rows of a split this rank extracts (its sequential shard,
 * slr_shard_rows), in evaluation mode with the test transform: the
 * L2-normalised neck features, (count, D) into *feat (malloc'ed).
 * Collective on ctx->world. */
int slr_extract_features(const slr_ctx *ctx, slr_model *m, slr_batcher *b,
                         const slr_config *cfg, const char *label, float **feat,
                         int64_t *first, int64_t *count);

/* Run the stages of cfg.train.stages in run_dir (created if missing).
 * SLR_TRAIN_RESUME: continue from the newest checkpoint of run_dir (also
 * when cfg.checkpoint.resume is "auto"); a checkpoint written with another
 * configuration is refused, naming the keys that differ, unless
 * SLR_TRAIN_FORCE_CONFIG is given (the change is then logged in
 * metrics.jsonl and the old RUN/config.yaml kept as config-N.yaml).
 * Returns SLR_ERR_STOP after writing a checkpoint when SIGTERM or SIGUSR1
 * arrived. Collective on ctx->world. */
int slr_train_run(const slr_ctx *ctx, const slr_config *cfg, const char *run_dir, unsigned flags);

/* The checkpoint layout, one Markdown table row per field (name, kind,
 * type, shape, owner, what a resume does with it). Local. */
void slr_checkpoint_schema(FILE *out);
/* Each field of a checkpoint file with its value or shape (rank 0
 * prints). Collective on comm. */
int slr_checkpoint_inspect(MPI_Comm comm, const char *path, FILE *out);
/* The resolved configuration a checkpoint was written with (*text
 * malloc'ed YAML). Collective on comm. */
int slr_checkpoint_config(MPI_Comm comm, const char *path, char **text);

#ifdef __cplusplus
}
#endif
#endif
