/* The configuration: one table of keys (type, default, range, allowed values,
 * help), a libyaml event parser that walks a file against it, `--set`
 * overrides, and a YAML writer for the resolved configuration. */
#include "slr/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "slr/core.h"

typedef enum { K_INT, K_FLOAT, K_BOOL, K_STR, K_INTS, K_NAMES, K_I32, K_ENUM } key_type;

typedef struct {
  const char *path;    /* "solver.adapt.lr" */
  key_type type;
  size_t off;          /* offset in slr_config */
  size_t size;         /* string capacity */
  double min, max;     /* range for numbers (list elements too) */
  const char *choices; /* "a|b|c" or NULL */
  const char *def;     /* default, in YAML syntax */
  const char *help;
} key_def;

#define OFF(field) offsetof(slr_config, field)
#define SZ(field) sizeof(((slr_config *)0)->field)
#define INT(p, f, lo, hi, d, h) {p, K_INT, OFF(f), 0, lo, hi, NULL, d, h}
#define I32(p, f, lo, hi, d, h) {p, K_I32, OFF(f), 0, lo, hi, NULL, d, h}
#define FLT(p, f, lo, hi, d, h) {p, K_FLOAT, OFF(f), 0, lo, hi, NULL, d, h}
#define BOOL(p, f, d, h) {p, K_BOOL, OFF(f), 0, 0, 1, NULL, d, h}
#define STR(p, f, d, h) {p, K_STR, OFF(f), SZ(f), 0, 0, NULL, d, h}
/* a string that must be one of the choices */
#define CHOICE(p, f, ch, d, h) {p, K_STR, OFF(f), SZ(f), 0, 0, ch, d, h}
/* an enum field: the value is the index of the name in the choices */
#define ENUM(p, f, ch, d, h) {p, K_ENUM, OFF(f), SZ(f), 0, 0, ch, d, h}
#define INTS(p, f, lo, hi, d, h) {p, K_INTS, OFF(f), 0, lo, hi, NULL, d, h}
#define NAMES(p, f, ch, d, h) {p, K_NAMES, OFF(f), 0, 0, 0, ch, d, h}
#define BIG 1e18

