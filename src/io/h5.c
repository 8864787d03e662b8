/* Parallel HDF5: files opened with the mpio driver, collective transfers of
 * row-sharded arrays, fixed-length string arrays, attributes, format tags
 * and the atomic commit (NAME.tmp, close, fsync, rename). */
#include "slr/io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG_ATTR "slr_format"
#define VERSION_ATTR "slr_format_version"

const char *slr_dtype_name(slr_dtype t) {
  static const char *names[] = {"float32", "float64", "int32", "int64", "uint8"};
  return (unsigned)t < SLR_DTYPE_COUNT ? names[t] : "unknown";
}

size_t slr_dtype_size(slr_dtype t) {
  static const size_t sizes[] = {4, 8, 4, 8, 1};
  return (unsigned)t < SLR_DTYPE_COUNT ? sizes[t] : 0;
}

static hid_t mem_type(slr_dtype t) {
  switch (t) {
  case SLR_F32: return H5T_NATIVE_FLOAT;
  case SLR_F64: return H5T_NATIVE_DOUBLE;
  case SLR_I32: return H5T_NATIVE_INT32;
  case SLR_I64: return H5T_NATIVE_INT64;
  case SLR_U8: return H5T_NATIVE_UINT8;
  default: return -1;
  }
}

static hid_t file_type(slr_dtype t) {
  switch (t) {
  case SLR_F32: return H5T_IEEE_F32LE;
  case SLR_F64: return H5T_IEEE_F64LE;
  case SLR_I32: return H5T_STD_I32LE;
  case SLR_I64: return H5T_STD_I64LE;
  case SLR_U8: return H5T_STD_U8LE;
  default: return -1;
  }
}

static void h5_quiet(void) {
  static int done = 0;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    done = 1;
  }
}

static int open_props(MPI_Comm comm, hid_t *fapl) {
  *fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (*fapl < 0) return slr_error_hdf5("H5Pcreate", __FILE__, __LINE__);
  if (H5Pset_fapl_mpio(*fapl, comm, MPI_INFO_NULL) < 0 ||
      H5Pset_all_coll_metadata_ops(*fapl, 1) < 0 || H5Pset_coll_metadata_write(*fapl, 1) < 0) {
    H5Pclose(*fapl);
    return slr_error_hdf5("H5Pset_fapl_mpio", __FILE__, __LINE__);
  }
  return 0;
}

static int init_common(slr_h5 *f, MPI_Comm comm, const char *path) {
  h5_quiet();
  memset(f, 0, sizeof *f);
  f->fid = -1;
  f->dxpl = -1;
  f->comm = comm;
  MPI_Comm_rank(comm, &f->rank);
  MPI_Comm_size(comm, &f->size);
  if (strlen(path) + 5 >= SLR_PATH_MAX) return SLR_FAIL(SLR_ERR, "path too long: %s", path);
  strcpy(f->path, path);
  snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp", path);
  f->dxpl = H5Pcreate(H5P_DATASET_XFER);
  if (f->dxpl < 0 || H5Pset_dxpl_mpio(f->dxpl, H5FD_MPIO_COLLECTIVE) < 0)
    return slr_error_hdf5("H5Pset_dxpl_mpio", __FILE__, __LINE__);
  return 0;
}

static void release(slr_h5 *f) {
  if (f->fid >= 0) H5Fclose(f->fid);
  if (f->dxpl >= 0) H5Pclose(f->dxpl);
  f->fid = -1;
  f->dxpl = -1;
}

int slr_h5_create(slr_h5 *f, MPI_Comm comm, const char *path, const char *format,
                  int version) {
  int rc = init_common(f, comm, path);
  rc = slr_agree(comm, rc);
  if (rc) {
    release(f);
    return rc;
  }
  hid_t fapl;
  rc = open_props(comm, &fapl);
  if (!rc) {
    f->fid = H5Fcreate(f->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f->fid < 0)
      rc = SLR_FAIL(SLR_ERR_INPUT, "cannot create %s (is the directory there and writable?)",
                    f->tmp_path);
  }
  rc = slr_agree(comm, rc);
  if (rc) {
    slr_h5_abort(f);
    return rc;
  }
  f->writing = 1;
  rc = slr_h5_attr_set_str(f, "/", TAG_ATTR, format);
  if (!rc) rc = slr_h5_attr_set_i64(f, "/", VERSION_ATTR, version);
  if (rc) slr_h5_abort(f);
  return rc;
}

