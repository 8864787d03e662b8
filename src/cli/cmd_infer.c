/* slr infer: features of a batch of images with a ResNet in evaluation
 * mode; the model is the one the weights file describes. Input /images
 * (N, 3, H, W) float32; output /features (N, D) float32. Rows are sharded
 * over the ranks; each rank runs its own rows. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "slr/dist.h"
#include "slr/io.h"
#include "slr/nn.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_infer = {
    "infer", "features of images (/images N x 3 x H x W) with the model a weights file describes",
    "--weights W.h5 --input X.h5 --out F.h5 [--output pooled|neck|normalized] [--batch B] "
    "[--threads T] [--arch ARCH] [--pool avg|gem] [--last-stride 1|2] [--width C]",
    run, 0};

static int infer(slr_ctx *ctx, slr_model *m, slr_h5 *in, slr_h5 *out, int64_t N, int H, int W,
                 int batch, int mode) {
  int64_t row0, nrows;
  slr_shard_rows(N, ctx->rank, ctx->size, &row0, &nrows);
  int D = m->feat_dim;
  float *img = NULL, *feat = NULL, *nrm = NULL;
  size_t per = (size_t)3 * H * W;
  int rc = 0;
  img = malloc(sizeof(float) * per * (size_t)batch);
  feat = malloc(sizeof(float) * (size_t)D * (size_t)(nrows > 0 ? nrows : 1));
  nrm = malloc(sizeof(float) * (size_t)batch);
  if (!img || !feat || !nrm) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for %lld rows", (long long)nrows);
  if (!rc) rc = slr_model_plan(m, batch, H, W, 0);
  rc = slr_agree(ctx->world, rc);
  /* every rank calls the collective reads the same number of times */
  int64_t most = (N + ctx->size - 1) / ctx->size;
  int64_t nbatches = (most + batch - 1) / batch;
  slr_progress p;
  slr_progress_begin(&p, "infer", N, "img", 0);
  for (int64_t b = 0; b < nbatches && !rc; b++) {
    int64_t r0 = b * batch, n = nrows - r0;
    if (n < 0) n = 0;
    if (n > batch) n = batch;
    rc = slr_h5_read_rows(in, "/images", SLR_F32, row0 + (n ? r0 : 0), n, img);
    if (rc) break;
    int64_t bad = slr_first_nonfinite_f32(img, n * (int64_t)per);
    if (bad >= 0)
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: /images[%lld] has a non-finite value (%g)", in->path,
                    (long long)(row0 + r0 + bad / (int64_t)per), (double)img[bad]);
    if (n > 0 && !rc) {
      rc = slr_model_forward(m, img, (int)n, 0, MPI_COMM_NULL);
      if (!rc) {
        const float *f = mode == 0 ? slr_model_pooled(m) : slr_model_neck(m);
        float *dst = feat + r0 * D;
        if (mode == 2)
          slr_l2norm_forward(dst, nrm, f, (int)n, D, 1e-12f);
        else
          memcpy(dst, f, sizeof(float) * (size_t)n * D);
      }
    }
    rc = slr_agree(ctx->world, rc);
    slr_progress_update(&p, (b + 1) * batch * ctx->size < N ? (b + 1) * batch * ctx->size : N);
  }
  slr_progress_end(&p);
  if (!rc) rc = slr_check_finite_f32(ctx->world, feat, nrows * D, row0, D, "infer: the features");
  if (!rc) {
    int64_t dims[2] = {N, D};
    rc = slr_h5_write_rows(out, "/features", SLR_F32, 2, dims, row0, nrows, feat);
  }
  free(img), free(feat), free(nrm);
  return rc;
}

