/* nn: the CNN engine. Layers as forward/backward pairs on plain arrays
 * (NCHW, row-major), losses, optimizers and learning-rate schedules.
 *
 * Conventions:
 * - Every buffer argument carries its shape in a comment, e.g. (N, C, H, W).
 * - Backward functions ACCUMULATE into the gradients they are given (+=);
 *   the caller zeroes them once per step. A gradient pointer may be NULL
 *   when that gradient is not wanted (a frozen bias, the network input).
 * - Each optimised kernel (im2col + sgemm, OpenMP loops) has a plain
 *   reference version beside it, in float (`slr_ref_*`) and in double
 *   (`slr_ref64_*`), written once as a template; the tests compare the
 *   optimised kernels to the references, to PyTorch fixtures, and check the
 *   gradients of the double references by finite differences.
 * - Statistics and reductions accumulate in double.
 * Every function here is Local unless it says "Collective on comm". */
#ifndef SLR_NN_H
#define SLR_NN_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "slr/core.h"
#include "slr/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- conv2d (groups 1, dilation 1) ------------------------------------------ */

typedef struct {
  int N, C, H, W; /* input */
  int OC, KH, KW; /* output channels, kernel */
  int stride, pad;
} slr_conv2d_dims;

static inline int slr_conv2d_oh(const slr_conv2d_dims *d) {
  return (d->H + 2 * d->pad - d->KH) / d->stride + 1;
}
static inline int slr_conv2d_ow(const slr_conv2d_dims *d) {
  return (d->W + 2 * d->pad - d->KW) / d->stride + 1;
}
/* Floats of scratch the optimised conv2d needs with the current thread
 * setting (slr_threads_get()): per thread, one image's im2col matrix (none
 * for a 1x1, stride 1, pad 0 convolution) and, with several threads, a
 * private weight gradient. Size it again if the setting changes. */
size_t slr_conv2d_scratch(const slr_conv2d_dims *d);

/* out (N, OC, OH, OW) = conv(inp (N, C, H, W), weight (OC, C, KH, KW)) + bias (OC)
 * bias may be NULL. scratch: slr_conv2d_scratch(d) floats. */
void slr_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                        const slr_conv2d_dims *d, float *scratch);
/* dinp (N, C, H, W) +=, dweight (OC, C, KH, KW) +=, dbias (OC) += ;
 * dinp and dbias may be NULL. dout (N, OC, OH, OW). */
void slr_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const slr_conv2d_dims *d,
                         float *scratch);

/* ---- batch normalisation (2d: HW = H*W; 1d: HW = 1) ----------------------- */

typedef struct {
  int N, C, HW;
  float eps;       /* 1e-5 */
  float momentum;  /* 0.1, PyTorch's convention: new = (1-m) old + m batch */
  int training;    /* 1: batch statistics and running update; 0: running statistics */
  MPI_Comm comm;   /* MPI_COMM_NULL: local statistics; otherwise SyncBN over comm */
  int ctot;        /* channels of the tensor the C channels sit in (0: C); the
                      caller offsets the pointers to the first channel (IBN) */
  int relu;        /* forward only: out = max(0, BN(inp)), a ReLU fused in */
} slr_bn_dims;

/* out (N, C, HW) = (inp - mu) * rstd * weight + bias, with mu and var the
 * batch statistics (one pass over inp for the sum and the sum of squares,
 * in double) (training; biased variance, summed over all ranks of
 * comm when set) or the running ones (evaluation). In training the running
 * statistics are updated as PyTorch does (running_var with the unbiased
 * variance, over the global count) and *num_batches is incremented.
 * mean, rstd (C): saved for backward. bias may be NULL (zero).
 * Collective on d->comm when it is set and training. */
int slr_batchnorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, float *running_mean,
                          float *running_var, int64_t *num_batches, const slr_bn_dims *d);
/* dinp (N, C, HW) +=, dweight (C) +=, dbias (C) += (NULL: frozen bias).
 * dweight and dbias get the local sums (the gradient all-reduce adds the
 * ranks); dinp uses the global sums when d->comm is set.
 * Collective on d->comm when it is set and training. */