static int fsync_path(const char *path, int dir) {
  int fd = open(path, dir ? (O_RDONLY | O_DIRECTORY) : O_RDWR);
  if (fd < 0) return -1;
  int r = fsync(fd);
  close(fd);
  return r;
}

int slr_h5_commit(slr_h5 *f) {
  if (!f->writing) return SLR_FAIL(SLR_ERR, "%s is not open for writing", f->path);
  int rc = 0;
  if (H5Fclose(f->fid) < 0) rc = slr_error_hdf5("H5Fclose", __FILE__, __LINE__);
  f->fid = -1;
  rc = slr_agree(f->comm, rc);
  if (rc) {
    slr_h5_abort(f);
    return rc;
  }
  if (f->rank == 0) {
    if (fsync_path(f->tmp_path, 0) != 0)
      rc = SLR_FAIL(SLR_ERR, "cannot fsync %s: %s", f->tmp_path, strerror(errno));
    else if (rename(f->tmp_path, f->path) != 0)
      rc = SLR_FAIL(SLR_ERR, "cannot rename %s to %s: %s", f->tmp_path, f->path,
                    strerror(errno));
    else {
      char dir[SLR_PATH_MAX];
      strcpy(dir, f->path);
      fsync_path(dirname(dir), 1);
    }
  }
  rc = slr_agree(f->comm, rc);
  f->writing = 0;
  if (rc && f->rank == 0) unlink(f->tmp_path);
  release(f);
  return rc;
}

void slr_h5_abort(slr_h5 *f) {
  if (f->fid >= 0) H5Fclose(f->fid);
  f->fid = -1;
  if (f->rank == 0 && f->tmp_path[0]) unlink(f->tmp_path);
  f->writing = 0;
  release(f);
}

int slr_h5_open(slr_h5 *f, MPI_Comm comm, const char *path, const char *format,
                int max_version, unsigned flags) {
  int rc = init_common(f, comm, path);
  if (!rc && access(path, R_OK) != 0)
    rc = SLR_FAIL(SLR_ERR_INPUT, "cannot open %s: %s", path, strerror(errno));
  rc = slr_agree(comm, rc);
  if (rc) {
    release(f);
    return rc;
  }
  hid_t fapl;
  rc = open_props(comm, &fapl);
  if (!rc) {
    f->fid = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f->fid < 0) rc = SLR_FAIL(SLR_ERR_INPUT, "%s is not a readable HDF5 file", path);
  }
  rc = slr_agree(comm, rc);
  if (rc) {
    release(f);
    return rc;
  }
  if (format) {
    char tag[128] = "";
    int have = slr_h5_attr_exists(f, "/", TAG_ATTR);
    if (have < 0)
      rc = SLR_ERR;
    else if (!have) {
      if (!(flags & SLR_H5_FOREIGN_OK))
        rc = SLR_FAIL(SLR_ERR_INPUT,
                      "%s has no slr_format attribute: expected an slr \"%s\" file", path,
                      format);
    } else {
      rc = slr_h5_attr_get_str(f, "/", TAG_ATTR, tag, sizeof tag);
      int64_t ver = 0;
      if (!rc && strcmp(tag, format) != 0)
        rc = SLR_FAIL(SLR_ERR_INPUT, "%s has slr_format \"%s\", expected \"%s\"", path, tag,
                      format);
      if (!rc) rc = slr_h5_attr_get_i64(f, "/", VERSION_ATTR, &ver);
      if (!rc && (ver < 1 || ver > max_version))
        rc = SLR_FAIL(SLR_ERR_INPUT,
                      "%s has slr_format_version %lld; this slr reads \"%s\" versions 1 to %d",
                      path, (long long)ver, format, max_version);
    }
  }
  if (rc) release(f);
  return rc;
}

