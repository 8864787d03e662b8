/* Model weights in HDF5 under PyTorch's state_dict names: one dataset per
 * key under /model with PyTorch's shape (num_batches_tracked as an int64
 * scalar). Loading checks every key and shape and names the key at fault. */
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

int slr_model_save(const slr_model *m, MPI_Comm comm, const char *path) {
  slr_h5 f;
  SLR_TRY(slr_h5_create(&f, comm, path, "weights", 1));
  int rc = 0;
  char arch[64];
  snprintf(arch, sizeof arch, "%s", slr_arch_name(m->cfg.arch));
  rc = slr_h5_attr_set_str(&f, "/", "arch", arch);
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/", "width", m->cfg.width);
  if (!rc) rc = slr_h5_attr_set_i64(&f, "/", "last_stride", m->cfg.last_stride);
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