#define DOMAIN(side, fmt)                                                                   \
  ENUM("data." #side ".format", data.side.format,                                           \
       "market1501|dukemtmc|msmt17|personx|list|none", fmt,                                  \
       "layout of the " #side " data set"),                                                 \
      STR("data." #side ".root", data.side.root, "\"\"", "folder of the " #side " data set"), \
      STR("data." #side ".train_list", data.side.train_list, "\"\"",                        \
          "format list: file of `path pid camid` lines for training"),                      \
      STR("data." #side ".query_list", data.side.query_list, "\"\"",                        \
          "format list: query list file"),                                                  \
      STR("data." #side ".gallery_list", data.side.gallery_list, "\"\"",                    \
          "format list: gallery list file"),                                                \
      BOOL("data." #side ".use_val", data.side.use_val, "true",                             \
           "msmt17: train on list_train + list_val")

#define SCHEDULE(stage, d_lr, d_sched, d_step, d_miles, d_warm)                           \
  FLT("solver." #stage ".lr", solver.stage.lr, 1e-12, 10, d_lr,                             \
      "base learning rate of " #stage),                                                     \
  ENUM("solver." #stage ".schedule", solver.stage.schedule,                                 \
       "constant|step|multistep|cosine", d_sched, "learning-rate schedule of " #stage),     \
      INT("solver." #stage ".step_size", solver.stage.step_size, 1, 1e9, d_step,            \
          "step: epochs between decays"),                                                   \
      INTS("solver." #stage ".milestones", solver.stage.milestones, 1, 1e9, d_miles,        \
           "multistep: epochs at which the rate decays"),                                   \
      INT("solver." #stage ".warmup_epochs", solver.stage.warmup_epochs, 0, 1e9, d_warm,    \
          "linear warm-up length in epochs")

static const key_def KEYS[] = {
    DOMAIN(source, "market1501"),
    DOMAIN(target, "dukemtmc"),
    I32("data.height", data.height, 32, 4096, "256", "input height in pixels"),
    I32("data.width", data.width, 32, 4096, "128", "input width in pixels"),
    CHOICE("data.interpolation", data.interpolation, "bicubic|bilinear", "bicubic",
         "resize filter (PIL's, antialiased when shrinking)"),
    FLT("data.flip_p", data.flip_p, 0, 1, "0.5", "horizontal flip probability"),
    I32("data.pad", data.pad, 0, 1024, "10", "padding before the random crop"),
    FLT("data.erase_p", data.erase_p, 0, 1, "0.5", "random erasing probability"),
    BOOL("data.cache", data.cache, "true", "keep decoded, resized images in memory"),
    BOOL("data.skip_corrupt", data.skip_corrupt, "false",
         "warn about and skip unreadable images instead of stopping"),
    I32("data.workers", data.workers, 0, 256, "2", "loader threads per rank"),
    I32("data.prefetch", data.prefetch, 1, 64, "2", "batches decoded ahead"),

    CHOICE("model.arch", model.arch, "resnet18|resnet34|resnet50|resnet50_ibn_a", "resnet50",
         "backbone"),
    FLT("model.width", model.width, 0.01, 4, "1.0", "channel multiplier (small models)"),
    I32("model.last_stride", model.last_stride, 1, 2, "1", "stride of layer4"),
    CHOICE("model.pool", model.pool, "avg|gem", "gem", "global pooling"),
    FLT("model.gem_p", model.gem_p, 1, 100, "3.0", "initial GeM exponent"),
    BOOL("model.neck", model.neck, "true", "BatchNorm1d neck with frozen bias"),
    STR("model.pretrained", model.pretrained, "\"\"",
        "HDF5 weights to start from (tools/torch2h5.py), \"\" for random"),
    BOOL("model.sync_bn", model.sync_bn, "true",
         "batch-norm statistics over the global batch (all ranks)"),

    ENUM("solver.optimizer", solver.optimizer, "adam|sgd", "adam", "optimizer"),
    FLT("solver.weight_decay", solver.weight_decay, 0, 1, "5.0e-4",
        "L2 weight decay (added to the gradient, as torch.optim does)"),
    FLT("solver.momentum", solver.momentum, 0, 1, "0.9", "SGD momentum"),
    BOOL("solver.nesterov", solver.nesterov, "false", "SGD Nesterov momentum"),
    FLT("solver.beta1", solver.beta1, 0, 0.999999, "0.9", "Adam beta1"),
    FLT("solver.beta2", solver.beta2, 0, 0.999999999, "0.999", "Adam beta2"),
    FLT("solver.gamma", solver.gamma, 0, 1, "0.1", "decay factor of step/multistep"),
    FLT("solver.warmup_factor", solver.warmup_factor, 0, 1, "0.01",
        "warm-up starts at lr * warmup_factor"),
    FLT("solver.min_lr", solver.min_lr, 0, 10, "0.0", "cosine: final learning rate"),
    SCHEDULE(pretrain, "3.5e-4", "multistep", "20", "[40, 70]", "10"),
    SCHEDULE(adapt, "3.5e-4", "step", "20", "[]", "0"),

    NAMES("train.stages", train.stages, "pretrain|adapt", "[pretrain, adapt]",
          "stages to run, in order"),
    INT("train.pretrain.epochs", train.pretrain.epochs, 0, 1e6, "80", "source epochs"),
    INT("train.pretrain.iters", train.pretrain.iters, 1, 1e9, "100", "iterations per epoch"),
    INT("train.pretrain.batch_size", train.pretrain.batch_size, 1, 1e6, "64",
        "global batch (P identities x K instances)"),
    INT("train.pretrain.instances", train.pretrain.instances, 1, 1e6, "4",
        "K images per identity in a batch"),
    FLT("train.pretrain.label_smoothing", train.pretrain.label_smoothing, 0, 1, "0.1",
        "cross-entropy label smoothing"),
    FLT("train.pretrain.triplet_margin", train.pretrain.triplet_margin, 0, 100, "0.3",
        "batch-hard triplet margin"),
    BOOL("train.pretrain.soft_margin", train.pretrain.soft_margin, "false",
         "soft-margin triplet instead of the margin"),
    INT("train.adapt.epochs", train.adapt.epochs, 0, 1e6, "50", "adaptation epochs"),
    INT("train.adapt.iters", train.adapt.iters, 1, 1e9, "200", "iterations per epoch"),
    INT("train.adapt.batch_size", train.adapt.batch_size, 1, 1e6, "256",
        "global batch (P pseudo identities x K instances)"),
    INT("train.adapt.instances", train.adapt.instances, 1, 1e6, "16",
        "K images per pseudo identity in a batch"),
    FLT("train.adapt.temperature", train.adapt.temperature, 1e-6, 100, "0.05",
        "cluster-memory temperature"),
    FLT("train.adapt.memory_momentum", train.adapt.memory_momentum, 0, 1, "0.2",
        "cluster-memory momentum"),
    BOOL("train.adapt.hard", train.adapt.hard, "false",
         "update the memory with the least similar sample of each cluster"),

    INT("cluster.k1", cluster.k1, 1, 100000, "30", "k-reciprocal k1"),
    INT("cluster.k2", cluster.k2, 1, 100000, "6", "query-expansion k2 (at most k1)"),
    FLT("cluster.eps", cluster.eps, 1e-9, 1, "0.6", "DBSCAN eps on the Jaccard distance"),
    INT("cluster.min_samples", cluster.min_samples, 1, 2147483647, "4",
        "DBSCAN min_samples (counting the point itself)"),

    ENUM("refine.mode", refine.mode, "none|argmax|hierarchical", "hierarchical",
         "SLR refinement of the pseudo labels"),
    FLT("refine.alpha", refine.alpha, 0, 1, "0.5",
        "weight of the current label in the soft label"),
    ENUM("refine.linkage", refine.linkage, "single|complete|average|ward", "average",
         "linkage of the hierarchical clustering"),
    FLT("refine.threshold", refine.threshold, 0, 1e6, "0.72",
        "distance threshold of the hierarchical clustering"),
    BOOL("refine.reclaim_outliers", refine.reclaim_outliers, "false",
         "let current outliers with a previous cluster join a refined cluster"),
    FLT("refine.soft_weight", refine.soft_weight, 0, 100, "0.0",
        "weight of the soft-label loss against the memory (0 = off)"),
    ENUM("refine.distance", refine.distance, "euclidean|cosine|jensen_shannon|hellinger",
         "euclidean", "distance between soft labels in the hierarchical clustering"),
    ENUM("refine.threshold_mode", refine.threshold_mode, "absolute|alpha", "absolute",
         "absolute: refine.threshold as given; alpha: refine.threshold times alpha"),
    ENUM("refine.alpha_schedule", refine.alpha_schedule, "constant|linear", "constant",
         "alpha over the adaptation epochs: constant, or linear to refine.alpha_end"),
    FLT("refine.alpha_end", refine.alpha_end, 0, 1, "0.5",
        "linear schedule: alpha at the last adaptation epoch"),
    ENUM("refine.previous", refine.previous, "dbscan|refined", "dbscan",
         "previous labels projected: the last epoch's DBSCAN or refined labels"),
    ENUM("refine.projection", refine.projection, "row|iou|transition", "row",
         "projection of a previous cluster: IoU row-normalised, raw IoU, or the share of its "
         "samples in each current cluster"),
    ENUM("refine.memory", refine.memory, "refined|dbscan", "refined",
         "clusters the cluster memory is built from"),

    INT("checkpoint.every_steps", checkpoint.every_steps, 0, 1e12, "0",
        "also checkpoint every n steps (0 = end of each epoch only)"),
    ENUM("checkpoint.resume", checkpoint.resume, "auto|never", "auto",
         "auto: continue from the newest complete checkpoint in the run folder"),
    INT("checkpoint.keep", checkpoint.keep, 1, 1e6, "2", "checkpoints kept"),
    INT("checkpoint.labels_every", checkpoint.labels_every, 0, 1e6, "1",
        "write RUN/labels/epoch-NNN.h5 every n adaptation epochs (0 = never)"),
    BOOL("checkpoint.labels_features", checkpoint.labels_features, "true",
         "the labels files also hold the epoch's features"),

    INT("eval.every", eval.every, 0, 1e6, "10", "evaluate every n epochs (0 = only at the end)"),
    CHOICE("eval.metric", eval.metric, "euclidean|cosine", "euclidean", "retrieval distance"),
    BOOL("eval.rerank", eval.rerank, "false", "k-reciprocal re-ranking at test time"),
    CHOICE("eval.rerank_variant", eval.rerank_variant, "jaccard|zhong", "jaccard",
         "re-ranking variant: the peers' evaluators (jaccard) or their re_ranking function (zhong)"),
    INT("eval.rerank_k1", eval.rerank_k1, 1, 100000, "20", "re-ranking k1"),
    INT("eval.rerank_k2", eval.rerank_k2, 1, 100000, "6", "re-ranking k2 (at most k1)"),
    FLT("eval.rerank_lambda", eval.rerank_lambda, 0, 1, "0.3", "re-ranking lambda"),
    INT("eval.batch_size", eval.batch_size, 1, 1e6, "64", "feature extraction batch"),

    INT("run.seed", run.seed, 0, 9.2e18, "1", "random seed"),
    INT("run.threads", run.threads, 0, 4096, "0",
        "threads per rank for OpenBLAS and the engine (0 = cores / ranks per node)"),
    ENUM("run.log_level", run.log_level, "error|warn|info|debug", "info", "log level"),
    BOOL("run.log_all_ranks", run.log_all_ranks, "false", "every rank logs, prefixed"),
    FLT("run.progress_interval", run.progress_interval, 0.1, 1e6, "10",
        "seconds between progress lines when stdout is not a terminal"),
};

#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static const key_def *find_key(const char *path) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strcmp(KEYS[i].path, path) == 0) return &KEYS[i];
  return NULL;
}

/* Whether `path` names a section (a prefix of some key followed by '.'). */
static int is_section(const char *path) {
  size_t n = strlen(path);
  for (size_t i = 0; i < NKEYS; i++)
    if (strncmp(KEYS[i].path, path, n) == 0 && KEYS[i].path[n] == '.') return 1;
  return 0;
}

/* ---- scalar conversion ---------------------------------------------------------- */

/* `where` is "FILE:LINE" or "--set KEY=VALUE". */
static int bad(const char *where, const char *key, const char *value, const char *why) {
  return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: %s: \"%s\" %s", where, key, value, why);
}

static int parse_int(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 0);
  if (errno || end == s || *end) {
    /* accept integral floats such as 1e3 */
    double d = strtod(s, &end);
    if (end == s || *end || !isfinite(d) || d != floor(d) || fabs(d) > 9.2e18) return -1;
    v = (long long)d;
  }
  *out = v;
  return 0;
}

static int parse_float(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno == ERANGE || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

static int parse_bool(const char *s, int *out) {
  static const char *yes[] = {"true", "yes", "on", "1", "True", "TRUE", "Yes", "On"};
  static const char *no[] = {"false", "no", "off", "0", "False", "FALSE", "No", "Off"};
  for (int i = 0; i < 8; i++) {
    if (strcmp(s, yes[i]) == 0) return *out = 1, 0;
    if (strcmp(s, no[i]) == 0) return *out = 0, 0;
  }
  return -1;
}

static int in_choices(const char *choices, const char *s) {
  size_t n = strlen(s);
  const char *p = choices;
  while (*p) {
    const char *q = strchr(p, '|');
    size_t len = q ? (size_t)(q - p) : strlen(p);
    if (len == n && strncmp(p, s, n) == 0) return 1;
    if (!q) break;
    p = q + 1;
  }
  return 0;
}

/* Index of s among "a|b|c", -1 if it is not one of them. */
static int choice_index(const char *choices, const char *s) {
  size_t n = strlen(s);
  const char *p = choices;
  for (int i = 0; *p; i++) {
    const char *q = strchr(p, '|');
    size_t len = q ? (size_t)(q - p) : strlen(p);
    if (len == n && strncmp(p, s, n) == 0) return i;
    if (!q) break;
    p = q + 1;
  }
  return -1;
}

/* The i-th of "a|b|c" into buf ("?" when out of range). */
static const char *choice_name(const char *choices, int i, char *buf, size_t len) {
  const char *p = choices;
  for (int j = 0; *p; j++) {
    const char *q = strchr(p, '|');
    size_t l = q ? (size_t)(q - p) : strlen(p);
    if (j == i) {
      snprintf(buf, len, "%.*s", (int)l, p);
      return buf;
    }
    if (!q) break;
    p = q + 1;
  }
  snprintf(buf, len, "?");
  return buf;
}

static int check_range(const key_def *k, double v, const char *where, const char *s) {
  if (v < k->min || v > k->max) {
    char why[160];
    if (k->max >= BIG / 10 || k->max > 1e17)
      snprintf(why, sizeof why, "is out of range (at least %.15g)", k->min);
    else
      snprintf(why, sizeof why, "is out of range (%.15g to %.15g)", k->min, k->max);
    return bad(where, k->path, s, why);
  }
  return 0;
}

/* Set a scalar key from text. */
static int set_scalar(slr_config *c, const key_def *k, const char *s, const char *where) {
  char *base = (char *)c + k->off;
  switch (k->type) {
  case K_INT:
  case K_I32: {
    int64_t v;
    if (parse_int(s, &v)) return bad(where, k->path, s, "is not an integer");
    SLR_TRY(check_range(k, (double)v, where, s));
    if (k->type == K_I32)
      *(int *)base = (int)v;
    else
      *(int64_t *)base = v;
    return 0;
  }
  case K_FLOAT: {
    double v;
    if (parse_float(s, &v)) return bad(where, k->path, s, "is not a number");
    SLR_TRY(check_range(k, v, where, s));
    *(double *)base = v;
    return 0;
  }
  case K_BOOL: {
    int v;
    if (parse_bool(s, &v)) return bad(where, k->path, s, "is not a boolean (true or false)");
    *(int *)base = v;
    return 0;
  }
  case K_STR: {
    if (k->choices && !in_choices(k->choices, s)) {
      char why[300];
      snprintf(why, sizeof why, "is not one of %s", k->choices);
      return bad(where, k->path, s, why);
    }
    if (strlen(s) >= k->size) return bad(where, k->path, s, "is too long");
    strcpy(base, s);
    return 0;
  }
  case K_ENUM: {
    int v = choice_index(k->choices, s);
    if (v < 0) {
      char why[300];
      snprintf(why, sizeof why, "is not one of %s", k->choices);
      return bad(where, k->path, s, why);
    }
    *(int *)base = v;
    return 0;
  }
  default:
    return bad(where, k->path, s, "must be a list, e.g. [1, 2]");
  }
}

static int list_append(slr_config *c, const key_def *k, const char *s, const char *where) {
  char *base = (char *)c + k->off;
  if (k->type == K_INTS) {
    slr_int_list *l = (slr_int_list *)base;
    int64_t v;
    if (parse_int(s, &v)) return bad(where, k->path, s, "is not an integer");
    SLR_TRY(check_range(k, (double)v, where, s));
    if (l->n >= SLR_CFG_LIST) return bad(where, k->path, s, "is one element too many");
    l->v[l->n++] = v;
    return 0;
  }
  slr_name_list *l = (slr_name_list *)base;
  if (k->choices && !in_choices(k->choices, s)) {
    char why[300];
    snprintf(why, sizeof why, "is not one of %s", k->choices);
    return bad(where, k->path, s, why);
  }
  if (strlen(s) >= SLR_CFG_NAME) return bad(where, k->path, s, "is too long");
  if (l->n >= SLR_CFG_LIST) return bad(where, k->path, s, "is one element too many");
  strcpy(l->v[l->n++], s);
  return 0;
}

static void list_clear(slr_config *c, const key_def *k) {
  char *base = (char *)c + k->off;
  if (k->type == K_INTS)
    ((slr_int_list *)base)->n = 0;
  else
    ((slr_name_list *)base)->n = 0;
}

/* ---- YAML walking ------------------------------------------------------------- */

typedef struct {
  slr_config *c;
  const char *name; /* file name or "--set ..." for messages */
  int line_offset;  /* added to libyaml's 0-based line */
} walker;

static void where_at(const walker *w, const yaml_event_t *e, char *buf, size_t len) {
  if (w->line_offset >= 0)
    snprintf(buf, len, "%s:%zu", w->name, e->start_mark.line + 1 + (size_t)w->line_offset);
  else
    snprintf(buf, len, "%s", w->name);
}

static int next(yaml_parser_t *p, yaml_event_t *e, const walker *w) {
  if (!yaml_parser_parse(p, e)) {
    const char *what = p->problem ? p->problem : "syntax error";
    if (w->line_offset >= 0)
      return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s:%zu: YAML syntax error: %s%s%s",
                           w->name, p->problem_mark.line + 1, what,
                           p->context ? " " : "", p->context ? p->context : "");
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: YAML syntax error: %s", w->name, what);
  }
  return 0;
}

static const char *scalar_text(const yaml_event_t *e) {
  return (const char *)e->data.scalar.value;
}

/* Skip the rest of a node whose start event was just read. */
static int skip_node(yaml_parser_t *p, yaml_event_t *start, const walker *w) {
  int depth = (start->type == YAML_MAPPING_START_EVENT || start->type == YAML_SEQUENCE_START_EVENT);
  while (depth > 0) {
    yaml_event_t e;
    SLR_TRY(next(p, &e, w));
    if (e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT) depth++;
    if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) depth--;
    yaml_event_delete(&e);
  }
  return 0;
}

