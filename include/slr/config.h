/* io/config: the run configuration. YAML (libyaml) into typed structs with
 * defaults; every key validated (unknown key, wrong type, out of range), and
 * `--set a.b=value` overrides validated the same way. Part of the io module.
 *
 * The key table in src/io/config.c is the single source of truth: defaults,
 * types, ranges, allowed values and the one-line help of every key. */
#ifndef SLR_CONFIG_H
#define SLR_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "slr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLR_CFG_STR 512
#define SLR_CFG_NAME 32
#define SLR_CFG_LIST 16

typedef struct {
  int n;
  int64_t v[SLR_CFG_LIST];
} slr_int_list;

typedef struct {
  int n;
  char v[SLR_CFG_LIST][SLR_CFG_NAME];
} slr_name_list;

/* Keys with a fixed set of values parse to these enums (the order of the
 * choices in the key table); an unknown value is an error naming the file,
 * line, key and value, so code that reads them needs no fallback. */
typedef enum {
  SLR_FMT_MARKET1501 = 0,
  SLR_FMT_DUKEMTMC,
  SLR_FMT_MSMT17,
  SLR_FMT_PERSONX,
  SLR_FMT_LIST,
  SLR_FMT_NONE,
} slr_data_format;
typedef enum { SLR_OPTIM_ADAM = 0, SLR_OPTIM_SGD } slr_optim_kind;
typedef enum {
  SLR_SCHED_CONSTANT = 0,
  SLR_SCHED_STEP,
  SLR_SCHED_MULTISTEP,
  SLR_SCHED_COSINE,
} slr_sched_kind;
typedef enum { SLR_RESUME_AUTO = 0, SLR_RESUME_NEVER } slr_resume_mode;

/* One data domain (source or target). */
typedef struct {
  slr_data_format format;
  char root[SLR_CFG_STR];
  char train_list[SLR_CFG_STR]; /* format list: "path pid camid" per line */
  char query_list[SLR_CFG_STR];
  char gallery_list[SLR_CFG_STR];
  int use_val; /* msmt17: train on train + val */
} slr_domain_cfg;

typedef struct {
  slr_domain_cfg source, target;
  int height, width;
  char interpolation[SLR_CFG_NAME]; /* bicubic | bilinear */
  double flip_p;
  int pad;
  double erase_p;
  int cache;        /* keep decoded, resized images in memory */
  int skip_corrupt; /* warn and skip unreadable images instead of stopping */
  int workers;      /* loader threads per rank */
  int prefetch;     /* batches decoded ahead */
} slr_data_cfg;

typedef struct {
  char arch[SLR_CFG_NAME]; /* resnet18 | resnet34 | resnet50 | resnet50_ibn_a */
  double width;            /* channel multiplier for small models */
  int last_stride;
  char pool[SLR_CFG_NAME]; /* avg | gem */
  double gem_p;
  int neck;
  char pretrained[SLR_CFG_STR]; /* HDF5 weights (ImageNet), "" for random */
  int sync_bn;
} slr_model_cfg;

/* The learning-rate schedule of one stage. */
typedef struct {
  double lr;                   /* base learning rate of the stage */
  slr_sched_kind schedule;
  int64_t step_size;           /* epochs, for step */
  slr_int_list milestones;     /* epochs, for multistep */
  int64_t warmup_epochs;
} slr_schedule_cfg;

typedef struct {
  slr_optim_kind optimizer;
  double weight_decay, momentum, beta1, beta2; /* the rate is per stage */
  int nesterov;
  double gamma;         /* decay factor of step and multistep */
  double warmup_factor; /* warm-up starts at lr * warmup_factor */
  double min_lr;        /* cosine floor */
  slr_schedule_cfg pretrain, adapt;
} slr_solver_cfg;

typedef struct {
  int64_t epochs, iters, batch_size, instances;
  double label_smoothing, triplet_margin;
  int soft_margin;
} slr_pretrain_cfg;

typedef struct {
  int64_t epochs, iters, batch_size, instances;
  double temperature, memory_momentum;
  int hard;
} slr_adapt_cfg;

typedef struct {
  slr_name_list stages; /* pretrain, adapt */
  slr_pretrain_cfg pretrain;
  slr_adapt_cfg adapt;
} slr_train_cfg;

typedef struct {
  int64_t k1, k2;
  double eps;
  int64_t min_samples;
} slr_cluster_cfg;

