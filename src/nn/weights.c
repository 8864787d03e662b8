/* Model weights in HDF5 under PyTorch's state_dict names: one dataset per
 * key under /model with PyTorch's shape (num_batches_tracked as an int64
 * scalar), and root attributes that describe the model (arch, width,
 * last_stride, pool, gem_p, neck, feat_dim, num_classes). Loading checks
 * every key and shape and names the key at fault. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/io.h"
#include "slr/nn.h"

static void shape_str(char *buf, size_t len, int ndims, const int64_t *dims) {
  size_t o = (size_t)snprintf(buf, len, "(");
  for (int i = 0; i < ndims && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)dims[i]);
  if (o < len) snprintf(buf + o, len - o, "%s)", ndims == 1 ? "," : "");
}

int slr_model_load(slr_model *m, MPI_Comm comm, const char *path, unsigned flags) {
  slr_h5 f;
  SLR_TRY(slr_h5_open(&f, comm, path, "weights", 1, SLR_H5_FOREIGN_OK));
  int rc = 0;
  for (int i = 0; i < m->ntensors && !rc; i++) {
    const slr_tensor *t = &m->tensors[i];
    char key[128], want[96], got[96];
    snprintf(key, sizeof key, "/model/%s", t->name);
    shape_str(want, sizeof want, t->ndims, t->shape);
    int ex = slr_h5_exists(&f, key);
    if (ex < 0) {
      rc = SLR_ERR_INPUT;
      break;
    }
    if (!ex) {
      if ((flags & SLR_LOAD_BACKBONE_ONLY) && t->head) continue;
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: key %s is missing (the model expects shape %s)", path,
                    t->name, want);
      break;
    }
    int nd = 0, type = 0;
    int64_t dims[SLR_H5_MAXDIMS];
    rc = slr_h5_shape(&f, key, &nd, dims, &type);
    if (rc) break;
    int same = nd == t->ndims;
    for (int k = 0; same && k < nd; k++) same = dims[k] == t->shape[k];
    if (!same) {
      shape_str(got, sizeof got, nd, dims);
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: key %s has shape %s in the file, the model expects %s",
                    path, t->name, got, want);
      break;
    }
    void *buf = NULL;
    int64_t n = 0;
    rc = slr_h5_read_all(&f, key, t->kind == SLR_TENSOR_COUNT ? SLR_I64 : SLR_F32, &buf, &n);
    if (rc) break;
    /* every rank reads the same values, so every rank stops here alike */
    int64_t bad = t->kind == SLR_TENSOR_COUNT ? -1 : slr_first_nonfinite_f32(buf, n);
    if (bad >= 0) {
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: key %s has a non-finite value (%g) at element %lld",
                    path, t->name, (double)((float *)buf)[bad], (long long)bad);
      free(buf);
      break;
    }
    if (t->kind == SLR_TENSOR_COUNT)
      m->counts[t->offset] = *(int64_t *)buf;
    else
      memcpy((t->kind == SLR_TENSOR_PARAM ? m->params : m->buffers) + t->offset, buf,
             sizeof(float) * (size_t)t->numel);
    free(buf);
  }
  rc = slr_agree(comm, rc);
  int crc = slr_h5_close(&f);
  return rc ? rc : crc;
}

/* an int64 scalar dataset, written by rank 0 (every rank calls) */
static int write_scalar_i64(slr_h5 *f, const char *name, int64_t v) {
  return slr_h5_write_scalar_i64(f, name, v);
}

int slr_model_desc_write(slr_h5 *f, const char *obj, const slr_model_config *c, int feat_dim) {
  char arch[64];
  snprintf(arch, sizeof arch, "%s", slr_arch_name(c->arch));
  int rc = slr_h5_attr_set_str(f, obj, "arch", arch);
  if (!rc) rc = slr_h5_attr_set_i64(f, obj, "width", c->width);
  if (!rc) rc = slr_h5_attr_set_i64(f, obj, "last_stride", c->last_stride);
  if (!rc) rc = slr_h5_attr_set_str(f, obj, "pool", c->pool == SLR_POOL_GEM ? "gem" : "avg");
  if (!rc) rc = slr_h5_attr_set_f64(f, obj, "gem_p", c->gem_p);
  if (!rc) rc = slr_h5_attr_set_i64(f, obj, "neck", c->neck ? 1 : 0);
  if (!rc) rc = slr_h5_attr_set_i64(f, obj, "feat_dim", feat_dim);
  if (!rc) rc = slr_h5_attr_set_i64(f, obj, "num_classes", c->num_classes);
  return rc;
}

