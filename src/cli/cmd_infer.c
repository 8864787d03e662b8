/* slr infer: features of a batch of images with a ResNet in evaluation
 * mode. Input /images (N, 3, H, W) float32; output /features (N, D)
 * float32. Rows are sharded over the ranks; each rank runs its own rows. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "slr/dist.h"
#include "slr/io.h"
#include "slr/nn.h"

static int run(slr_ctx *ctx, int argc, char **argv);

const slr_command slr_cmd_infer = {
    "infer", "features of images (/images N x 3 x H x W) with a ResNet in evaluation mode",
    "--weights W.h5 --arch ARCH --input X.h5 --out F.h5 [--last-stride 1|2] [--pool avg|gem] "
    "[--output pooled|neck|normalized] [--width 64] [--batch 64] [--threads T]",
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
  const char *weights = NULL, *arch = NULL, *input = NULL, *output = NULL;
  const char *pool = "avg", *what = "normalized";
  int64_t last_stride = 1, width = 64, batch = 64, threads = 0;
  const slr_opt opts[] = {
      {"weights", OPT_STR, &weights, "W.h5", "weight file (PyTorch names under /model)"},
      {"arch", OPT_STR, &arch, "ARCH", "resnet18, resnet34, resnet50, resnet50_ibn_a"},
      {"input", OPT_STR, &input, "X.h5", "images: /images (N, 3, H, W) float32"},
      {"out", OPT_STR, &output, "F.h5", "features: /features (N, D) float32"},
      {"last-stride", OPT_INT, &last_stride, "S", "stride of layer4: 1 (default) or 2"},
      {"pool", OPT_STR, &pool, "avg|gem", "pooling (default avg)"},
      {"output", OPT_STR, &what, "KIND",
       "pooled, neck or normalized (L2-normalised neck feature; default)"},
      {"width", OPT_INT, &width, "C", "stem channels (64 = torchvision)"},
      {"batch", OPT_INT, &batch, "B", "images per forward pass (default 64)"},
      {"threads", OPT_INT, &threads, "T", "threads per rank (default: cores / ranks on the node)"},
      {NULL, 0, NULL, NULL, NULL}};
  int npos = 0;
  int rc = slr_parse_options(&slr_cmd_infer, opts, argc, argv, NULL, 0, &npos);
  if (rc) return rc;
  if (!weights || !arch || !input || !output)
    return SLR_FAIL(SLR_ERR_USAGE, "infer: --weights, --arch, --input and --out are required");
  slr_model_config cfg;
  slr_arch a;
  slr_pool_kind pk;
  SLR_TRY(slr_arch_parse(arch, &a));
  SLR_TRY(slr_pool_parse(pool, &pk));
  int mode = !strcmp(what, "pooled") ? 0 : !strcmp(what, "neck") ? 1 : !strcmp(what, "normalized") ? 2 : -1;
  if (mode < 0)
    return SLR_FAIL(SLR_ERR_USAGE, "infer: --output %s (pooled, neck, normalized)", what);
  if (last_stride != 1 && last_stride != 2)
    return SLR_FAIL(SLR_ERR_USAGE, "infer: --last-stride %lld (1 or 2)", (long long)last_stride);
  if (width < 1 || width > 4096 || batch < 1 || batch > 65536)
    return SLR_FAIL(SLR_ERR_USAGE, "infer: --width %lld / --batch %lld out of range",
                    (long long)width, (long long)batch);
  if (threads < 0)
    return SLR_FAIL(SLR_ERR_USAGE, "infer: --threads %lld must be >= 0 (0: the default)",
                    (long long)threads);
  if (threads > 0) slr_threads_set((int)threads, ctx->node_size);
  slr_model_config_default(&cfg, a);
  cfg.width = (int)width, cfg.last_stride = (int)last_stride, cfg.pool = pk;
  cfg.neck = mode != 0; /* pooled features need no neck keys in the file */
  slr_model m;
  SLR_TRY(slr_agree(ctx->world, slr_model_init(&m, &cfg, 0)));
  rc = slr_model_load(&m, ctx->world, weights, 0);
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
    slr_info("infer: %s (width %d, last stride %d, %s pool) on %lld images %lldx%lld, %d ranks",
             arch, cfg.width, cfg.last_stride, pool, (long long)dims[0], (long long)dims[2],
             (long long)dims[3], ctx->size);
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