int slr_h5_close(slr_h5 *f) {
  int rc = 0;
  if (f->writing) return slr_h5_commit(f);
  if (f->fid >= 0 && H5Fclose(f->fid) < 0) rc = slr_error_hdf5("H5Fclose", __FILE__, __LINE__);
  f->fid = -1;
  release(f);
  return rc;
}

int slr_h5_exists(slr_h5 *f, const char *name) {
  /* walk the path so that a missing intermediate group is "no", not an error */
  char buf[1024];
  if (slr_strlcpy(buf, name, sizeof buf)) return 0;
  if (strcmp(buf, "/") == 0) return 1;
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (H5Lexists(f->fid, buf, H5P_DEFAULT) <= 0) return 0;
      if (c == '\0') break;
      *p = c;
    }
  }
  return 1;
}

static int type_of(hid_t tid) {
  H5T_class_t cls = H5Tget_class(tid);
  size_t sz = H5Tget_size(tid);
  if (cls == H5T_FLOAT) return sz == 4 ? SLR_F32 : sz == 8 ? SLR_F64 : -1;
  if (cls == H5T_INTEGER) {
    H5T_sign_t s = H5Tget_sign(tid);
    if (sz == 1 && s == H5T_SGN_NONE) return SLR_U8;
    if (sz == 4) return SLR_I32;
    if (sz == 8) return SLR_I64;
    if (sz == 1 || sz == 2) return SLR_I32; /* widened on read */
  }
  return -1;
}

int slr_h5_shape(slr_h5 *f, const char *name, int *ndims, int64_t dims[SLR_H5_MAXDIMS],
                 int *type) {
  if (!slr_h5_exists(f, name))
    return SLR_FAIL(SLR_ERR_INPUT, "%s: dataset %s is missing", f->path, name);
  hid_t d = H5Dopen2(f->fid, name, H5P_DEFAULT);
  if (d < 0) return SLR_FAIL(SLR_ERR_INPUT, "%s: %s is not a dataset", f->path, name);
  hid_t s = H5Dget_space(d), t = H5Dget_type(d);
  hsize_t hd[H5S_MAX_RANK];
  int n = H5Sget_simple_extent_dims(s, hd, NULL);
  int rc = 0;
  if (n < 0 || n > SLR_H5_MAXDIMS)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: dataset %s has %d dimensions (at most %d supported)",
                  f->path, name, n, SLR_H5_MAXDIMS);
  else {
    *ndims = n;
    for (int i = 0; i < n; i++) dims[i] = (int64_t)hd[i];
    if (type) *type = type_of(t);
  }
  H5Tclose(t);
  H5Sclose(s);
  H5Dclose(d);
  return rc;
}

/* create every missing group on the way to `name` (collective) */
static int make_parents(slr_h5 *f, const char *name) {
  char buf[1024];
  SLR_TRY(slr_strlcpy(buf, name, sizeof buf));
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (H5Lexists(f->fid, buf, H5P_DEFAULT) <= 0) {
      hid_t g = H5Gcreate2(f->fid, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (g < 0) return SLR_FAIL(SLR_ERR, "%s: cannot create group %s", f->tmp_path, buf);
      H5Gclose(g);
    }
    *p = '/';
  }
  return 0;
}

/* Collective write of rows [row0, row0+nrows) of a dataset of type `ftype`
 * (created here) from memory of type `mtype`. */
