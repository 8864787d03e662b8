/* slr train: the main job (pretrain, adapt with SLR), with checkpoints,
 * exact resume and stop requests. */
#include "cli.h"
#include "slr/config.h"
#include "slr/io.h"
#include "slr/train.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_train = {
    "train", "pretrain on the source domain and adapt to the target domain with SLR",
    "--config C.yaml --out RUN [--set key=value ...] [--resume] [--force-config]", run, 1};

static int run(slr_ctx *ctx, int argc, char **argv) {
  const char *config = NULL, *out = NULL;
  slr_opt_list sets = {0};
  int resume = 0, force = 0;
  const slr_opt opts[] = {
      {"config", OPT_STR, &config, "C.yaml", "the run's configuration"},
      {"out", OPT_STR, &out, "RUN", "the run folder (created; holds checkpoints and results)"},
      {"set", OPT_LIST, &sets, "KEY=VALUE", "override a configuration key (repeatable)"},
      {"resume", OPT_FLAG, &resume, NULL,
       "continue from the newest checkpoint in RUN (also what checkpoint.resume: auto does)"},
      {"force-config", OPT_FLAG, &force, NULL,
       "resume even though the configuration differs from the checkpoint's (logged; the old "
       "RUN/config.yaml is kept as config-N.yaml)"},
      {NULL, 0, NULL, NULL, NULL}};
  const char *pos[1];
  int npos;
  int rc = slr_parse_options(&slr_cmd_train, opts, argc, argv, pos, 0, &npos);
  if (rc) return rc;
  if (!config || !out)
    return slr_cli_usage_error(&slr_cmd_train, "--config and --out are required");
  SLR_TRY(slr_agree(ctx->world, slr_output_path_check(out, "run folder")));
  slr_config cfg;
  SLR_TRY(slr_cli_load_config(ctx->world, config, &sets, &cfg));
  slr_log_setup(cfg.run.log_level, cfg.run.log_all_ranks);
  return slr_train_run(ctx, &cfg, out,
                       (resume ? SLR_TRAIN_RESUME : 0u) | (force ? SLR_TRAIN_FORCE_CONFIG : 0u));
}
