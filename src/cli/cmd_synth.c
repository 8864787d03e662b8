/* slr synth: write a synthetic Re-ID domain of procedurally drawn
 * pedestrians in the Market-1501 layout, and/or a preview grid. Ranks share
 * the identities; the files are the same whatever the rank count. */
#include <string.h>

#include "cli.h"
#include "slr/data.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_synth = {
    "synth", "write a synthetic pedestrian domain in Market-1501 layout (and/or a preview grid)",
    "[DIR] [--style synthetic|realistic] [--ids N] [--cams N] [--per-cam N] [--height H] "
    "[--width W] [--seed S] [--difficulty D] [--gain G] [--cast C] [--train-frac F] "
    "[--preview out.png] [--preview-rows N]",
    run, 0};

static int run(slr_ctx *ctx, int argc, char **argv) {
  slr_synth_opts o;
  slr_synth_defaults(&o);
  int64_t ids = o.ids, cams = o.cams, per_cam = o.per_cam, height = o.height, width = o.width;
  int64_t seed = (int64_t)o.seed, rows = 8;
  double difficulty = o.difficulty, train_frac = o.train_frac, gain = o.gain, cast = o.cast;
  const char *style = "synthetic", *preview = NULL;
  const slr_opt opts[] = {
      {"style", OPT_STR, &style, "NAME", "synthetic (flat, clean) | realistic (textured, noisy)"},
      {"ids", OPT_INT, &ids, "N", "identities (default 120)"},
      {"cams", OPT_INT, &cams, "N", "cameras, 2..6 (default 4)"},
      {"per-cam", OPT_INT, &per_cam, "N", "images per identity per camera (default 4)"},
      {"height", OPT_INT, &height, "H", "image height (default 64)"},
      {"width", OPT_INT, &width, "W", "image width (default 32)"},
      {"seed", OPT_INT, &seed, "S", "random seed; the same seed gives the same bytes (default 1)"},
      {"difficulty", OPT_FLOAT, &difficulty, "D",
       "0..1: look-alikes, occlusion, blur, jitter, colour casts (default 0.5)"},
      {"train-frac", OPT_FLOAT, &train_frac, "F",
       "share of identities in bounding_box_train (default 0.5)"},
      {"gain", OPT_FLOAT, &gain, "G",
       "0.2..2: brightness factor of every camera (default 1: the style's own)"},
      {"cast", OPT_FLOAT, &cast, "C",
       "0..0.5: extra colour-cast amplitude per camera channel (default 0)"},
      {"preview", OPT_STR, &preview, "PNG", "write a grid: one row per identity across cameras"},
      {"preview-rows", OPT_INT, &rows, "N", "identities in the preview (default 8)"},
      {NULL, 0, NULL, NULL, NULL}};
  const char *pos[1];
  int npos = 0;
  SLR_TRY(slr_parse_options(&slr_cmd_synth, opts, argc, argv, pos, 1, &npos));
  if (npos == 0 && !preview)
    return slr_cli_usage_error(&slr_cmd_synth, "give an output folder and/or --preview out.png");
  if (strcmp(style, "synthetic") == 0)
    o.style = SLR_STYLE_SYNTHETIC;
  else if (strcmp(style, "realistic") == 0)
    o.style = SLR_STYLE_REALISTIC;
  else
    return slr_cli_usage_error(&slr_cmd_synth, "--style must be synthetic or realistic (got \"%s\")",
                    style);
  if (ids > 100000 || cams > 100 || per_cam > 1000 || height > 4096 || width > 4096 || rows < 1 ||
      rows > 1000 || ids < 0 || cams < 0 || per_cam < 0 || height < 0 || width < 0)
    return slr_cli_usage_error(&slr_cmd_synth, "an option is out of range");
  o.ids = (int)ids;
  o.cams = (int)cams;
  o.per_cam = (int)per_cam;
  o.height = (int)height;
  o.width = (int)width;
  o.seed = (uint64_t)seed;
  o.difficulty = difficulty;
  o.train_frac = train_frac;
  o.gain = gain;
  o.cast = cast;
  if (preview) {
    int rc = ctx->rank == 0 ? slr_synth_preview(&o, (int)rows, preview) : 0;
    SLR_TRY(slr_agree(ctx->world, rc));
    slr_info("preview written to %s", preview);
  }
  if (npos) {
    double t0 = slr_now();
    SLR_TRY(slr_synth_write(&o, pos[0], ctx->world));
    slr_info("%s domain written to %s in %.1f s: %d identities, %d cameras, %d images each per "
             "camera, %dx%d",
             style, pos[0], slr_now() - t0, o.ids, o.cams, o.per_cam, o.height, o.width);
  }
  return 0;
}