static int write_rows_typed(slr_h5 *f, const char *name, hid_t ftype, hid_t mtype, int ndims,
                            const int64_t dims[], int64_t row0, int64_t nrows,
                            const void *buf) {
  int rc = 0;
  if (!f->writing) rc = SLR_FAIL(SLR_ERR, "%s is not open for writing", f->path);
  if (!rc && (ndims < 1 || ndims > SLR_H5_MAXDIMS))
    rc = SLR_FAIL(SLR_ERR, "%s: %s: bad rank %d", f->path, name, ndims);
  if (!rc && (row0 < 0 || nrows < 0 || row0 + nrows > dims[0]))
    rc = SLR_FAIL(SLR_ERR, "%s: %s: rows [%lld, %lld) outside 0..%lld", f->path, name,
                  (long long)row0, (long long)(row0 + nrows), (long long)dims[0]);
  SLR_TRY(slr_agree(f->comm, rc));
  SLR_TRY(make_parents(f, name));
  hsize_t hd[SLR_H5_MAXDIMS], start[SLR_H5_MAXDIMS], count[SLR_H5_MAXDIMS];
  for (int i = 0; i < ndims; i++) {
    hd[i] = (hsize_t)dims[i];
    start[i] = 0;
    count[i] = (hsize_t)dims[i];
  }
  start[0] = (hsize_t)row0;
  count[0] = (hsize_t)nrows;
  hid_t fs = H5Screate_simple(ndims, hd, NULL);
  hid_t d = H5Dcreate2(f->fid, name, ftype, fs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (d < 0) {
    H5Sclose(fs);
    return SLR_FAIL(SLR_ERR, "%s: cannot create dataset %s (does it exist already?)",
                    f->tmp_path, name);
  }
  hid_t ms = H5Screate_simple(ndims, count, NULL);
  if (nrows > 0) {
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
  } else {
    H5Sselect_none(fs);
    H5Sselect_none(ms);
  }
  /* an empty dataset has nothing to transfer (every rank knows dims[0]) */
  herr_t w = dims[0] == 0 ? 0 : H5Dwrite(d, mtype, ms, fs, f->dxpl, buf);
  H5Sclose(ms);
  H5Sclose(fs);
  H5Dclose(d);
  if (w < 0) {
    char why[512];
    slr_error_hdf5("H5Dwrite", __FILE__, __LINE__);
    slr_strlcpy(why, slr_error_text(), sizeof why);
    rc = SLR_FAIL(SLR_ERR, "%s: cannot write dataset %s (%s)", f->tmp_path, name, why);
  }
  return slr_agree(f->comm, rc);
}

int slr_h5_write_rows(slr_h5 *f, const char *name, slr_dtype type, int ndims,
                      const int64_t dims[], int64_t row0, int64_t nrows, const void *buf) {
  if ((unsigned)type >= SLR_DTYPE_COUNT) return SLR_FAIL(SLR_ERR, "bad dtype %d", (int)type);
  return write_rows_typed(f, name, file_type(type), mem_type(type), ndims, dims, row0, nrows,
                          buf);
}

int slr_h5_write_all(slr_h5 *f, const char *name, slr_dtype type, int ndims,
                     const int64_t dims[], const void *buf) {
  int64_t n = f->rank == 0 ? dims[0] : 0;
  return slr_h5_write_rows(f, name, type, ndims, dims, 0, n, buf);
}

int slr_h5_read_rows(slr_h5 *f, const char *name, slr_dtype type, int64_t row0, int64_t nrows,
                     void *buf) {
  int ndims = 0, rc = 0;
  int64_t dims[SLR_H5_MAXDIMS];
  rc = slr_h5_shape(f, name, &ndims, dims, NULL);
  if (!rc && ndims < 1)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: dataset %s is a scalar, expected an array", f->path, name);
  if (!rc && (row0 < 0 || nrows < 0 || row0 + nrows > dims[0]))
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: %s has %lld rows, rows [%lld, %lld) asked", f->path, name,
                  (long long)dims[0], (long long)row0, (long long)(row0 + nrows));
  SLR_TRY(slr_agree(f->comm, rc));
  hid_t d = H5Dopen2(f->fid, name, H5P_DEFAULT);
  hid_t fs = H5Dget_space(d);
  hsize_t start[SLR_H5_MAXDIMS], count[SLR_H5_MAXDIMS];
  for (int i = 0; i < ndims; i++) {
    start[i] = 0;
    count[i] = (hsize_t)dims[i];
  }
  start[0] = (hsize_t)row0;
  count[0] = (hsize_t)nrows;
  hid_t ms = H5Screate_simple(ndims, count, NULL);
  if (nrows > 0) {
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
  } else {
    H5Sselect_none(fs);
    H5Sselect_none(ms);
  }
  herr_t r = dims[0] == 0 ? 0 : H5Dread(d, mem_type(type), ms, fs, f->dxpl, buf);
  H5Sclose(ms);
  H5Sclose(fs);
  H5Dclose(d);
  if (r < 0)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: cannot read dataset %s as %s", f->path, name,
                  slr_dtype_name(type));
  return slr_agree(f->comm, rc);
}