/* Read the value of key `path` whose first event is `e` (consumed). */
static int read_value(yaml_parser_t *p, yaml_event_t *e, const char *path, const walker *w);

/* An alias (*name) is refused with a message that says so: a configuration
 * is a record of a run, read by people and by slr alike, and every value is
 * written out where it applies. */
static int alias_error(const walker *w, const yaml_event_t *e, const char *path) {
  char where[SLR_CFG_STR + 64];
  where_at(w, e, where, sizeof where);
  return slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                       "%s: %s: YAML aliases (*%s) are not supported in slr configurations; "
                       "write the value out",
                       where, path[0] ? path : "(top level)",
                       e->data.alias.anchor ? (const char *)e->data.alias.anchor : "");
}

/* The keys of one mapping seen so far, for duplicates. */
typedef struct {
  char name[64][SLR_CFG_NAME * 2];
  size_t line[64];
  int n;
} seen_keys;

static int read_mapping(yaml_parser_t *p, const char *prefix, const walker *w) {
  seen_keys *seen = calloc(1, sizeof *seen);
  if (!seen) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory reading %s", w->name);
  int rc = 0;
  for (;;) {
    yaml_event_t ke;
    rc = next(p, &ke, w);
    if (rc) break;
    if (ke.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&ke);
      break;
    }
    char where[SLR_CFG_STR + 64];
    where_at(w, &ke, where, sizeof where);
    if (ke.type == YAML_ALIAS_EVENT) {
      rc = alias_error(w, &ke, prefix);
      yaml_event_delete(&ke);
      break;
    }
    if (ke.type != YAML_SCALAR_EVENT) {
      yaml_event_delete(&ke);
      rc = slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: %s: keys must be plain names", where,
                         prefix[0] ? prefix : "(top level)");
      break;
    }
    char path[256];
    snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", scalar_text(&ke));
    const char *name = scalar_text(&ke);
    if (strcmp(name, "<<") == 0) {
      yaml_event_delete(&ke);
      rc = slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                         "%s: %s: YAML merge keys (<<) are not supported in slr "
                         "configurations; write the keys out",
                         where, prefix[0] ? prefix : "(top level)");
      break;
    }
    for (int i = 0; i < seen->n; i++)
      if (strcmp(seen->name[i], name) == 0) {
        rc = slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                           "%s: duplicate %s \"%s\" (first at line %zu)", where,
                           find_key(path) ? "key" : "section", path,
                           seen->line[i] + 1 + (size_t)(w->line_offset > 0 ? w->line_offset : 0));
        break;
      }
    if (!rc && seen->n < 64 && strlen(name) < sizeof seen->name[0]) {
      strcpy(seen->name[seen->n], name);
      seen->line[seen->n++] = ke.start_mark.line;
    }
    yaml_event_delete(&ke);
    if (rc) break;
    if (!find_key(path) && !is_section(path)) {
      rc = slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: unknown key \"%s\"", where, path);
      break;
    }
    yaml_event_t ve;
    rc = next(p, &ve, w);
    if (rc) break;
    if (ve.type == YAML_ALIAS_EVENT)
      rc = alias_error(w, &ve, path);
    else
      rc = read_value(p, &ve, path, w);
    yaml_event_delete(&ve);
    if (rc) break;
  }
  free(seen);
  return rc;
}

