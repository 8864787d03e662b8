/* HDF5 files of row-sharded arrays: fixed-length string arrays, attributes,
 * format tags, a digest of every dataset, and the atomic commit (NAME.tmp,
 * close, fsync, rename).
 *
 * No file is opened through MPI-IO. A file being written is built in memory
 * on rank 0 (HDF5's core driver); the other ranks send their rows to it, and
 * slr_h5_commit writes the image out with write() and fsync, so that a write
 * error (a full disk, a quota, EIO) is a local return on rank 0 that every
 * rank then agrees on: HDF5's MPI-IO driver instead meets such errors
 * on some ranks only and leaves the ranks in different collectives, where
 * they hang. A file being read is opened on every rank, read-only, and each
 * rank reads its own rows. This also keeps Open MPI's shared-file-pointer
 * component, whose path buffer is 256 characters in 4.1.x, out of the way. */
#include "slr/io.h"

#include "slr/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
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

static herr_t h5_walk(unsigned n, const H5E_error2_t *e, void *data) {
  char *out = data;
  if (n == 0 && e->desc) snprintf(out, 256, "%s", e->desc);
  return 0;
}

int slr_error_hdf5(const char *call, const char *file, int line) {
  char desc[256] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_walk, desc);
  return slr_error_set(SLR_ERR, file, line, "HDF5 call failed: %s%s%s", call,
                       desc[0] ? ": " : "", desc);
}

static void h5_quiet(void) {
  static int done = 0;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    done = 1;
  }
}

static int open_props(hid_t *fapl) {
  *fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (*fapl < 0) return slr_error_hdf5("H5Pcreate", __FILE__, __LINE__);
  if (H5Pset_fapl_sec2(*fapl) < 0) {
    H5Pclose(*fapl);
    return slr_error_hdf5("H5Pset_fapl_sec2", __FILE__, __LINE__);
  }
  return 0;
}

/* rank 0's value of an int on every rank (writing: only rank 0 has the file) */
static int from_root(const slr_h5 *f, int v) {
  if (f->size > 1) SLR_MPI(MPI_Bcast(&v, 1, MPI_INT, 0, f->comm));
  return v;
}

/* ---- digests --------------------------------------------------------------------
 * The digest of a dataset is the sum (mod 2^64) over its rows of a mixed
 * FNV-1a hash of the row's bytes (as stored, little-endian) keyed by the row
 * index. A sum can be made of each rank's rows, so that writer and reader
 * compute it collectively over any sharding. */

#define DIGEST_ATTR "slr_digest"
#define DIGEST_PREFIX "rowsum-fnv1a64:"

static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t digest_rows(const void *buf, int64_t row0, int64_t nrows, size_t row_bytes) {
  const unsigned char *p = buf;
  uint64_t sum = 0;
  for (int64_t i = 0; i < nrows; i++) {
    uint64_t h = 0xcbf29ce484222325ULL ^ mix64((uint64_t)(row0 + i));
    const unsigned char *r = p + (size_t)i * row_bytes;
    for (size_t j = 0; j < row_bytes; j++) {
      h ^= r[j];
      h *= 0x100000001b3ULL;
    }
    sum += mix64(h);
  }
  return sum;
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
  f->dxpl = H5P_DEFAULT;
  return 0;
}

/* Close a file. A file being written lives in memory (the core driver), so
 * closing it never touches the disk and cannot fail half-way: HDF5 1.10
 * keeps a half-closed file after a failed close (a full disk while it
 * flushes its metadata), which then crashes its clean-up in MPI_Finalize.
 * Local. */
static int close_file(slr_h5 *f) {
  if (f->fid < 0) return 0;
  int rc = H5Fclose(f->fid) < 0 ? EIO : 0;
  f->fid = -1;
  return rc;
}

/* Write the whole memory image of the file to f->tmp_path and fsync it.
 * Returns 0 or an errno value. Rank 0. */