int slr_h5_read_all(slr_h5 *f, const char *name, slr_dtype type, void **out, int64_t *count) {
  int ndims = 0, rc;
  int64_t dims[SLR_H5_MAXDIMS];
  *out = NULL;
  rc = slr_agree(f->comm, slr_h5_shape(f, name, &ndims, dims, NULL));
  if (rc) return rc;
  int64_t n = 1;
  for (int i = 0; i < ndims; i++) n *= dims[i];
  void *buf = malloc((size_t)(n > 0 ? n : 1) * slr_dtype_size(type));
  rc = buf ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory reading %s:%s", f->path, name);
  SLR_TRY(slr_agree(f->comm, rc));
  /* every rank reads everything: collective with each selecting all rows */
  if (ndims == 0) {
    hid_t d = H5Dopen2(f->fid, name, H5P_DEFAULT);
    if (H5Dread(d, mem_type(type), H5S_ALL, H5S_ALL, f->dxpl, buf) < 0)
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: cannot read %s", f->path, name);
    H5Dclose(d);
    rc = slr_agree(f->comm, rc);
  } else {
    rc = slr_h5_read_rows(f, name, type, 0, dims[0], buf);
  }
  if (rc) {
    free(buf);
    return rc;
  }
  *out = buf;
  *count = n;
  return 0;
}

int slr_h5_write_strings(slr_h5 *f, const char *name, int64_t nglobal, int64_t row0,
                         int64_t nrows, const char *const *strs) {
  long long width = 1, w;
  for (int64_t i = 0; i < nrows; i++) {
    long long l = (long long)strlen(strs[i]);
    if (l > width) width = l;
  }
  SLR_MPI(MPI_Allreduce(&width, &w, 1, MPI_LONG_LONG, MPI_MAX, f->comm));
  char *packed = calloc((size_t)(nrows > 0 ? nrows : 1), (size_t)w);
  int rc = packed ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory writing %s", name);
  rc = slr_agree(f->comm, rc);
  if (rc) {
    free(packed);
    return rc;
  }
  for (int64_t i = 0; i < nrows; i++) memcpy(packed + i * w, strs[i], strlen(strs[i]));
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, (size_t)w);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  int64_t dims[1] = {nglobal};
  rc = write_rows_typed(f, name, t, t, 1, dims, row0, nrows, packed);
  H5Tclose(t);
  free(packed);
  return rc;
}