static int read_value(yaml_parser_t *p, yaml_event_t *e, const char *path, const walker *w) {
  char where[SLR_CFG_STR + 64];
  where_at(w, e, where, sizeof where);
  const key_def *k = find_key(path);
  if (!k) { /* a section */
    if (e->type == YAML_MAPPING_START_EVENT) return read_mapping(p, path, w);
    if (e->type == YAML_SCALAR_EVENT && e->data.scalar.length == 0) return 0; /* empty */
    const char *v = e->type == YAML_SCALAR_EVENT ? scalar_text(e) : "(a list)";
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                         "%s: %s: \"%s\" is a value, but %s is a section (a mapping of keys)",
                         where, path, v, path);
  }
  if (k->type == K_INTS || k->type == K_NAMES) {
    if (e->type == YAML_SCALAR_EVENT) {
      /* a single scalar is a one-element list; an empty value an empty list */
      list_clear(w->c, k);
      if (e->data.scalar.length == 0) return 0;
      return list_append(w->c, k, scalar_text(e), where);
    }
    if (e->type != YAML_SEQUENCE_START_EVENT)
      return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: %s: expected a list", where, path);
    list_clear(w->c, k);
    for (;;) {
      yaml_event_t it;
      SLR_TRY(next(p, &it, w));
      if (it.type == YAML_SEQUENCE_END_EVENT) {
        yaml_event_delete(&it);
        return 0;
      }
      char iw[SLR_CFG_STR + 64];
      where_at(w, &it, iw, sizeof iw);
      int rc;
      if (it.type == YAML_ALIAS_EVENT) {
        rc = alias_error(w, &it, path);
      } else if (it.type != YAML_SCALAR_EVENT) {
        rc = slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: %s: list elements must be scalars",
                           iw, path);
      } else {
        rc = list_append(w->c, k, scalar_text(&it), iw);
      }
      yaml_event_delete(&it);
      SLR_TRY(rc);
    }
  }
  if (e->type != YAML_SCALAR_EVENT) {
    int rc = slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: %s: expected a single value, found a %s",
                           where, path,
                           e->type == YAML_MAPPING_START_EVENT ? "mapping" : "list");
    skip_node(p, e, w);
    return rc;
  }
  return set_scalar(w->c, k, scalar_text(e), where);
}