int slr_batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, const slr_bn_dims *d);

/* Instance normalisation with affine parameters (IBN-a): statistics per
 * (n, c) over HW, in training and evaluation alike. eps 1e-5.
 * out, inp (N, C, HW); weight, bias (C); mean, rstd (N, C) saved. */
void slr_instnorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, int HW,
                          float eps);
void slr_instnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C, int HW);

/* ---- pointwise, pooling, linear ------------------------------------------------ */

/* out, inp (n) ; backward uses out (> 0 where the input was) */
void slr_relu_forward(float *out, const float *inp, int64_t n);
void slr_relu_backward(float *dinp, const float *dout, const float *out, int64_t n);

typedef struct {
  int N, C, H, W;
  int k, stride, pad; /* 3, 2, 1 in ResNet */
} slr_pool_dims;
static inline int slr_pool_oh(const slr_pool_dims *d) {
  return (d->H + 2 * d->pad - d->k) / d->stride + 1;
}
static inline int slr_pool_ow(const slr_pool_dims *d) {
  return (d->W + 2 * d->pad - d->k) / d->stride + 1;
}
/* out (N, C, OH, OW); argmax (N, C, OH, OW): index in H*W of the max (the
 * first one in scan order on ties, padding never wins) */
void slr_maxpool_forward(float *out, int32_t *argmax, const float *inp, const slr_pool_dims *d);
/* dinp (N, C, H, W) += */
void slr_maxpool_backward(float *dinp, const float *dout, const int32_t *argmax,
                          const slr_pool_dims *d);

/* Global average pooling: out (N, C) = mean over HW of inp (N, C, HW). */
void slr_avgpool_forward(float *out, const float *inp, int N, int C, int HW);
void slr_avgpool_backward(float *dinp, const float *dout, int N, int C, int HW);

/* Generalised-mean pooling: out (N, C) = (mean_HW clamp(x, eps)^p)^(1/p),
 * p a learnable scalar (initial 3), eps 1e-6. */
void slr_gem_forward(float *out, const float *inp, float p, float eps, int N, int C, int HW);
/* dinp (N, C, HW) +=, dp (1) += ; out is the forward output. */
void slr_gem_backward(float *dinp, float *dp, const float *dout, const float *out,
                      const float *inp, float p, float eps, int N, int C, int HW);

/* out (N, OUT) = inp (N, IN) weight (OUT, IN)^T + bias (OUT); bias may be NULL. */
void slr_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int IN, int OUT);
/* dinp (N, IN) +=, dweight (OUT, IN) +=, dbias (OUT) += ; dinp/dbias may be NULL */
void slr_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int IN, int OUT);

/* Row-wise L2 normalisation as F.normalize: out (N, D) = x / max(|x|, eps),
 * eps 1e-12; norm (N) saved. */
void slr_l2norm_forward(float *out, float *norm, const float *inp, int N, int D, float eps);
void slr_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm,
                         int N, int D, float eps);

/* ---- plain reference losses --------------------------------------------------
 * The optimised losses call these (the other plain reference kernels, in
 * float and double, are declared for the tests in src/nn/nn_ref.h). */
float slr_ref_xent_forward(float *probs, const float *logits, const int32_t *labels,
                           const float *soft_targets, int N, int K, float smoothing);
void slr_ref_xent_backward(float *dlogits, const float *probs, const int32_t *labels,
                           const float *soft_targets, int N, int K, float smoothing, float dloss);
float slr_ref_triplet_forward(const float *feat, const int32_t *labels, int N, int D, float margin,
                              int32_t *pos, int32_t *neg, float *dap, float *dan);
void slr_ref_triplet_backward(float *dfeat, const float *feat, int N, int D, float margin,
                              const int32_t *pos, const int32_t *neg, const float *dap,
                              const float *dan, float dloss);

/* ---- losses ------------------------------------------------------------------ */

