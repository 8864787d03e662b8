/* The model of a command that reads a weights file: taken from the file's
 * description (slr_model_describe); the command's model flags may only
 * confirm it, and a value that differs is an error naming both. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "slr/nn.h"

static const char *pool_name(slr_pool_kind p) { return p == SLR_POOL_GEM ? "gem" : "avg"; }

int slr_cli_model_from_file(const slr_command *cmd, MPI_Comm comm, const char *path,
                            const slr_cli_model_flags *fl, slr_model_config *cfg,
                            int *feat_dim) {
  const char *name = cmd->name;
  slr_arch a = SLR_ARCH_RESNET50;
  slr_pool_kind p = SLR_POOL_AVG;
  /* the flags' own values first: a usage error needs no file */
  if (fl && fl->arch && slr_arch_parse(fl->arch, &a))
    return slr_cli_usage_error(cmd, "--arch %s: not resnet18, resnet34, resnet50 or resnet50_ibn_a",
                               fl->arch);
  if (fl && fl->pool) {
    if (strcmp(fl->pool, "avg") && strcmp(fl->pool, "gem"))
      return slr_cli_usage_error(cmd, "--pool %s: not avg or gem", fl->pool);
    p = !strcmp(fl->pool, "gem") ? SLR_POOL_GEM : SLR_POOL_AVG;
  }
  if (fl && fl->last_stride && fl->last_stride != 1 && fl->last_stride != 2)
    return slr_cli_usage_error(cmd, "--last-stride %lld: not 1 or 2", (long long)fl->last_stride);
  if (fl && fl->width && (fl->width < 1 || fl->width > 4096))
    return slr_cli_usage_error(cmd, "--width %lld: out of range [1, 4096]", (long long)fl->width);

  slr_model_desc d;
  SLR_TRY(slr_model_describe(comm, path, &d));
  if (fl && fl->arch) {
    if ((d.known & SLR_DESC_ARCH) && a != d.cfg.arch)
      return SLR_FAIL(SLR_ERR_INPUT, "slr %s: --arch %s, but %s holds a %s", name, fl->arch,
                      path, slr_arch_name(d.cfg.arch));
    d.cfg.arch = a, d.known |= SLR_DESC_ARCH;
  }
  if (fl && fl->pool) {
    if ((d.known & SLR_DESC_POOL) && p != d.cfg.pool)
      return SLR_FAIL(SLR_ERR_INPUT, "slr %s: --pool %s, but %s holds a model with %s pooling",
                      name, fl->pool, path, pool_name(d.cfg.pool));
    d.cfg.pool = p, d.known |= SLR_DESC_POOL;
  }
  if (fl && fl->last_stride) {
    if ((d.known & SLR_DESC_LAST_STRIDE) && fl->last_stride != d.cfg.last_stride)
      return SLR_FAIL(SLR_ERR_INPUT, "slr %s: --last-stride %lld, but %s holds a model with last "
                      "stride %d", name, (long long)fl->last_stride, path, d.cfg.last_stride);
    d.cfg.last_stride = (int)fl->last_stride, d.known |= SLR_DESC_LAST_STRIDE;
  }
  if (fl && fl->width) {
    if ((d.known & SLR_DESC_WIDTH) && fl->width != d.cfg.width)
      return SLR_FAIL(SLR_ERR_INPUT, "slr %s: --width %lld, but %s holds a model of width %d",
                      name, (long long)fl->width, path, d.cfg.width);
    d.cfg.width = (int)fl->width, d.known |= SLR_DESC_WIDTH;
  }
  if (!(d.known & SLR_DESC_ARCH))
    return SLR_FAIL(SLR_ERR_INPUT, "%s does not say its architecture: pass --arch", path);
  if (!(d.known & SLR_DESC_LAST_STRIDE))
    return SLR_FAIL(SLR_ERR_INPUT,
                    "%s does not record last_stride (a file not written by slr): pass "
                    "--last-stride 2 for torchvision's ImageNet models, 1 for Re-ID models, "
                    "or convert it with tools/torch2h5.py --last-stride S", path);
  *cfg = d.cfg;
  if (feat_dim) *feat_dim = d.feat_dim;
  return 0;
}

void slr_cli_model_describe(const slr_model_config *c, char *buf, size_t len) {
  snprintf(buf, len, "%s, width %d, last stride %d, %s pooling, %s", slr_arch_name(c->arch),
           c->width, c->last_stride, pool_name(c->pool), c->neck ? "BNNeck" : "no neck");
}