int slr_h5_read_strings(slr_h5 *f, const char *name, int64_t row0, int64_t nrows, char ***out) {
  int ndims = 0, rc;
  int64_t dims[SLR_H5_MAXDIMS];
  *out = NULL;
  rc = slr_h5_shape(f, name, &ndims, dims, NULL);
  if (!rc && ndims != 1)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: %s should be a 1-D string array, has %d dimensions",
                  f->path, name, ndims);
  if (!rc && (row0 < 0 || nrows < 0 || row0 + nrows > dims[0]))
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: %s has %lld rows, rows [%lld, %lld) asked", f->path, name,
                  (long long)dims[0], (long long)row0, (long long)(row0 + nrows));
  hid_t d = -1, ft = -1;
  if (!rc) {
    d = H5Dopen2(f->fid, name, H5P_DEFAULT);
    ft = H5Dget_type(d);
    if (H5Tget_class(ft) != H5T_STRING)
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: %s is not a string array", f->path, name);
  }
  rc = slr_agree(f->comm, rc);
  if (rc) {
    if (ft >= 0) H5Tclose(ft);
    if (d >= 0) H5Dclose(d);
    return rc;
  }
  int vlen = H5Tis_variable_str(ft) > 0;
  size_t width = vlen ? 0 : H5Tget_size(ft);
  hid_t fs = H5Dget_space(d);
  hsize_t start = (hsize_t)row0, count = (hsize_t)nrows;
  hid_t ms = H5Screate_simple(1, &count, NULL);
  if (nrows > 0)
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
  else {
    H5Sselect_none(fs);
    H5Sselect_none(ms);
  }
  hid_t mt = H5Tcopy(H5T_C_S1);
  H5Tset_cset(mt, H5Tget_cset(ft)); /* h5py writes UTF-8; no charset conversion exists */
  char **result = NULL;
  if (vlen) {
    H5Tset_size(mt, H5T_VARIABLE);
    char **tmp = calloc((size_t)(nrows > 0 ? nrows : 1), sizeof(char *));
    /* variable-length data is read with an independent transfer */
    if (!tmp || (dims[0] > 0 && H5Dread(d, mt, ms, fs, H5P_DEFAULT, tmp) < 0))
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: cannot read strings %s", f->path, name);
    size_t total = 0;
    for (int64_t i = 0; !rc && i < nrows; i++) total += (tmp[i] ? strlen(tmp[i]) : 0) + 1;
    if (!rc) {
      result = malloc((size_t)nrows * sizeof(char *) + total + 1);
      if (!result) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory reading %s", name);
    }
    if (!rc) {
      char *text = (char *)(result + nrows);
      for (int64_t i = 0; i < nrows; i++) {
        const char *s = tmp[i] ? tmp[i] : "";
        result[i] = text;
        strcpy(text, s);
        text += strlen(s) + 1;
      }
    }
    if (tmp && nrows > 0) H5Dvlen_reclaim(mt, ms, H5P_DEFAULT, tmp);
    free(tmp);
  } else {
    H5Tset_size(mt, width);
    H5Tset_strpad(mt, H5T_STR_NULLPAD);
    char *raw = malloc((size_t)(nrows > 0 ? nrows : 1) * width);
    result = malloc((size_t)nrows * sizeof(char *) + (size_t)nrows * (width + 1) + 1);
    if (!raw || !result) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory reading %s", name);
    if (dims[0] > 0 && H5Dread(d, mt, ms, fs, f->dxpl, raw ? raw : (void *)result) < 0 && !rc)
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: cannot read strings %s", f->path, name);
    if (!rc) {
      char *text = (char *)(result + nrows);
      for (int64_t i = 0; i < nrows; i++) {
        result[i] = text;
        memcpy(text, raw + (size_t)i * width, width);
        text[width] = '\0';
        text += width + 1;
      }
    }
    free(raw);
  }
  H5Tclose(mt);
  H5Sclose(ms);
  H5Sclose(fs);
  H5Tclose(ft);
  H5Dclose(d);
  rc = slr_agree(f->comm, rc);
  if (rc) {
    free(result);
    return rc;
  }
  *out = result;
  return 0;
}

/* ---- attributes ---------------------------------------------------------------- */

