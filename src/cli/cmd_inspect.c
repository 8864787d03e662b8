/* slr inspect: a summary of a checkpoint (or of any slr HDF5 file). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "slr/io.h"
#include "slr/train.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_inspect = {"inspect", "summarise a checkpoint or another slr file",
                                     "FILE.h5 [--config] | --schema", run, 0};

static void label_line(slr_h5 *f, const char *name, const char *what) {
  if (!slr_h5_exists(f, name)) return;
  int32_t *y = NULL;
  int64_t n = 0;
  if (slr_h5_read_all(f, name, SLR_I32, (void **)&y, &n)) return;
  int64_t outl = 0, k = 0;
  for (int64_t i = 0; i < n; i++) {
    if (y[i] < 0) outl++;
    if (y[i] + 1 > k) k = y[i] + 1;
  }
  if (slr_world_rank() == 0)
    printf("  %-22s %lld samples, %lld clusters, %lld outliers\n", what, (long long)n,
           (long long)k, (long long)outl);
  free(y);
}

static void shape_line(slr_h5 *f, const char *name, const char *what) {
  if (!slr_h5_exists(f, name)) return;
  int nd;
  int64_t dims[SLR_H5_MAXDIMS];
  if (slr_h5_shape(f, name, &nd, dims, NULL)) return;
  if (slr_world_rank() != 0) return;
  printf("  %-22s (", what);
  for (int i = 0; i < nd; i++) printf("%s%lld", i ? ", " : "", (long long)dims[i]);
  printf(")\n");
}

static int run(slr_ctx *ctx, int argc, char **argv) {
  int schema = 0, show_config = 0;
  const slr_opt opts[] = {
      {"schema", OPT_FLAG, &schema, NULL, "print the checkpoint layout (a Markdown table)"},
      {"config", OPT_FLAG, &show_config, NULL, "print the configuration a checkpoint was written with"},
      {NULL, 0, NULL, NULL, NULL}};
  const char *pos[1];
  int npos;
  int rc = slr_parse_options(&slr_cmd_inspect, opts, argc, argv, pos, 1, &npos);
  if (rc) return rc;
  if (schema) {
    if (ctx->rank == 0) slr_checkpoint_schema(stdout);
    return 0;
  }
  if (npos != 1)
    return slr_cli_usage_error(&slr_cmd_inspect, "which file?");
  slr_h5 f;
  SLR_TRY(slr_h5_open(&f, ctx->world, pos[0], NULL, 1, SLR_H5_FOREIGN_OK));
  char fmt[64] = "(none)";
  int64_t ver = 0;
  if (slr_h5_attr_exists(&f, "/", "slr_format")) {
    slr_h5_attr_get_str(&f, "/", "slr_format", fmt, sizeof fmt);
    slr_h5_attr_get_i64(&f, "/", "slr_format_version", &ver);
  }
  if (ctx->rank == 0) printf("%s: slr_format %s, version %lld\n", pos[0], fmt, (long long)ver);
  if (!strcmp(fmt, "checkpoint")) {
    slr_h5_close(&f);
    if (show_config) {
      char *text = NULL;
      SLR_TRY(slr_checkpoint_config(ctx->world, pos[0], &text));
      if (ctx->rank == 0) fputs(text, stdout);
      free(text);
      return 0;
    }
    return slr_checkpoint_inspect(ctx->world, pos[0], stdout);
  } else {
    const char *common[] = {"/features", "/labels", "/query/features", "/gallery/features",
                            "/images"};
    for (int i = 0; i < 5; i++) shape_line(&f, common[i], common[i]);
    label_line(&f, "/labels/dbscan", "DBSCAN labels");
    label_line(&f, "/labels/refined", "refined labels");
    label_line(&f, "/labels/previous", "previous labels");
    shape_line(&f, "/labels/soft/values", "soft labels (nnz)");
    shape_line(&f, "/labels/iou/values", "IoU matrix (nnz)");
  }
  return slr_h5_close(&f);
}