/* Parse a whole YAML stream whose top level is a mapping of keys under
 * `prefix` ("" for a file). */
static int parse_stream(yaml_parser_t *p, const char *prefix, const walker *w) {
  yaml_event_t e;
  int rc = 0, done = 0;
  while (!rc && !done) {
    rc = next(p, &e, w);
    if (rc) break;
    switch (e.type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_START_EVENT:
    case YAML_DOCUMENT_END_EVENT: break;
    case YAML_STREAM_END_EVENT: done = 1; break;
    case YAML_MAPPING_START_EVENT:
      if (prefix[0])
        rc = read_value(p, &e, prefix, w);
      else
        rc = read_mapping(p, "", w);
      break;
    case YAML_SCALAR_EVENT:
      if (prefix[0]) {
        rc = read_value(p, &e, prefix, w);
        break;
      }
      if (e.data.scalar.length == 0) break; /* an empty document */
      /* fallthrough */
    default: {
      char where[SLR_CFG_STR + 64];
      where_at(w, &e, where, sizeof where);
      if (prefix[0])
        rc = read_value(p, &e, prefix, w);
      else
        rc = slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                           "%s: the configuration must be a mapping of sections", where);
    }
    }
    yaml_event_delete(&e);
  }
  return rc;
}

/* ---- public ----------------------------------------------------------------------- */

