/* slr export: the weights of a training checkpoint as a weights file (one
 * dataset per state_dict key, the model description as attributes), which
 * slr infer, slr extract, model.pretrained and tools/h52torch.py read. A
 * checkpoint keeps its model as flat vectors (/model/params, buffers,
 * counts); the model is rebuilt from the description attributes on the
 * checkpoint's /model group when it has them, otherwise from the run's
 * resolved configuration (RUN/config.yaml beside RUN/checkpoints/). */
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "slr/config.h"
#include "slr/io.h"
#include "slr/nn.h"
#include "slr/train.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_export = {
    "export", "write the weights of a training checkpoint as a weights file",
    "CKPT.h5 --out W.h5 [--config RUN/config.yaml] [--set key=value ...]", run, 0};

/* RUN/config.yaml for RUN/checkpoints/ckpt-N.h5 */
static int default_config(const char *ckpt, char *out, size_t len) {
  char tmp[SLR_PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", ckpt);
  char *dir = dirname(tmp); /* RUN/checkpoints */
  char up[SLR_PATH_MAX];
  snprintf(up, sizeof up, "%s", dir);
  char *run = dirname(up);  /* RUN */
  if (snprintf(out, len, "%s/config.yaml", run) >= (int)len)
    return SLR_FAIL(SLR_ERR_INPUT, "%s: path too long", ckpt);
  return 0;
}

/* The model configuration from the run's configuration file. */
static int config_model(slr_ctx *ctx, const char *file, const slr_opt_list *sets,
                        slr_model_config *mc) {
  slr_config cfg;
  SLR_TRY(slr_cli_load_config(ctx->world, file, sets, &cfg));
  slr_arch arch;
  SLR_TRY(slr_arch_parse(cfg.model.arch, &arch));
  slr_model_config_default(mc, arch);
  mc->width = (int)lround(64.0 * cfg.model.width);
  if (mc->width < 1) mc->width = 1;
  mc->last_stride = cfg.model.last_stride;
  SLR_TRY(slr_pool_parse(cfg.model.pool, &mc->pool));
  mc->gem_p = (float)cfg.model.gem_p;
  mc->neck = cfg.model.neck;
  return 0;
}

/* The model: the checkpoint's own description, else the run's
 * configuration (cfg_path names which). Collective. */
static int choose_model(slr_ctx *ctx, const char *ckpt, const char *config,
                        const slr_opt_list *sets, const slr_model_desc *d, slr_model_config *mc,
                        char *cfg_path, size_t len) {
  int rc = 0;
  const unsigned need =
      SLR_DESC_ARCH | SLR_DESC_WIDTH | SLR_DESC_LAST_STRIDE | SLR_DESC_POOL | SLR_DESC_NECK;
  if ((d->recorded & need) == need && !config && sets->n == 0) {
    *mc = d->cfg;
    snprintf(cfg_path, len, "the checkpoint's /model attributes");
    return 0;
  }
  if (config)
    snprintf(cfg_path, len, "%s", config);
  else
    rc = default_config(ckpt, cfg_path, len);
  if (!rc && !config && ctx->rank == 0 && access(cfg_path, R_OK) != 0)
    rc = SLR_FAIL(SLR_ERR_INPUT,
                  "%s does not describe its model and %s (the run's configuration) does not "
                  "exist: give the run's configuration with --config", ckpt, cfg_path);
  rc = slr_agree(ctx->world, rc);
  if (!rc) rc = config_model(ctx, cfg_path, sets, mc);
  return rc;
}

static int run(slr_ctx *ctx, int argc, char **argv) {
  const char *out = NULL, *config = NULL;
  slr_opt_list sets = {0};
  const slr_opt opts[] = {
      {"out", OPT_STR, &out, "W.h5", "weights file to write (via W.h5.tmp)"},
      {"config", OPT_STR, &config, "C.yaml",
       "the run's configuration, for checkpoints that do not describe their model (default: "
       "config.yaml in the folder above the checkpoint's)"},
      {"set", OPT_LIST, &sets, "KEY=VALUE", "override a key of that configuration (repeatable)"},
      {NULL, 0, NULL, NULL, NULL}};
  const char *pos[1];
  int npos = 0;
  int rc = slr_parse_options(&slr_cmd_export, opts, argc, argv, pos, 1, &npos);
  if (rc) return rc;
  if (npos != 1 || !out)
    return slr_cli_usage_error(&slr_cmd_export, "a checkpoint and --out are required");
  const char *ckpt = pos[0];

  slr_h5 f;
  SLR_TRY(slr_h5_open(&f, ctx->world, ckpt, "checkpoint", SLR_CHECKPOINT_VERSION, 0));
  slr_model_desc d;
  memset(&d, 0, sizeof d);
  rc = slr_model_desc_read(&f, "/model", &d);
  int64_t np = 0, nb = 0, nc = 0;
  float *params = NULL, *buffers = NULL;
  int64_t *counts = NULL;
  if (!rc) rc = slr_h5_read_all(&f, "/model/params", SLR_F32, (void **)&params, &np);
  if (!rc) rc = slr_h5_read_all(&f, "/model/buffers", SLR_F32, (void **)&buffers, &nb);
  if (!rc) rc = slr_h5_read_all(&f, "/model/counts", SLR_I64, (void **)&counts, &nc);
  char stage[64] = "?";
  if (!rc && slr_h5_attr_exists(&f, "/", "stage"))
    rc = slr_h5_attr_get_str(&f, "/", "stage", stage, sizeof stage);
  int64_t epoch = -1;
  if (!rc && slr_h5_attr_exists(&f, "/", "epoch")) rc = slr_h5_attr_get_i64(&f, "/", "epoch", &epoch);
  rc = slr_agree(ctx->world, rc);
  int crc = slr_h5_close(&f);
  if (!rc) rc = crc;

  slr_model_config mc;
  char cfg_path[SLR_PATH_MAX] = "";
  if (!rc) rc = choose_model(ctx, ckpt, config, &sets, &d, &mc, cfg_path, sizeof cfg_path);
  /* the classifier of a pretraining checkpoint: its class count follows from the sizes */
  slr_model m;
  int have_model = 0;
  if (!rc) {
    mc.num_classes = 0;
    rc = slr_model_init(&m, &mc, 0);
    have_model = !rc;
    if (!rc && np > m.nparams) {
      int64_t extra = np - m.nparams, D = m.feat_dim;
      if (extra % D == 0 && (!(d.recorded & SLR_DESC_CLASSES) || d.cfg.num_classes == extra / D)) {
        slr_model_free(&m);
        have_model = 0;
        mc.num_classes = (int)(extra / D);
        rc = slr_model_init(&m, &mc, 0);
        have_model = !rc;
      }
    }
  }
  if (!rc && (np != m.nparams || nb != m.nbuffers || nc != m.ncounts)) {
    char desc[160];
    slr_cli_model_describe(&mc, desc, sizeof desc);
    rc = SLR_FAIL(SLR_ERR_INPUT,
                  "%s holds %lld parameters, %lld statistics and %lld counters; the model of %s "
                  "(%s) has %lld, %lld and %lld: is that the configuration of this run?",
                  ckpt, (long long)np, (long long)nb, (long long)nc, cfg_path, desc,
                  (long long)m.nparams, (long long)m.nbuffers, (long long)m.ncounts);
  }
  rc = slr_agree(ctx->world, rc);
  if (!rc) {
    memcpy(m.params, params, sizeof(float) * (size_t)np);
    memcpy(m.buffers, buffers, sizeof(float) * (size_t)nb);
    memcpy(m.counts, counts, sizeof(int64_t) * (size_t)nc);
    rc = slr_model_save(&m, ctx->world, out);
  }
  if (!rc) {
    char desc[160];
    slr_cli_model_describe(&mc, desc, sizeof desc);
    slr_info("export: %s (stage %s, epoch %lld): %s%s, from %s -> %s", ckpt, stage,
             (long long)epoch + 1, desc, mc.num_classes ? ", with its classifier" : "", cfg_path, out);
  }
  if (have_model) slr_model_free(&m);
  free(params), free(buffers), free(counts);
  return rc;
}