static int write_image(slr_h5 *f) {
  if (H5Fflush(f->fid, H5F_SCOPE_LOCAL) < 0) return EIO;
  ssize_t size = H5Fget_file_image(f->fid, NULL, 0);
  if (size < 0) return EIO;
  char *img = malloc((size_t)size + 1);
  if (!img) return ENOMEM;
  if (H5Fget_file_image(f->fid, img, (size_t)size) != size) {
    free(img);
    return EIO;
  }
  close_file(f);
  int fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int e = fd < 0 ? errno : 0;
  for (size_t off = 0; !e && off < (size_t)size;) {
    ssize_t w = write(fd, img + off, (size_t)size - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) e = w < 0 ? errno : EIO;
    else off += (size_t)w;
  }
  if (!e && fsync(fd) != 0) e = errno;
  if (fd >= 0 && close(fd) != 0 && !e) e = errno;
  free(img);
  return e;
}

static void release(slr_h5 *f) {
  close_file(f);
}

int slr_h5_create(slr_h5 *f, MPI_Comm comm, const char *path, const char *format,
                  int version) {
  int rc = init_common(f, comm, path);
  if (!rc) rc = slr_output_path_check(path, "output");
  rc = slr_agree(comm, rc);
  if (rc) {
    release(f);
    return rc;
  }
  if (f->rank == 0) {
    /* the file is built in memory and written out by slr_h5_commit; the
     * .tmp is made now so that an unwritable folder is reported at once */
    int fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
      rc = SLR_FAIL(SLR_ERR_INPUT, "cannot create %s: %s", f->tmp_path, strerror(errno));
    else
      close(fd);
    hid_t fapl = -1;
    if (!rc) {
      fapl = H5Pcreate(H5P_FILE_ACCESS);
      if (fapl < 0 || H5Pset_fapl_core(fapl, (size_t)4 << 20, 0) < 0)
        rc = slr_error_hdf5("H5Pset_fapl_core", __FILE__, __LINE__);
    }
    if (!rc) {
      f->fid = H5Fcreate(f->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
      if (f->fid < 0) rc = SLR_FAIL(SLR_ERR_INPUT, "cannot create %s in memory", f->tmp_path);
    }
    if (fapl >= 0) H5Pclose(fapl);
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
  if (f->rank == 0) {
    int e = write_image(f);
    close_file(f);
    if (e) rc = SLR_FAIL(SLR_ERR, "cannot write %s: %s", f->tmp_path, strerror(e));
    if (!rc && rename(f->tmp_path, f->path) != 0)
      rc = SLR_FAIL(SLR_ERR, "cannot rename %s to %s: %s", f->tmp_path, f->path,
                    strerror(errno));
    if (!rc) {
      char dir[SLR_PATH_MAX];
      strcpy(dir, f->path);
      fsync_path(dirname(dir), 1);
    }
    if (rc) unlink(f->tmp_path);
  }
  rc = slr_agree(f->comm, rc);
  f->writing = 0;
  release(f);
  return rc;
}

void slr_h5_abort(slr_h5 *f) {
  close_file(f);
  if (f->rank == 0 && f->tmp_path[0] && (f->writing || access(f->tmp_path, F_OK) == 0))
    unlink(f->tmp_path);
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
  rc = open_props(&fapl);
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
  if (!rc && (flags & SLR_H5_VERIFY)) rc = slr_h5_verify(f);
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

static int exists_local(slr_h5 *f, const char *name);

int slr_h5_exists(slr_h5 *f, const char *name) {
  if (f->writing) return from_root(f, f->rank == 0 ? exists_local(f, name) : 0);
  return exists_local(f, name);
}

static int exists_local(slr_h5 *f, const char *name) {
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

#define XFER_BYTES ((size_t)32 << 20) /* rows sent to rank 0 per message */

/* Rank 0: write rows [row0, row0+nrows) of dataset d from memory. */
static int put_rows(slr_h5 *f, const char *name, hid_t d, hid_t mtype, int ndims,
                    const hsize_t hd[], int64_t row0, int64_t nrows, const void *buf) {
  if (nrows <= 0) return 0;
  hsize_t start[SLR_H5_MAXDIMS] = {0}, count[SLR_H5_MAXDIMS];
  for (int i = 0; i < ndims; i++) count[i] = hd[i];
  start[0] = (hsize_t)row0;
  count[0] = (hsize_t)nrows;
  hid_t fs = H5Dget_space(d);
  hid_t ms = H5Screate_simple(ndims, count, NULL);
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
  errno = 0;
  herr_t w = H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf);
  H5Sclose(ms);
  H5Sclose(fs);
  if (w < 0)
    return SLR_FAIL(SLR_ERR, "cannot write %s: dataset %s: %s", f->tmp_path, name,
                    errno ? strerror(errno) : "HDF5 write failed");
  return 0;
}

/* rank 0 writes the digest attribute of dataset `name` */
static int attr_write(slr_h5 *f, const char *obj, const char *name, hid_t type,
                      const void *v);

/* Write rows [row0, row0+nrows) of a dataset of type `ftype` (created here)
 * from memory of type `mtype`: rank 0 writes its rows and then those of every
 * other rank, received in order in pieces of at most XFER_BYTES. A write
 * error on rank 0 is agreed at the end; the transfer always completes, so
 * that no rank waits. Collective. */
static int write_rows_typed(slr_h5 *f, const char *name, hid_t ftype, hid_t mtype, int ndims,
                            const int64_t dims[], int64_t row0, int64_t nrows,
                            const void *buf) {
  int rc = 0;
  if (!f->writing) rc = SLR_FAIL(SLR_ERR, "%s is not open for writing", f->path);
  if (!rc && (ndims < 0 || ndims > SLR_H5_MAXDIMS))
    rc = SLR_FAIL(SLR_ERR, "%s: %s: bad rank %d", f->path, name, ndims);
  if (!rc && ndims > 0 && (row0 < 0 || nrows < 0 || row0 + nrows > dims[0]))
    rc = SLR_FAIL(SLR_ERR, "%s: %s: rows [%lld, %lld) outside 0..%lld", f->path, name,
                  (long long)row0, (long long)(row0 + nrows), (long long)dims[0]);
  size_t row_bytes = H5Tget_size(mtype);
  for (int i = 1; i < ndims; i++) row_bytes *= (size_t)dims[i];
  if (!rc && row_bytes > XFER_BYTES)
    rc = SLR_FAIL(SLR_ERR, "%s: %s: rows of %zu bytes are not supported", f->path, name,
                  row_bytes);
  SLR_TRY(slr_agree(f->comm, rc));
  uint64_t dg = digest_rows(buf, row0, nrows, row_bytes), dsum = dg;
  if (f->size > 1) SLR_MPI(MPI_Allreduce(&dg, &dsum, 1, MPI_UINT64_T, MPI_SUM, f->comm));
  int64_t mine[2] = {row0, nrows}, *all = NULL;
  if (f->rank == 0) {
    all = malloc(2 * sizeof(int64_t) * (size_t)f->size);
    if (!all) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory writing %s", f->tmp_path);
  }
  if (f->size > 1)
    SLR_MPI(MPI_Gather(mine, 2, MPI_INT64_T, all, 2, MPI_INT64_T, 0, f->comm));
  else if (all)
    memcpy(all, mine, sizeof mine);
  hid_t d = -1;
  hsize_t hd[SLR_H5_MAXDIMS];
  for (int i = 0; i < ndims; i++) hd[i] = (hsize_t)dims[i];
  if (f->rank == 0 && !rc) {
    rc = make_parents(f, name);
    hid_t fs = ndims > 0 ? H5Screate_simple(ndims, hd, NULL) : H5Screate(H5S_SCALAR);
    if (!rc) {
      d = H5Dcreate2(f->fid, name, ftype, fs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (d < 0)
        rc = SLR_FAIL(SLR_ERR, "%s: cannot create dataset %s (does it exist already?)",
                      f->tmp_path, name);
    }
    H5Sclose(fs);
  }
  /* a creation failure stops the transfer before it starts */
  rc = slr_agree(f->comm, rc);
  if (rc) {
    if (d >= 0) H5Dclose(d);
    free(all);
    return rc;
  }
  if (f->rank == 0) {
    if (ndims == 0) {
      if (nrows > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = SLR_FAIL(SLR_ERR, "cannot write %s: dataset %s: %s", f->tmp_path, name,
                      errno ? strerror(errno) : "HDF5 write failed");
    } else {
      rc = put_rows(f, name, d, mtype, ndims, hd, row0, nrows, buf);
    }
    /* rows of no bytes (a trailing dimension 0) have nothing to send */
    int64_t per = row_bytes ? (int64_t)(XFER_BYTES / row_bytes) : 0;
    char *tmp = NULL;
    for (int r = 1; r < f->size && row_bytes; r++) {
      int64_t r0 = all[2 * r], rn = all[2 * r + 1];
      if (rn > 0 && !tmp) tmp = malloc(XFER_BYTES);
      if (rn > 0 && !tmp) {
        /* not enough memory to receive: stop everyone rather than wait */
        fprintf(stderr, "slr: error: out of memory receiving rows of %s\n", f->tmp_path);
        MPI_Abort(MPI_COMM_WORLD, SLR_EXIT_ERROR);
      }
      for (int64_t k = 0; k < rn; k += per) {
        int64_t m = rn - k < per ? rn - k : per;
        SLR_MPI(MPI_Recv(tmp, (int)((size_t)m * row_bytes), MPI_BYTE, r, 77, f->comm,
                         MPI_STATUS_IGNORE));
        if (!rc) rc = put_rows(f, name, d, mtype, ndims, hd, r0 + k, m, tmp);
      }
    }
    free(tmp);
    H5Dclose(d);
  } else if (row_bytes) {
    int64_t per = (int64_t)(XFER_BYTES / row_bytes);
    for (int64_t k = 0; k < nrows; k += per) {
      int64_t m = nrows - k < per ? nrows - k : per;
      SLR_MPI(MPI_Send((const char *)buf + (size_t)k * row_bytes, (int)((size_t)m * row_bytes),
                       MPI_BYTE, 0, 77, f->comm));
    }
  }
  free(all);
  if (f->rank == 0 && !rc) {
    char text[64];
    snprintf(text, sizeof text, DIGEST_PREFIX "%016llx", (unsigned long long)dsum);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(text));
    rc = attr_write(f, name, DIGEST_ATTR, t, text);
    H5Tclose(t);
  }
  return slr_agree(f->comm, rc);
}

int slr_h5_write_scalar_i64(slr_h5 *f, const char *name, int64_t v) {
  return write_rows_typed(f, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, 0,
                          f->rank == 0 ? 1 : 0, &v);
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
  SLR_AGREE_GOTO(f->comm, rc, done);
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
done:
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

/* Rank 0 (which holds a file being written): one attribute. Local. */
static int attr_write(slr_h5 *f, const char *obj, const char *name, hid_t type,
                      const void *v) {
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

/* Every rank calls; rank 0 writes; the result is agreed. Collective. */
static int attr_set(slr_h5 *f, const char *obj, const char *name, hid_t type, const void *v) {
  int rc = 0;
  if (!f->writing) rc = SLR_FAIL(SLR_ERR, "%s is not open for writing", f->path);
  if (!rc && f->rank == 0) rc = attr_write(f, obj, name, type, v);
  return slr_agree(f->comm, rc);
}

int slr_h5_attr_set_i64(slr_h5 *f, const char *obj, const char *name, int64_t v) {
  return attr_set(f, obj, name, H5T_NATIVE_INT64, &v);
}

int slr_h5_attr_set_f64(slr_h5 *f, const char *obj, const char *name, double v) {
  return attr_set(f, obj, name, H5T_NATIVE_DOUBLE, &v);
}

int slr_h5_attr_set_str(slr_h5 *f, const char *obj, const char *name, const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(v) > 0 ? strlen(v) : 1);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  int rc = attr_set(f, obj, name, t, strlen(v) > 0 ? v : "");
  H5Tclose(t);
  return rc;
}

static int attr_exists_local(slr_h5 *f, const char *obj, const char *name) {
  if (!exists_local(f, obj)) return 0;
  return H5Aexists_by_name(f->fid, obj, name, H5P_DEFAULT) > 0;
}

int slr_h5_attr_exists(slr_h5 *f, const char *obj, const char *name) {
  if (f->writing) return from_root(f, f->rank == 0 ? attr_exists_local(f, obj, name) : 0);
  return attr_exists_local(f, obj, name);
}

static int attr_open(slr_h5 *f, const char *obj, const char *name, hid_t *a) {
  if (!attr_exists_local(f, obj, name))
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

/* ---- verification -------------------------------------------------------------- */

typedef struct {
  char **names;
  int n, cap;
} name_list;

static herr_t visit_cb(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
  (void)obj;
  name_list *l = data;
  if (info->type != H5O_TYPE_DATASET) return 0;
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 32;
    char **nn = realloc(l->names, (size_t)cap * sizeof(char *));
    if (!nn) return -1;
    l->names = nn;
    l->cap = cap;
  }
  size_t len = strlen(name) + 2;
  l->names[l->n] = malloc(len);
  if (!l->names[l->n]) return -1;
  snprintf(l->names[l->n++], len, "/%s", name);
  return 0;
}

/* This rank's part of the digest of one dataset, read as stored. */
static int digest_local(slr_h5 *f, const char *name, uint64_t *sum, int *has) {
  *sum = 0;
  *has = attr_exists_local(f, name, DIGEST_ATTR);
  if (!*has) return 0;
  hid_t d = H5Dopen2(f->fid, name, H5P_DEFAULT);
  if (d < 0) return SLR_FAIL(SLR_ERR_INPUT, "%s: cannot open dataset %s", f->path, name);
  hid_t t = H5Dget_type(d), fs = H5Dget_space(d);
  int rc = 0;
  hsize_t hd[H5S_MAX_RANK];
  int nd = H5Sget_simple_extent_ndims(fs);
  if (nd < 0 || nd > SLR_H5_MAXDIMS || H5Tis_variable_str(t) > 0) {
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: dataset %s cannot be verified", f->path, name);
  } else {
    H5Sget_simple_extent_dims(fs, hd, NULL);
    size_t row_bytes = H5Tget_size(t);
    for (int i = 1; i < nd; i++) row_bytes *= (size_t)hd[i];
    int64_t nrows = nd == 0 ? 1 : (int64_t)hd[0], r0 = 0, cnt = 0;
    slr_shard_rows(nrows, f->rank, f->size, &r0, &cnt);
    int64_t per = row_bytes ? (int64_t)(XFER_BYTES / row_bytes) : 0;
    if (per < 1) per = 1;
    char *buf = cnt > 0 ? malloc((size_t)(cnt < per ? cnt : per) * row_bytes + 1) : NULL;
    if (cnt > 0 && !buf) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory verifying %s", f->path);
    for (int64_t k = 0; !rc && k < cnt; k += per) {
      int64_t m = cnt - k < per ? cnt - k : per;
      herr_t r;
      if (nd == 0) {
        r = H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
      } else {
        hsize_t start[SLR_H5_MAXDIMS] = {0}, count[SLR_H5_MAXDIMS];
        for (int i = 0; i < nd; i++) count[i] = hd[i];
        start[0] = (hsize_t)(r0 + k);
        count[0] = (hsize_t)m;
        hid_t ms = H5Screate_simple(nd, count, NULL);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        r = H5Dread(d, t, ms, fs, H5P_DEFAULT, buf);
        H5Sclose(ms);
      }
      if (r < 0)
        rc = SLR_FAIL(SLR_ERR_INPUT, "%s: dataset %s cannot be read (corrupt?)", f->path, name);
      else
        *sum += digest_rows(buf, r0 + k, m, row_bytes);
    }
    free(buf);
  }
  H5Sclose(fs);
  H5Tclose(t);
  H5Dclose(d);
  return rc;
}

int slr_h5_verify(slr_h5 *f) {
  name_list l = {0};
  int rc = 0;
  if (H5Ovisit(f->fid, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &l) < 0)
    rc = SLR_FAIL(SLR_ERR_INPUT, "%s: cannot list its datasets (corrupt?)", f->path);
  rc = slr_agree(f->comm, rc);
  for (int i = 0; !rc && i < l.n; i++) {
    uint64_t mine = 0, sum = 0;
    int has = 0;
    rc = slr_agree(f->comm, digest_local(f, l.names[i], &mine, &has));
    if (rc || !has) continue;
    sum = mine;
    if (f->size > 1) SLR_MPI(MPI_Allreduce(&mine, &sum, 1, MPI_UINT64_T, MPI_SUM, f->comm));
    char stored[128] = "", want[64];
    snprintf(want, sizeof want, DIGEST_PREFIX "%016llx", (unsigned long long)sum);
    rc = slr_h5_attr_get_str(f, l.names[i], DIGEST_ATTR, stored, sizeof stored);
    if (!rc && strcmp(stored, want) != 0)
      rc = SLR_FAIL(SLR_ERR_INPUT,
                    "%s is corrupt: dataset %s does not match its digest (stored %s, read %s)",
                    f->path, l.names[i], stored, want);
    rc = slr_agree(f->comm, rc);
  }
  for (int i = 0; i < l.n; i++) free(l.names[i]);
  free(l.names);
  return rc;
}