/* Softmax cross-entropy, mean over the N rows. logits (N, K); probs (N, K)
 * saved for backward. Targets: labels (N) with label smoothing `smoothing`
 * (PyTorch's: (1-s) onehot + s/K), or soft_targets (N, K) rows summing to 1
 * when not NULL (labels then ignored). Returns the loss. */
float slr_xent_forward(float *probs, const float *logits, const int32_t *labels,
                       const float *soft_targets, int N, int K, float smoothing);
/* dlogits (N, K) += dloss * (probs - targets) / N */
void slr_xent_backward(float *dlogits, const float *probs, const int32_t *labels,
                       const float *soft_targets, int N, int K, float smoothing, float dloss);

/* Batch-hard triplet loss on Euclidean distances (sqrt(max(d2, 1e-12))):
 * per anchor the farthest positive and the nearest negative.
 * margin > 0: mean(relu(d_ap - d_an + margin)); margin <= 0: soft margin,
 * mean(log(1 + exp(d_ap - d_an))). feat (N, D); pos, neg (N) indices and
 * dap, dan (N) distances saved for backward (an anchor without a positive
 * or a negative gets -1 and contributes 0). Returns the loss. */
float slr_triplet_forward(const float *feat, const int32_t *labels, int N, int D, float margin,
                          int32_t *pos, int32_t *neg, float *dap, float *dan);
void slr_triplet_backward(float *dfeat, const float *feat, int N, int D, float margin,
                          const int32_t *pos, const int32_t *neg, const float *dap,
                          const float *dan, float dloss);

/* Cluster-memory contrastive loss (Cluster Contrast): feat (N, D) are
 * L2-normalised features, memory (K, D) L2-normalised centroids,
 * logits (N, K) = feat memory^T / temp, loss = mean cross-entropy with the
 * cluster labels (N). probs (N, K) saved. Returns the loss. */
float slr_cmloss_forward(float *probs, const float *feat, const float *memory,
                         const int32_t *labels, int N, int D, int K, float temp);
/* dfeat (N, D) += dloss * (probs - onehot) memory / (N temp) (the memory
 * gets no gradient). Fails only when out of memory. */
int slr_cmloss_backward(float *dfeat, const float *probs, const float *memory,
                         const int32_t *labels, int N, int D, int K, float temp, float dloss);
/* Memory update after the step, sample by sample in batch order:
 * m_y = mom m_y + (1 - mom) f, then m_y /= |m_y|. hard != 0: one update per
 * cluster present, with its sample least similar to m_y (Cluster Contrast's
 * `cm_hard`), clusters in increasing label order. Labels < 0 are skipped. */
void slr_cmloss_update(float *memory, const float *feat, const int32_t *labels, int N, int D,
                       float mom, int hard);

/* The soft-target term of the cluster-memory loss: probs (N, K) from
 * slr_cmloss_forward, targets (N, K) rows that sum to 1 (a row of zeros
 * takes no part). Returns weight / denom * sum over the rows of
 * CE(targets_n, probs_n), and adds its gradient
 * weight / (denom temp) * (probs - targets) memory to dfeat (N, D). Fails
 * only when out of memory. Local. */
int slr_cmloss_soft(float *dfeat, double *loss, const float *probs, const float *memory,
                    const float *targets, int N, int D, int K, float temp, float weight,
                    int64_t denom);

/* The cluster memory: one L2-normalised row per cluster. */
typedef struct {
  int64_t K; /* clusters */
  int D;     /* feature dimension */
  float *rows; /* (K, D) */
} slr_cmemory;

/* Allocate K rows of D zeros. Local. */
int slr_cmemory_init(slr_cmemory *m, int64_t K, int D);
/* The L2-normalised centroids of the clusters 0..K-1 of row-sharded
 * features: feat (n, D) and labels (n) of this rank's rows, labels < 0
 * skipped; sums in double, all-reduced. A cluster without a member is an
 * error. Collective on comm. */