/* an integer attribute that must lie in [lo, hi] */
static int attr_i64_range(slr_h5 *f, const char *obj, const char *name, int64_t lo, int64_t hi,
                          int64_t *v) {
  SLR_TRY(slr_h5_attr_get_i64(f, obj, name, v));
  if (*v < lo || *v > hi)
    return SLR_FAIL(SLR_ERR_INPUT, "%s: attribute %s = %lld is out of range [%lld, %lld]",
                    f->path, name, (long long)*v, (long long)lo, (long long)hi);
  return 0;
}

/* The architecture: the attribute, or the structure of the keys (a weights
 * file without attributes). Collective. */
static int desc_arch(slr_h5 *f, const char *obj, slr_model_desc *d) {
  const char *path = f->path;
  if (slr_h5_attr_exists(f, obj, "arch")) {
    char name[64];
    SLR_TRY(slr_h5_attr_get_str(f, obj, "arch", name, sizeof name));
    if (slr_arch_parse(name, &d->cfg.arch))
      return SLR_FAIL(SLR_ERR_INPUT, "%s: attribute arch = \"%s\" is not resnet18, resnet34, "
                      "resnet50 or resnet50_ibn_a", path, name);
    d->known |= SLR_DESC_ARCH, d->recorded |= SLR_DESC_ARCH;
  } else if (!strcmp(obj, "/")) {
    int ibn = slr_h5_exists(f, "/model/layer1.0.bn1.IN.weight");
    int bottleneck = slr_h5_exists(f, "/model/layer1.0.conv3.weight");
    int deep = slr_h5_exists(f, "/model/layer3.2.conv1.weight");
    int deeper = slr_h5_exists(f, "/model/layer3.6.conv1.weight");
    int stem = slr_h5_exists(f, "/model/conv1.weight");
    if (ibn < 0 || bottleneck < 0 || deep < 0 || deeper < 0 || stem < 0) return SLR_ERR_INPUT;
    if (!stem)
      return SLR_FAIL(SLR_ERR_INPUT, "%s: no /model/conv1.weight: not a ResNet weights file "
                      "(a training checkpoint? use slr export)", path);
    if (deeper)
      return SLR_FAIL(SLR_ERR_INPUT, "%s: a ResNet deeper than 50 layers (layer3.6 exists); "
                      "slr has resnet18, resnet34, resnet50 and resnet50_ibn_a", path);
    d->cfg.arch = ibn ? SLR_ARCH_RESNET50_IBN_A : bottleneck ? SLR_ARCH_RESNET50
                  : deep ? SLR_ARCH_RESNET34 : SLR_ARCH_RESNET18;
    d->known |= SLR_DESC_ARCH;
  }
  return 0;
}

/* The classes: the attribute, or the classifier's rows. Collective. */
static int desc_classes(slr_h5 *f, const char *obj, slr_model_desc *d) {
  const char *path = f->path;
  char key[160];
  int64_t v;
  int ex;
  if (slr_h5_attr_exists(f, obj, "num_classes")) {
    SLR_TRY(attr_i64_range(f, obj, "num_classes", 0, INT32_MAX, &v));
    d->cfg.num_classes = (int)v;
    d->known |= SLR_DESC_CLASSES, d->recorded |= SLR_DESC_CLASSES;
  } else if (!strcmp(obj, "/")) {
    snprintf(key, sizeof key, "/model/classifier.weight");
    ex = slr_h5_exists(f, key);
    if (ex < 0) return SLR_ERR_INPUT;
    if (ex) {
      int nd = 0, type = 0;
      int64_t dims[SLR_H5_MAXDIMS];
      SLR_TRY(slr_h5_shape(f, key, &nd, dims, &type));
      if (nd != 2 || dims[0] < 1 || dims[0] > INT32_MAX)
        return SLR_FAIL(SLR_ERR_INPUT, "%s: /model/classifier.weight is not (K, D)", path);
      d->cfg.num_classes = (int)dims[0];
    }
    d->known |= SLR_DESC_CLASSES;
  }
  return 0;
}