void slr_config_defaults(slr_config *c) {
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < NKEYS; i++) {
    if (KEYS[i].type == K_ENUM && KEYS[i].size != sizeof(int)) {
      fprintf(stderr, "slr: internal error: %s is an ENUM key but its field is no enum\n",
              KEYS[i].path);
      abort();
    }
    char assign[512];
    snprintf(assign, sizeof assign, "%s=%s", KEYS[i].path, KEYS[i].def);
    if (slr_config_set(c, assign) != 0) {
      fprintf(stderr, "slr: internal error: bad default for %s: %s\n", KEYS[i].path,
              slr_error_message());
      abort();
    }
  }
}

int slr_config_load(slr_config *c, const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                         "%s is a folder, not a configuration file (a .yaml file)", path);
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                         "%s is not a regular file; give a configuration file (.yaml)", path);
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: cannot open configuration: %s", path,
                         strerror(errno));
  yaml_parser_t p;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_file(&p, fp);
  walker w = {c, path, 0};
  int rc = parse_stream(&p, "", &w);
  yaml_parser_delete(&p);
  fclose(fp);
  if (!rc) slr_strlcpy(c->source_file, path, sizeof c->source_file);
  return rc;
}

int slr_config_load_text(slr_config *c, const char *text, const char *where) {
  yaml_parser_t p;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
  walker w = {c, where, 0};
  int rc = parse_stream(&p, "", &w);
  yaml_parser_delete(&p);
  return rc;
}

static int config_set_at(slr_config *c, const char *assignment, const char *where);

int slr_config_set(slr_config *c, const char *assignment) {
  if (!assignment) return 0;
  char where[700];
  snprintf(where, sizeof where, "--set %s", assignment);
  return config_set_at(c, assignment, where);
}

int slr_config_set_option(slr_config *c, const char *option, const char *key,
                          const char *value) {
  if (!value) return 0;
  char where[700], assign[700];
  snprintf(where, sizeof where, "--%s %s", option, value);
  snprintf(assign, sizeof assign, "%s=%s", key, value);
  return config_set_at(c, assign, where);
}

static int config_set_at(slr_config *c, const char *assignment, const char *where) {
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment)
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: expected KEY=VALUE, e.g. solver.adapt.lr=1e-4",
                         where);
  char key[256];
  size_t klen = (size_t)(eq - assignment);
  if (klen >= sizeof key) return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: key too long", where);
  memcpy(key, assignment, klen);
  key[klen] = '\0';
  const key_def *k = find_key(key);
  if (!k) {
    if (is_section(key))
      return slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                           "%s: \"%s\" is a section; set one of its keys (slr config --keys)",
                           where, key);
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: unknown key \"%s\" (slr config --keys lists them)",
                         where, key);
  }
  const char *value = eq + 1;
  /* a string key takes the text as it is (paths with ": " or "#"), unless
   * quoted */
  if (k->type == K_STR && value[0] != '"' && value[0] != '\'') return set_scalar(c, k, value, where);
  /* parse the value as a YAML node so that lists and quoting work as in files */
  yaml_parser_t p;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_string(&p, (const unsigned char *)value, strlen(value));
  walker w = {c, where, -1};
  int rc = parse_stream(&p, key, &w);
  yaml_parser_delete(&p);
  if (!rc && strlen(value) == 0 && (k->type == K_INT || k->type == K_I32 || k->type == K_FLOAT || k->type == K_BOOL))
    rc = bad(where, key, value, "is empty");
  return rc;
}

int slr_config_validate(const slr_config *c) {
  const slr_pretrain_cfg *pt = &c->train.pretrain;
  const slr_adapt_cfg *ad = &c->train.adapt;
  const char *f = c->source_file[0] ? c->source_file : "the configuration";
  if (pt->batch_size % pt->instances)
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                         "%s: train.pretrain.batch_size %lld is not a multiple of "
                         "train.pretrain.instances %lld",
                         f, (long long)pt->batch_size, (long long)pt->instances);
  if (ad->batch_size % ad->instances)
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                         "%s: train.adapt.batch_size %lld is not a multiple of "
                         "train.adapt.instances %lld",
                         f, (long long)ad->batch_size, (long long)ad->instances);
  if (c->train.stages.n == 0)
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                         "%s: train.stages is empty; give pretrain, adapt or both", f);
  if (c->cluster.k2 > c->cluster.k1)
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: cluster.k2 %lld is larger than cluster.k1 %lld",
                         f, (long long)c->cluster.k2, (long long)c->cluster.k1);
  if (c->eval.rerank_k2 > c->eval.rerank_k1)
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0,
                         "%s: eval.rerank_k2 %lld is larger than eval.rerank_k1 %lld", f,
                         (long long)c->eval.rerank_k2, (long long)c->eval.rerank_k1);
  return 0;
}