int slr_cmemory_init_centroids(slr_cmemory *m, MPI_Comm comm, const float *feat,
                               const int32_t *labels, int64_t n, int64_t K, int D);
/* slr_cmloss_update on the memory's rows. Local. */
void slr_cmemory_update(slr_cmemory *m, const float *feat, const int32_t *labels, int N, float mom,
                        int hard);
void slr_cmemory_free(slr_cmemory *m);

/* ---- optimizers ----------------------------------------------------------------- */

/* A contiguous range of the parameter buffer with its own multipliers of
 * the learning rate and weight decay; lr_mult 0 freezes it. */
typedef struct {
  int64_t offset, count;
  float lr_mult, wd_mult;
} slr_param_group;

typedef enum { SLR_OPT_ADAM = 0, SLR_OPT_SGD = 1 } slr_opt_kind;

typedef struct {
  slr_opt_kind kind;
  float beta1, beta2, eps; /* Adam: 0.9, 0.999, 1e-8 */
  float momentum;          /* SGD */
  float dampening;         /* SGD: 0 */
  int nesterov;            /* SGD */
  float weight_decay;      /* L2, added to the gradient as torch.optim does */
  int64_t step;            /* steps taken (Adam's bias correction) */
} slr_optimizer;

/* Default hyper-parameters of a kind. */
void slr_optimizer_init(slr_optimizer *o, slr_opt_kind kind, float weight_decay);
/* One step at learning rate lr over the groups: params (P) updated from
 * grads (P); state (2 P) for Adam (exp_avg then exp_avg_sq) or (P) for SGD
 * (momentum buffer), zero before the first step. Increments o->step.
 * Matches torch.optim.Adam / torch.optim.SGD (non-foreach, float32). */
void slr_optimizer_step(slr_optimizer *o, float *params, const float *grads, float *state,
                        int64_t P, const slr_param_group *groups, int ngroups, float lr);
/* Floats of optimizer state per parameter (2 Adam, 1 SGD). */
int slr_optimizer_state_per_param(const slr_optimizer *o);

/* ---- learning-rate schedules ------------------------------------------------------ */

typedef enum {
  SLR_LR_CONSTANT = 0,
  SLR_LR_STEP,      /* base * gamma^(t / step_size) */
  SLR_LR_MULTISTEP, /* base * gamma^(number of milestones <= t) */
  SLR_LR_COSINE,    /* eta_min + (base - eta_min) (1 + cos(pi t / t_max)) / 2 */
} slr_lr_kind;

typedef struct {
  slr_lr_kind kind;
  double base_lr;
  double gamma;
  int64_t step_size;
  int64_t milestones[16];
  int nmilestones;
  int64_t t_max;
  double eta_min;
  /* linear warm-up over the first warmup_iters units of t: the factor goes
   * from warmup_factor at t = 0 to 1 at t = warmup_iters (fast-reid's
   * WarmupMultiStepLR); 0 disables it */
  int64_t warmup_iters;
  double warmup_factor;
} slr_lr_schedule;

/* The learning rate at t (epoch or iteration, as the caller counts). */
double slr_lr_at(const slr_lr_schedule *s, int64_t t);

/* ---- models: ResNet backbones with the Re-ID head --------------------------------
 *
 * torchvision's ResNet structure and state_dict names (conv1, bn1,
 * layer1.0.conv1, ..., layerK.0.downsample.{0,1}), without the ImageNet fc;
 * resnet50_ibn_a as IBN-Net (layers 1-3: bn1 of each block is
 * bn1.IN (instance norm, first half of the channels) + bn1.BN). The head:
 * pooling (avg or GeM with key pool.p), a BatchNorm1d neck with a frozen
 * bias (neck.*), and an optional bias-free classifier (classifier.weight).
 *
 * Storage follows "one buffer per family": every trainable parameter in
 * `params` (gradients in `grads`, same layout), running statistics in
 * `buffers`, num_batches_tracked counters in `counts`; activations and their
 * gradients in one block planned once by slr_model_plan(). */