typedef struct {
  /* the enum keys hold the index of the value among the key's choices,
   * which is the value of the matching enum in slr/refine.h and slr/cluster.h */
  int mode;           /* none | argmax | hierarchical (slr_refine_mode) */
  double alpha;
  int linkage;        /* single | complete | average | ward (slr_linkage) */
  double threshold;
  int reclaim_outliers;
  double soft_weight; /* weight of the soft-label loss term, 0 = off */
  int distance;       /* euclidean | cosine | jensen_shannon | hellinger (slr_agglo_metric) */
  int threshold_mode; /* absolute | alpha */
  int alpha_schedule; /* constant | linear */
  double alpha_end;   /* linear schedule: alpha at the last epoch */
  int previous;       /* dbscan | refined */
  int projection;     /* row | iou | transition */
  int memory;         /* refined | dbscan */
} slr_refine_cfg;

typedef struct {
  int64_t every_steps; /* 0: only at the end of each epoch */
  slr_resume_mode resume;
  int64_t keep;
  int64_t labels_every; /* RUN/labels/epoch-NNN.h5 every n adaptation epochs, 0 = never */
  int labels_features;  /* with the epoch's features */
} slr_checkpoint_cfg;

typedef struct {
  int64_t every; /* epochs */
  char metric[SLR_CFG_NAME]; /* euclidean | cosine */
  int rerank;
  char rerank_variant[SLR_CFG_NAME]; /* jaccard | zhong */
  int64_t rerank_k1, rerank_k2;
  double rerank_lambda;
  int64_t batch_size;
} slr_eval_cfg;

typedef struct {
  int64_t seed;
  int64_t threads; /* 0: cores / ranks per node */
  slr_log_level log_level;
  int log_all_ranks;
  double progress_interval;
} slr_run_cfg;

typedef struct slr_config {
  slr_data_cfg data;
  slr_model_cfg model;
  slr_solver_cfg solver;
  slr_cluster_cfg cluster;
  slr_refine_cfg refine;
  slr_train_cfg train;
  slr_checkpoint_cfg checkpoint;
  slr_eval_cfg eval;
  slr_run_cfg run;
  char source_file[SLR_CFG_STR]; /* the YAML file it was loaded from */
} slr_config;

/* Fill with the defaults. Local. */
void slr_config_defaults(slr_config *c);
/* Load a YAML file over the defaults. Errors (SLR_ERR_CONFIG) name the file,
 * line, key and value. Local. */
int slr_config_load(slr_config *c, const char *path);
/* Load YAML text (the resolved configuration a checkpoint holds) over c;
 * errors name `where`. Local. */
int slr_config_load_text(slr_config *c, const char *text, const char *where);
/* Apply one "a.b=value" override (value in YAML syntax; lists as "[1, 2]").
 * Local. */
int slr_config_set(slr_config *c, const char *assignment);
/* A command-line option that is an alias of a key (`slr cluster --k1 20` is
 * cluster.k1=20): validated by the key table, errors name the option.
 * value NULL leaves the key as it is. Local. */
int slr_config_set_option(slr_config *c, const char *option, const char *key,
                          const char *value);
/* Checks across keys (e.g. batch size a multiple of instances). Local. */
int slr_config_validate(const slr_config *c);
/* The resolved configuration as YAML. Local. */
int slr_config_write(const slr_config *c, FILE *out);
/* malloc'ed YAML text of the resolved configuration. Local. */
char *slr_config_to_string(const slr_config *c);
/* Write DIR/config.yaml atomically. Local. */
int slr_config_save(const slr_config *c, const char *dir);
/* List every key with its type, default and help. Local. */
void slr_config_print_keys(FILE *out);

/* The value of an enum key from its name (e.g. "data.source.format",
 * "list"); an unknown name is SLR_ERR_CONFIG naming the key, the value and
 * the choices. Local. */
int slr_config_enum_parse(const char *key, const char *name, int *out);
/* The name of an enum key's value, "?" if out of range. Local. */
const char *slr_config_enum_name(const char *key, int value);
/* The default of a key as written in the table ("30"), NULL for an unknown
 * key: for help texts of commands whose options are keys. Local. */
const char *slr_config_default_text(const char *key);

/* The keys whose values differ between two configurations, as one malloc'ed
 * text "key: old -> new" per line (NULL and *count = 0 when they are equal,
 * or on lack of memory). `source_file` is not compared. A resumed run
 * compares the configuration it was started with (RUN/config.yaml) with the
 * one given now. Local. */
char *slr_config_diff(const slr_config *a, const slr_config *b, int *count);

#ifdef __cplusplus
}
#endif
#endif