/* YAML-quote a string when it would not read back as the same string. */
static void write_str(FILE *out, const char *s) {
  int plain = s[0] != '\0';
  for (const char *p = s; *p && plain; p++)
    if (!(isalnum((unsigned char)*p) || strchr("_-./+", *p))) plain = 0;
  int dummy;
  double dd;
  if (plain && (parse_bool(s, &dummy) == 0 || parse_float(s, &dd) == 0 ||
                strcmp(s, "null") == 0 || strcmp(s, "~") == 0))
    plain = 0;
  if (plain) {
    fputs(s, out);
    return;
  }
  fputc('"', out);
  for (const char *p = s; *p; p++) {
    if (*p == '"' || *p == '\\') fputc('\\', out);
    fputc(*p, out);
  }
  fputc('"', out);
}

static void write_value(FILE *out, const slr_config *c, const key_def *k) {
  const char *base = (const char *)c + k->off;
  switch (k->type) {
  case K_INT: fprintf(out, "%lld", (long long)*(const int64_t *)base); break;
  case K_I32: fprintf(out, "%d", *(const int *)base); break;
  case K_FLOAT: {
    char buf[64];
    double v = *(const double *)base;
    snprintf(buf, sizeof buf, "%.17g", v);
    /* shortest text that reads back exactly */
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, v);
      if (strtod(buf, NULL) == v) break;
    }
    if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, sizeof buf, "%.1f", v); /* 10.0 */
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    fputs(buf, out);
    break;
  }
  case K_BOOL: fputs(*(const int *)base ? "true" : "false", out); break;
  case K_STR: write_str(out, base); break;
  case K_ENUM: {
    char name[SLR_CFG_NAME];
    fputs(choice_name(k->choices, *(const int *)base, name, sizeof name), out);
    break;
  }
  case K_INTS: {
    const slr_int_list *l = (const slr_int_list *)base;
    fputc('[', out);
    for (int i = 0; i < l->n; i++) fprintf(out, "%s%lld", i ? ", " : "", (long long)l->v[i]);
    fputc(']', out);
    break;
  }
  case K_NAMES: {
    const slr_name_list *l = (const slr_name_list *)base;
    fputc('[', out);
    for (int i = 0; i < l->n; i++) {
      if (i) fputs(", ", out);
      write_str(out, l->v[i]);
    }
    fputc(']', out);
    break;
  }
  }
}

static char *value_text(const slr_config *c, const key_def *k);

/* ---- the YAML writer (libyaml's emitter) ----------------------------------------- */

/* Whether a string must be quoted to read back as the same string (also for
 * other YAML readers: "true", "1.5", "null", "" ...). */
static int needs_quotes(const char *s) {
  int plain = s[0] != '\0';
  for (const char *p = s; *p && plain; p++)
    if (!(isalnum((unsigned char)*p) || strchr("_-./+", *p))) plain = 0;
  int dummy;
  double dd;
  if (plain && (parse_bool(s, &dummy) == 0 || parse_float(s, &dd) == 0 ||
                strcmp(s, "null") == 0 || strcmp(s, "~") == 0))
    plain = 0;
  return !plain;
}

static int emit_scalar(yaml_emitter_t *em, const char *text, int quoted) {
  yaml_event_t ev;
  yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1, 1,
                               quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
  return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int emit_simple(yaml_emitter_t *em, int type) {
  yaml_event_t ev;
  switch (type) {
  case 0: yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE); break;
  case 1: yaml_mapping_end_event_initialize(&ev); break;
  case 2: yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_SEQUENCE_STYLE); break;
  default: yaml_sequence_end_event_initialize(&ev); break;
  }
  return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int emit_value(yaml_emitter_t *em, const slr_config *c, const key_def *k) {
  const char *base = (const char *)c + k->off;
  if (k->type == K_INTS || k->type == K_NAMES) {
    if (emit_simple(em, 2)) return -1;
    if (k->type == K_INTS) {
      const slr_int_list *l = (const slr_int_list *)base;
      for (int i = 0; i < l->n; i++) {
        char t[32];
        snprintf(t, sizeof t, "%lld", (long long)l->v[i]);
        if (emit_scalar(em, t, 0)) return -1;
      }
    } else {
      const slr_name_list *l = (const slr_name_list *)base;
      for (int i = 0; i < l->n; i++)
        if (emit_scalar(em, l->v[i], needs_quotes(l->v[i]))) return -1;
    }
    return emit_simple(em, 3);
  }
  if (k->type == K_STR) return emit_scalar(em, base, needs_quotes(base));
  char *t = value_text(c, k);
  if (!t) return -1;
  int rc = emit_scalar(em, t, 0);
  free(t);
  return rc;
}

static int write_handler(void *data, unsigned char *buffer, size_t size) {
  return fwrite(buffer, 1, size, (FILE *)data) == size;
}