typedef enum {
  SLR_ARCH_RESNET18 = 0,
  SLR_ARCH_RESNET34,
  SLR_ARCH_RESNET50,
  SLR_ARCH_RESNET50_IBN_A,
} slr_arch;

typedef enum { SLR_POOL_AVG = 0, SLR_POOL_GEM = 1 } slr_pool_kind;

typedef struct {
  slr_arch arch;
  int width;           /* channels of the stem: 64 in torchvision; smaller for tests */
  int last_stride;     /* stride of layer4: 2 (torchvision) or 1 (Re-ID) */
  slr_pool_kind pool;
  int neck;            /* 1: BatchNorm1d neck with frozen bias after the pooling */
  int num_classes;     /* > 0: classifier (num_classes, D) on the neck feature */
  float gem_p;         /* initial GeM exponent, 3 */
  float bn_momentum;   /* 0.1 */
} slr_model_config;

/* torchvision defaults: width 64, last stride 2, avg pooling, no neck. */
void slr_model_config_default(slr_model_config *c, slr_arch arch);
/* "resnet18", "resnet34", "resnet50", "resnet50_ibn_a". */
int slr_arch_parse(const char *name, slr_arch *arch);
const char *slr_arch_name(slr_arch arch);
int slr_pool_parse(const char *name, slr_pool_kind *pool);

typedef enum {
  SLR_TENSOR_PARAM = 0,  /* in params / grads */
  SLR_TENSOR_BUFFER = 1, /* in buffers (running_mean, running_var) */
  SLR_TENSOR_COUNT = 2,  /* in counts (num_batches_tracked, int64, shape ()) */
} slr_tensor_kind;

typedef struct {
  char name[96];       /* the state_dict key */
  slr_tensor_kind kind;
  int ndims;           /* PyTorch's shape; 0 for a scalar */
  int64_t shape[4];
  int64_t numel;
  int64_t offset;      /* into params, buffers or counts */
  int frozen;          /* a parameter that is not trained (neck.bias) */
  int head;            /* belongs to the Re-ID head (pool., neck., classifier.) */
} slr_tensor;

struct slr_op;
typedef struct {
  int C, H, W;         /* per-sample shape */
  float *data;         /* (N, C, H, W) */
  float *grad;         /* (N, C, H, W), shared with other slots outside its lifetime */
  int grad_birth;      /* the backward pass zeroes grad just before this operation
                          (nops: before the first one) */
} slr_slot;

typedef struct {
  slr_model_config cfg;
  int feat_dim;        /* D: channels after layer4 */
  slr_tensor *tensors;
  int ntensors;
  float *params;       /* (nparams) all trainable parameters */
  float *grads;        /* (nparams) same layout */
  int64_t nparams;
  float *buffers;      /* (nbuffers) running statistics */
  int64_t nbuffers;
  int64_t *counts;     /* (ncounts) num_batches_tracked */
  int ncounts;
  struct slr_op *ops;
  int nops;
  slr_slot *slots;     /* slot 0 is the input image batch */
  int nslots;
  int pooled_slot, neck_slot, logits_slot;
  int max_batch, in_h, in_w, with_grads; /* the plan */
  void *block;         /* activations, their gradients, saved statistics */
  size_t block_bytes;
  float *scratch;      /* im2col of one image per thread */
  int scratch_threads; /* the thread setting the scratch was sized for */
  int batch;           /* N of the last forward */
  int training;
  MPI_Comm bn_comm;
  /* called by slr_model_backward after each operation with parameters:
   * every gradient at offset >= ready_from is final (parameters are laid
   * out in forward order, so ready_from only decreases); set by slr_dp */
  int (*grad_ready)(void *ctx, int64_t ready_from);
  void *grad_ready_ctx;
} slr_model;

/* Build the model: tensors and operations, parameters initialised as
 * torchvision does (Kaiming normal fan_out for convolutions, BN weight 1
 * bias 0, running var 1; classifier normal std 0.001; GeM p = gem_p) from
 * slr_rng keyed by (seed, tensor index). Local. */