static int attr_write(slr_h5 *f, const char *obj, const char *name, hid_t type,
                      const void *v) {
  if (!f->writing) return SLR_FAIL(SLR_ERR, "%s is not open for writing", f->path);
  hid_t o = H5Oopen(f->fid, obj, H5P_DEFAULT);
  if (o < 0) return SLR_FAIL(SLR_ERR, "%s: no object %s for attribute %s", f->path, obj, name);
  if (H5Aexists(o, name) > 0) H5Adelete(o, name);
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(o, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
  int rc = 0;
  if (a < 0 || H5Awrite(a, type, v) < 0)
    rc = SLR_FAIL(SLR_ERR, "%s: cannot write attribute %s on %s", f->tmp_path, name, obj);
  if (a >= 0) H5Aclose(a);
  H5Sclose(s);
  H5Oclose(o);
  return rc;
}

int slr_h5_attr_set_i64(slr_h5 *f, const char *obj, const char *name, int64_t v) {
  return attr_write(f, obj, name, H5T_NATIVE_INT64, &v);
}

int slr_h5_attr_set_f64(slr_h5 *f, const char *obj, const char *name, double v) {
  return attr_write(f, obj, name, H5T_NATIVE_DOUBLE, &v);
}

int slr_h5_attr_set_str(slr_h5 *f, const char *obj, const char *name, const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(v) > 0 ? strlen(v) : 1);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  int rc = attr_write(f, obj, name, t, strlen(v) > 0 ? v : "");
  H5Tclose(t);
  return rc;
}

int slr_h5_attr_exists(slr_h5 *f, const char *obj, const char *name) {
  if (!slr_h5_exists(f, obj)) return 0;
  return H5Aexists_by_name(f->fid, obj, name, H5P_DEFAULT) > 0;
}

static int attr_open(slr_h5 *f, const char *obj, const char *name, hid_t *a) {
  if (!slr_h5_attr_exists(f, obj, name))
    return SLR_FAIL(SLR_ERR_INPUT, "%s: attribute %s is missing on %s", f->path, name, obj);
  *a = H5Aopen_by_name(f->fid, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  if (*a < 0) return SLR_FAIL(SLR_ERR_INPUT, "%s: cannot open attribute %s", f->path, name);
  return 0;
}

int slr_h5_attr_get_i64(slr_h5 *f, const char *obj, const char *name, int64_t *v) {
  hid_t a = -1;
  SLR_TRY(attr_open(f, obj, name, &a));
  hid_t t = H5Aget_type(a);
  int ok = H5Tget_class(t) == H5T_INTEGER && H5Aread(a, H5T_NATIVE_INT64, v) >= 0;
  H5Tclose(t);
  H5Aclose(a);
  return ok ? 0 : SLR_FAIL(SLR_ERR_INPUT, "%s: attribute %s is not an integer", f->path, name);
}

int slr_h5_attr_get_f64(slr_h5 *f, const char *obj, const char *name, double *v) {
  hid_t a = -1;
  SLR_TRY(attr_open(f, obj, name, &a));
  hid_t t = H5Aget_type(a);
  H5T_class_t c = H5Tget_class(t);
  int ok = (c == H5T_INTEGER || c == H5T_FLOAT) && H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0;
  H5Tclose(t);
  H5Aclose(a);
  return ok ? 0 : SLR_FAIL(SLR_ERR_INPUT, "%s: attribute %s is not a number", f->path, name);
}

int slr_h5_attr_get_str(slr_h5 *f, const char *obj, const char *name, char *buf, size_t len) {
  hid_t a = -1;
  SLR_TRY(attr_open(f, obj, name, &a));
  hid_t t = H5Aget_type(a);
  int rc = 0;
  if (H5Tget_class(t) != H5T_STRING) {
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: attribute %s is not a string", f->path, name);
  } else if (H5Tis_variable_str(t) > 0) {
    char *s = NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    if (H5Aread(a, mt, &s) < 0)
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: cannot read attribute %s", f->path, name);
    else
      snprintf(buf, len, "%s", s ? s : "");
    H5free_memory(s);
    H5Tclose(mt);
  } else {
    size_t sz = H5Tget_size(t);
    char *tmp = calloc(sz + 1, 1);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, sz);
    H5Tset_strpad(mt, H5T_STR_NULLPAD);
    H5Tset_cset(mt, H5Tget_cset(t));
    if (!tmp || H5Aread(a, mt, tmp) < 0)
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s: cannot read attribute %s", f->path, name);
    else
      snprintf(buf, len, "%s", tmp);
    free(tmp);
    H5Tclose(mt);
  }
  H5Tclose(t);
  H5Aclose(a);
  return rc;
}
