/* slr config: print the fully resolved configuration (defaults, file,
 * --set overrides), or the list of keys. */
#include <string.h>

#include "cli.h"
#include "slr/config.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_config = {
    "config", "print the resolved configuration (defaults + FILE + --set overrides)",
    "[FILE] [--set key=value ...] [--keys]", run, 0};

int slr_cli_load_config(MPI_Comm comm, const char *file, const slr_opt_list *sets,
                        slr_config *cfg) {
  slr_config_defaults(cfg);
  int rc = file ? slr_config_load(cfg, file) : 0;
  for (int i = 0; !rc && sets && i < sets->n; i++) rc = slr_config_set(cfg, sets->v[i]);
  if (!rc) rc = slr_config_validate(cfg);
  return slr_agree(comm, rc);
}

static int run(slr_ctx *ctx, int argc, char **argv) {
  slr_opt_list sets = {0};
  int keys = 0;
  const slr_opt opts[] = {
      {"set", OPT_LIST, &sets, "KEY=VALUE", "override a key (repeatable), e.g. solver.adapt.lr=1e-4"},
      {"keys", OPT_FLAG, &keys, NULL, "list every key with its type, default and help"},
      {NULL, 0, NULL, NULL, NULL}};
  const char *pos[1];
  int npos = 0;
  int rc = slr_parse_options(&slr_cmd_config, opts, argc, argv, pos, 1, &npos);
  if (rc) return rc;
  if (keys && (npos || sets.n))
    return slr_cli_usage_error(&slr_cmd_config, "--keys takes no FILE and no --set");
  if (keys) {
    if (ctx->rank == 0) slr_config_print_keys(stdout);
    return 0;
  }
  slr_config cfg;
  SLR_TRY(slr_cli_load_config(ctx->world, npos ? pos[0] : NULL, &sets, &cfg));
  if (ctx->rank == 0) {
    if (cfg.source_file[0]) printf("# resolved from %s\n", cfg.source_file);
    SLR_TRY(slr_config_write(&cfg, stdout));
    fflush(stdout);
  }
  return 0;
}