int slr_model_init(slr_model *m, const slr_model_config *cfg, uint64_t seed);
void slr_model_free(slr_model *m);
/* Allocate activations for batches up to max_batch images of H x W, with
 * their gradients when with_grads (training). Replaces an earlier plan. Local. */
int slr_model_plan(slr_model *m, int max_batch, int H, int W, int with_grads);
/* 1 when the current plan holds a batch of `batch` images of H x W. Local. */
int slr_model_plan_fits(const slr_model *m, int batch, int H, int W);
/* Bytes of the activation block of the current plan. */
size_t slr_model_activation_bytes(const slr_model *m);

/* Forward pass: images (N, 3, H, W) with N <= max_batch. training: batch
 * statistics and running-statistics update (SyncBN over bn_comm when it is
 * not MPI_COMM_NULL); otherwise evaluation. Afterwards slr_model_pooled /
 * slr_model_neck / slr_model_logits point at (N, D), (N, D), (N, K).
 * Collective on bn_comm when training with it set. */
int slr_model_forward(slr_model *m, const float *images, int N, int training, MPI_Comm bn_comm);
const float *slr_model_pooled(const slr_model *m); /* (N, D) */
const float *slr_model_neck(const slr_model *m);   /* (N, D); the pooled feature without neck */
const float *slr_model_logits(const slr_model *m); /* (N, K) or NULL */
/* Backward pass after a training forward: gradients of the loss with
 * respect to the pooled feature (N, D), the neck feature (N, D) and the
 * logits (N, K), any of them NULL; parameter gradients ACCUMULATE into
 * m->grads (slr_model_zero_grad first). Collective on the bn_comm of the
 * forward. */
int slr_model_backward(slr_model *m, const float *dpooled, const float *dneck,
                       const float *dlogits);
void slr_model_zero_grad(slr_model *m);
/* Parameter groups for the optimizer: one per parameter tensor, frozen
 * ones with lr_mult 0. *groups is malloc'ed. */
int slr_model_param_groups(const slr_model *m, slr_param_group **groups, int *ngroups);

/* Time per kind of operation (forward and backward, seconds) and the
 * multiply-adds of the forward pass (convolutions and linear layers), summed
 * over all models since the last reset; off unless enabled. For benchmarks.
 * Local (not thread-safe: one model at a time). */
typedef struct {
  const char *name;
  double fwd_s, bwd_s;
  double fwd_macs;
} slr_op_profile;
void slr_model_profile_enable(int on);
void slr_model_profile_reset(void);
/* Fills up to max entries, one per kind; returns their count. */
int slr_model_profile_get(slr_op_profile *out, int max);

/* The kernels the engine runs on this CPU, for `slr --version` and the
 * benchmarks: e.g. "im2col + OpenBLAS sgemm (core Zen); oneDNN 2.6.3, ISA
 * avx2; convolutions: auto". OpenBLAS and oneDNN choose their kernels
 * from CPUID when they load; SLR_CONV_BACKEND (auto, gemm, dnnl, tune)
 * chooses the convolution backend. Local. */
const char *slr_nn_kernels(void);

/* ---- data-parallel training ------------------------------------------------------------
 * Every rank holds the whole model and runs its share of the global batch;
 * parameters start equal (broadcast from rank 0), gradients are averaged
 * over the ranks in buckets of the flat gradient buffer with
 * MPI_Iallreduce, started during the backward pass as soon as a bucket's
 * gradients are final. With SyncBN (slr_model_forward with bn_comm set) a
 * global batch split over the ranks gives the gradients of the whole batch
 * on one rank when the loss is a mean over samples with equal shares.
 * Every rank needs at least one sample of the batch. */

typedef struct {
  slr_model *m;
  MPI_Comm comm;       /* a duplicate, used only for the gradient reductions */
  int rank, size;
  int64_t bucket;      /* floats per bucket */
  int nbuckets;
  int next;            /* buckets >= next have been started */
  int overlap;         /* start reductions during backward */
  MPI_Request *req;    /* (nbuckets) */
} slr_dp;