int slr_model_desc_read(slr_h5 *f, const char *obj, slr_model_desc *d) {
  memset(d, 0, sizeof *d);
  slr_model_config_default(&d->cfg, SLR_ARCH_RESNET50);
  const char *path = f->path;
  int rc = 0, ex;
  int64_t v;
  SLR_TRY(desc_arch(f, obj, d));
  if (slr_h5_attr_exists(f, obj, "width")) {
    SLR_TRY(attr_i64_range(f, obj, "width", 1, 4096, &v));
    d->cfg.width = (int)v;
    d->known |= SLR_DESC_WIDTH, d->recorded |= SLR_DESC_WIDTH;
  } else if (!strcmp(obj, "/")) {
    int nd = 0, type = 0;
    int64_t dims[SLR_H5_MAXDIMS];
    SLR_TRY(slr_h5_shape(f, "/model/conv1.weight", &nd, dims, &type));
    if (nd != 4 || dims[0] < 1 || dims[0] > 4096)
      return SLR_FAIL(SLR_ERR_INPUT, "%s: /model/conv1.weight is not (C, 3, 7, 7)", path);
    d->cfg.width = (int)dims[0];
    d->known |= SLR_DESC_WIDTH;
  }
  if (slr_h5_attr_exists(f, obj, "last_stride")) {
    SLR_TRY(attr_i64_range(f, obj, "last_stride", 1, 2, &v));
    d->cfg.last_stride = (int)v;
    d->known |= SLR_DESC_LAST_STRIDE, d->recorded |= SLR_DESC_LAST_STRIDE;
  }
  if (slr_h5_attr_exists(f, obj, "pool")) {
    char name[32];
    SLR_TRY(slr_h5_attr_get_str(f, obj, "pool", name, sizeof name));
    if (strcmp(name, "avg") && strcmp(name, "gem"))
      return SLR_FAIL(SLR_ERR_INPUT, "%s: attribute pool = \"%s\" is not avg or gem", path, name);
    d->cfg.pool = !strcmp(name, "gem") ? SLR_POOL_GEM : SLR_POOL_AVG;
    d->known |= SLR_DESC_POOL, d->recorded |= SLR_DESC_POOL;
  } else if (!strcmp(obj, "/")) {
    ex = slr_h5_exists(f, "/model/pool.p");
    if (ex < 0) return SLR_ERR_INPUT;
    d->cfg.pool = ex ? SLR_POOL_GEM : SLR_POOL_AVG;
    d->known |= SLR_DESC_POOL;
  }
  if (slr_h5_attr_exists(f, obj, "gem_p")) {
    double p;
    SLR_TRY(slr_h5_attr_get_f64(f, obj, "gem_p", &p));
    d->cfg.gem_p = (float)p;
  }
  if (slr_h5_attr_exists(f, obj, "neck")) {
    SLR_TRY(attr_i64_range(f, obj, "neck", 0, 1, &v));
    d->cfg.neck = (int)v;
    d->known |= SLR_DESC_NECK, d->recorded |= SLR_DESC_NECK;
  } else if (!strcmp(obj, "/")) {
    ex = slr_h5_exists(f, "/model/neck.weight");
    if (ex < 0) return SLR_ERR_INPUT;
    d->cfg.neck = ex;
    d->known |= SLR_DESC_NECK;
  }
  SLR_TRY(desc_classes(f, obj, d));
  if (slr_h5_attr_exists(f, obj, "feat_dim")) {
    SLR_TRY(attr_i64_range(f, obj, "feat_dim", 1, INT32_MAX, &v));
    d->feat_dim = (int)v;
  }
  return rc;
}

int slr_model_describe(MPI_Comm comm, const char *path, slr_model_desc *d) {
  slr_h5 f;
  SLR_TRY(slr_h5_open(&f, comm, path, "weights", 1, SLR_H5_FOREIGN_OK));
  int rc = slr_agree(comm, slr_model_desc_read(&f, "/", d));
  int crc = slr_h5_close(&f);
  return rc ? rc : crc;
}

int slr_model_save(const slr_model *m, MPI_Comm comm, const char *path) {
  slr_h5 f;
  SLR_TRY(slr_h5_create(&f, comm, path, "weights", 1));
  int rc = slr_model_desc_write(&f, "/", &m->cfg, m->feat_dim);
  for (int i = 0; i < m->ntensors && !rc; i++) {
    const slr_tensor *t = &m->tensors[i];
    char key[128];
    snprintf(key, sizeof key, "/model/%s", t->name);
    if (t->kind == SLR_TENSOR_COUNT)
      rc = slr_agree(comm, write_scalar_i64(&f, key, m->counts[t->offset]));
    else
      rc = slr_h5_write_all(&f, key, SLR_F32, t->ndims, t->shape,
                            (t->kind == SLR_TENSOR_PARAM ? m->params : m->buffers) + t->offset);
  }
  if (rc) {
    slr_h5_abort(&f);
    return rc;
  }
  return slr_h5_commit(&f);
}