static int run(slr_ctx *ctx, int argc, char **argv) {
  const char *weights = NULL, *input = NULL, *output = NULL, *what = "normalized";
  slr_cli_model_flags fl = {0};
  int64_t batch = 64, threads = 0;
  const slr_opt opts[] = {
      {"weights", OPT_STR, &weights, "W.h5",
       "weights file (PyTorch names under /model; its attributes describe the model)"},
      {"input", OPT_STR, &input, "X.h5", "images: /images (N, 3, H, W) float32"},
      {"out", OPT_STR, &output, "F.h5", "features: /features (N, D) float32"},
      {"output", OPT_STR, &what, "KIND",
       "pooled, neck or normalized (L2-normalised neck feature; default)"},
      {"batch", OPT_INT, &batch, "B", "images per forward pass (default 64)"},
      {"threads", OPT_INT, &threads, "T", "threads per rank (default: cores / ranks on the node)"},
      {"arch", OPT_STR, &fl.arch, "ARCH",
       "confirm: resnet18, resnet34, resnet50, resnet50_ibn_a (default: the file's)"},
      {"pool", OPT_STR, &fl.pool, "avg|gem", "confirm the pooling (default: the file's)"},
      {"last-stride", OPT_INT, &fl.last_stride, "1|2",
       "confirm the stride of layer4 (default: the file's; needed for files from other tools)"},
      {"width", OPT_INT, &fl.width, "C", "confirm the stem channels (default: the file's)"},
      {NULL, 0, NULL, NULL, NULL}};
  int npos = 0;
  int rc = slr_parse_options(&slr_cmd_infer, opts, argc, argv, NULL, 0, &npos);
  if (rc) return rc;
  if (!weights || !input || !output)
    return slr_cli_usage_error(&slr_cmd_infer, "--weights, --input and --out are required");
  int mode = !strcmp(what, "pooled") ? 0 : !strcmp(what, "neck") ? 1 : !strcmp(what, "normalized") ? 2 : -1;
  if (mode < 0)
    return slr_cli_usage_error(&slr_cmd_infer, "--output %s: not pooled, neck or normalized", what);
  if (batch < 1 || batch > 65536)
    return slr_cli_usage_error(&slr_cmd_infer, "--batch %lld: out of range [1, 65536]",
                               (long long)batch);
  if (threads < 0) return slr_cli_usage_error(&slr_cmd_infer, "--threads %lld: negative", (long long)threads);
  if (threads > 0) slr_threads_set((int)threads, ctx->node_size);
  slr_model_config cfg;
  int file_dim = 0;
  SLR_TRY(slr_cli_model_from_file(&slr_cmd_infer, ctx->world, weights, &fl, &cfg, &file_dim));
  cfg.num_classes = 0; /* features only: the classifier, if the file has one, is not needed */
  if (mode == 0) cfg.neck = 0; /* pooled features need no neck keys */
  slr_model m;
  SLR_TRY(slr_agree(ctx->world, slr_model_init(&m, &cfg, 0)));
  rc = slr_model_load(&m, ctx->world, weights, 0);
  if (!rc && file_dim && file_dim != m.feat_dim)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: attribute feat_dim = %d, but its model gives %d", weights,
                  file_dim, m.feat_dim);
  slr_h5 in, out;
  int in_open = 0;
  if (!rc) {
    rc = slr_h5_open(&in, ctx->world, input, NULL, 0, SLR_H5_FOREIGN_OK);
    in_open = !rc;
  }
  int nd = 0, type = 0;
  int64_t dims[SLR_H5_MAXDIMS];
  if (!rc) rc = slr_h5_shape(&in, "/images", &nd, dims, &type);
  if (!rc && (nd != 4 || dims[1] != 3 || dims[2] < 32 || dims[3] < 32))
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: /images must be (N, 3, H, W) with H, W >= 32", input);
  if (!rc && dims[0] < 1) rc = SLR_FAIL(SLR_ERR_INPUT, "%s: /images is empty", input);
  rc = slr_agree(ctx->world, rc);
  if (!rc) {
    char desc[160];
    slr_cli_model_describe(&cfg, desc, sizeof desc);
    slr_info("infer: %s on %lld images %lldx%lld, %d ranks", desc, (long long)dims[0],
             (long long)dims[2], (long long)dims[3], ctx->size);
    rc = slr_h5_create(&out, ctx->world, output, "features", 1);
    if (!rc) {
      double t0 = slr_now();
      rc = infer(ctx, &m, &in, &out, dims[0], (int)dims[2], (int)dims[3], (int)batch, mode);
      if (!rc) rc = slr_h5_attr_set_str(&out, "/", "output", what);
      if (rc) {
        slr_h5_abort(&out);
      } else {
        rc = slr_h5_commit(&out);
        double dt = slr_now() - t0;
        slr_info("infer: %lld features of dimension %d in %.2f s (%.1f images/s) -> %s",
                 (long long)dims[0], m.feat_dim, dt, (double)dims[0] / dt, output);
      }
    }
  }
  if (in_open) slr_h5_close(&in);
  slr_model_free(&m);
  return rc;
}