int slr_config_write(const slr_config *c, FILE *out) {
  yaml_emitter_t em;
  if (!yaml_emitter_initialize(&em)) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory (YAML)");
  yaml_emitter_set_output(&em, write_handler, out);
  yaml_emitter_set_unicode(&em, 1);
  yaml_emitter_set_indent(&em, 2);
  yaml_emitter_set_width(&em, -1); /* one line per key, however long */
  yaml_event_t ev;
  int bad_emit = 0;
  yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
  bad_emit |= !yaml_emitter_emit(&em, &ev);
  yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
  bad_emit |= !yaml_emitter_emit(&em, &ev);
  bad_emit |= emit_simple(&em, 0) != 0;
  /* the open sections, as the prefix of the previous key */
  char open[8][64];
  int depth = 0;
  for (size_t i = 0; i < NKEYS && !bad_emit; i++) {
    char parts[8][64];
    int np = 0;
    const char *p = KEYS[i].path;
    while (np < 8) {
      const char *d = strchr(p, '.');
      size_t l = d ? (size_t)(d - p) : strlen(p);
      snprintf(parts[np++], sizeof parts[0], "%.*s", (int)l, p);
      if (!d) break;
      p = d + 1;
    }
    int common = 0;
    while (common < depth && common < np - 1 && strcmp(open[common], parts[common]) == 0)
      common++;
    for (; depth > common; depth--) bad_emit |= emit_simple(&em, 1) != 0;
    for (; depth < np - 1; depth++) {
      bad_emit |= emit_scalar(&em, parts[depth], 0) != 0;
      bad_emit |= emit_simple(&em, 0) != 0;
      snprintf(open[depth], sizeof open[0], "%s", parts[depth]);
    }
    bad_emit |= emit_scalar(&em, parts[np - 1], 0) != 0;
    bad_emit |= emit_value(&em, c, &KEYS[i]) != 0;
  }
  for (; depth > 0 && !bad_emit; depth--) bad_emit |= emit_simple(&em, 1) != 0;
  if (!bad_emit) {
    bad_emit |= emit_simple(&em, 1) != 0;
    yaml_document_end_event_initialize(&ev, 1);
    bad_emit |= !yaml_emitter_emit(&em, &ev);
    yaml_stream_end_event_initialize(&ev);
    bad_emit |= !yaml_emitter_emit(&em, &ev);
  }
  bad_emit |= !yaml_emitter_flush(&em);
  const char *why = em.problem ? em.problem : "";
  int rc = bad_emit || ferror(out)
               ? SLR_FAIL(SLR_ERR, "cannot write the configuration%s%s", why[0] ? ": " : "", why)
               : 0;
  yaml_emitter_delete(&em);
  return rc;
}

char *slr_config_to_string(const slr_config *c) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (!m) return NULL;
  slr_config_write(c, m);
  fclose(m);
  return buf;
}

void slr_config_print_keys(FILE *out) {
  static const char *tn[] = {"int", "float", "bool", "string", "int list", "list", "int", "choice"};
  for (size_t i = 0; i < NKEYS; i++) {
    const key_def *k = &KEYS[i];
    fprintf(out, "%-34s %-8s default %-14s %s", k->path, tn[k->type], k->def, k->help);
    if (k->choices) fprintf(out, " (%s)", k->choices);
    fputc('\n', out);
  }
}

int slr_config_save(const slr_config *c, const char *dir) {
  char path[SLR_CFG_STR + 32];
  if (snprintf(path, sizeof path, "%s/config.yaml", dir) >= (int)sizeof path)
    return SLR_FAIL(SLR_ERR, "run folder name too long: %s", dir);
  char *text = slr_config_to_string(c);
  if (!text) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory writing %s", path);
  int rc = slr_write_file_atomic(path, text, strlen(text));
  free(text);
  return rc;
}

/* ---- enums, defaults, differences ------------------------------------------------ */

int slr_config_enum_parse(const char *key, const char *name, int *out) {
  const key_def *k = find_key(key);
  if (!k || k->type != K_ENUM)
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s is not a key with a fixed set of values",
                         key);
  int v = choice_index(k->choices, name);
  if (v < 0)
    return slr_error_set(SLR_ERR_CONFIG, NULL, 0, "%s: \"%s\" is not one of %s", key, name,
                         k->choices);
  *out = v;
  return 0;
}

const char *slr_config_enum_name(const char *key, int value) {
  static _Thread_local char buf[SLR_CFG_NAME];
  const key_def *k = find_key(key);
  if (!k || k->type != K_ENUM) return "?";
  return choice_name(k->choices, value, buf, sizeof buf);
}

const char *slr_config_default_text(const char *key) {
  const key_def *k = find_key(key);
  return k ? k->def : NULL;
}

/* one key's value as YAML text (malloc'ed) */
static char *value_text(const slr_config *c, const key_def *k) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (!m) return NULL;
  write_value(m, c, k);
  fclose(m);
  return buf;
}

char *slr_config_diff(const slr_config *a, const slr_config *b, int *count) {
  char *out = NULL;
  size_t len = 0;
  *count = 0;
  FILE *m = open_memstream(&out, &len);
  if (!m) return NULL;
  for (size_t i = 0; i < NKEYS; i++) {
    char *va = value_text(a, &KEYS[i]), *vb = value_text(b, &KEYS[i]);
    if (va && vb && strcmp(va, vb) != 0) {
      fprintf(m, "%s: %s -> %s\n", KEYS[i].path, va, vb);
      (*count)++;
    }
    free(va);
    free(vb);
  }
  fclose(m);
  if (*count == 0) {
    free(out);
    return NULL;
  }
  return out;
}