/* bucket_floats <= 0: 4 Mi floats (16 MiB). Collective on comm. */
int slr_dp_init(slr_dp *dp, slr_model *m, MPI_Comm comm, int64_t bucket_floats, int overlap);
/* Collective on dp->comm. */
void slr_dp_free(slr_dp *dp);
/* Parameters, running statistics and counters from rank 0 to all. Collective. */
int slr_dp_broadcast(slr_dp *dp);
/* slr_model_backward (same arguments) followed by the average of the
 * gradients over the ranks, overlapped with the backward pass when
 * dp->overlap. Collective on dp->comm (and the forward's bn_comm). */
int slr_dp_backward(slr_dp *dp, const float *dpooled, const float *dneck, const float *dlogits);

/* ---- weights (HDF5, PyTorch's names) ----------------------------------------------
 * One dataset per state_dict key under /model with PyTorch's shape:
 * /model/conv1.weight (OC, C, KH, KW) float32, /model/bn1.running_mean (C),
 * /model/bn1.num_batches_tracked int64 scalar, /model/pool.p (1),
 * /model/neck.weight ... Root attributes slr_format = "weights", version 1
 * (tools/torch2h5.py writes the same; files without the tag are accepted). */

enum {
  /* keys of the Re-ID head (pool., neck., classifier.) may be missing from
   * the file (ImageNet backbone weights); they keep their initial values */
  SLR_LOAD_BACKBONE_ONLY = 1,
};
/* Read every tensor of the model from the file. A missing key or a shape
 * that differs stops with an error naming the key and both shapes; keys
 * the model does not have (fc.*) are ignored. Collective on comm (every
 * rank reads the whole model). */
int slr_model_load(slr_model *m, MPI_Comm comm, const char *path, unsigned flags);
/* Write the model (rank 0's values) to path (via path.tmp and rename).
 * Collective on comm. */
int slr_model_save(const slr_model *m, MPI_Comm comm, const char *path);

/* The model a weights file describes. Root attributes (written by
 * slr_model_save and tools/torch2h5.py): arch (string), width, last_stride,
 * pool ("avg" | "gem"), gem_p (float64), neck (0 | 1), feat_dim,
 * num_classes. A file without them (torchvision weights converted by
 * another tool, older slr files) is described by its keys where they show
 * the answer: arch from the block structure, width from conv1.weight, pool
 * from pool.p, neck from neck.weight, num_classes from classifier.weight;
 * last_stride cannot be seen in the keys and stays unknown. */
enum {
  SLR_DESC_ARCH = 1,
  SLR_DESC_WIDTH = 2,
  SLR_DESC_LAST_STRIDE = 4,
  SLR_DESC_POOL = 8,
  SLR_DESC_NECK = 16,
  SLR_DESC_CLASSES = 32,
  SLR_DESC_ALL = 63,
};
typedef struct {
  slr_model_config cfg; /* fields not known keep slr_model_config_default's values */
  int feat_dim;         /* the feat_dim attribute, 0 when absent */
  unsigned known;       /* SLR_DESC_* fields the file records or its keys show */
  unsigned recorded;    /* SLR_DESC_* fields read from attributes */
} slr_model_desc;
/* Read the description from the attributes of `obj` in an open file; for
 * obj "/" the keys under /model fill what the attributes leave out.
 * Errors name the file and the attribute. Collective on f's comm. */
int slr_model_desc_read(slr_h5 *f, const char *obj, slr_model_desc *d);
/* Open path (a weights file) and read its description. Collective on comm. */
int slr_model_describe(MPI_Comm comm, const char *path, slr_model_desc *d);
/* Write the description attributes on `obj` of a file being written (a
 * weights file, or a checkpoint's "/model" group). Collective on f's comm. */
int slr_model_desc_write(slr_h5 *f, const char *obj, const slr_model_config *c, int feat_dim);

#ifdef __cplusplus
}
#endif
#endif
