/* slr data: read the source and target data sets of a configuration, print
 * the summary table of each (ids, images, cameras per split) and, with
 * --check, decode every image (shared over ranks) to find unreadable ones
 * before a long run. */
#include <string.h>

#include "cli.h"
#include "slr/config.h"
#include "slr/data.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_data = {
    "data", "read the data sets of a configuration, print their statistics, check the images",
    "[FILE] [--set key=value ...] [--side source|target|both] [--check]", run};

static int run(slr_ctx *ctx, int argc, char **argv) {
  slr_opt_list sets = {0};
  int check = 0;
  const char *side = "both";
  const slr_opt opts[] = {
      {"set", OPT_LIST, &sets, "KEY=VALUE", "override a key (repeatable), e.g. data.target.root=/data/market"},
      {"side", OPT_STR, &side, "NAME", "source | target | both (default both)"},
      {"check", OPT_FLAG, &check, NULL,
       "decode every image; a bad file stops with its name (or is counted with data.skip_corrupt)"},
      {NULL, 0, NULL, NULL, NULL}};
  const char *pos[1];
  int npos = 0;
  SLR_TRY(slr_parse_options(&slr_cmd_data, opts, argc, argv, pos, 1, &npos));
  int want[2] = {strcmp(side, "source") == 0 || strcmp(side, "both") == 0,
                 strcmp(side, "target") == 0 || strcmp(side, "both") == 0};
  if (!want[0] && !want[1])
    return SLR_FAIL(SLR_ERR_USAGE, "slr data: --side must be source, target or both (got \"%s\")", side);
  slr_config cfg;
  SLR_TRY(slr_cli_load_config(ctx->world, npos ? pos[0] : NULL, &sets, &cfg));
  const slr_domain_cfg *dom[2] = {&cfg.data.source, &cfg.data.target};
  const char *names[2] = {"source", "target"};
  for (int d = 0; d < 2; d++) {
    if (!want[d] || strcmp(dom[d]->format, "none") == 0) continue;
    slr_dataset ds;
    SLR_TRY(slr_dataset_load(&ds, dom[d], ctx->world));
    if (ctx->rank == 0) {
      printf("%s: ", names[d]);
      slr_dataset_print(&ds, stdout);
      fflush(stdout);
    }
    int rc = 0;
    for (int k = 0; k < SLR_NSPLITS && check && !rc; k++) {
      int64_t bad = 0;
      rc = slr_split_check(&ds.split[k], cfg.data.skip_corrupt, ctx->world, &bad);
      if (!rc && bad)
        slr_warn("%s %s: %lld corrupt image file%s skipped (data.skip_corrupt)", names[d],
                 k == SLR_TRAIN ? "train" : k == SLR_QUERY ? "query" : "gallery", (long long)bad,
                 bad > 1 ? "s" : "");
    }
    if (!rc && check) slr_info("%s: every image checked", names[d]);
    slr_dataset_free(&ds);
    if (rc) return rc;
  }
  return 0;
}
