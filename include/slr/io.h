/* io: HDF5 files of row-sharded arrays, string arrays and attributes, with
 * format tags, dataset digests and atomic commit; output-path checks. The
 * configuration (YAML) is the other half of this module:
 * include/slr/config.h.
 *
 * Every file slr writes carries the root attributes `slr_format` (a name such
 * as "features" or "checkpoint") and `slr_format_version`, and every dataset
 * an `slr_digest` attribute (a checksum of its data, verified on request with
 * SLR_H5_VERIFY or slr_h5_verify). Files are written to NAME.tmp and renamed
 * to NAME only by slr_h5_commit(), after close and fsync: a reader never sees
 * a torn file, and the previous NAME stays valid until the rename.
 *
 * No file is opened through MPI-IO: rank 0 writes (the other ranks send it
 * their rows), every rank reads its own rows. A write error (a full disk, a
 * quota) is therefore an ordinary error agreed on every rank: the command
 * stops with the error naming the file, and NAME.tmp is removed. */
#ifndef SLR_IO_H
#define SLR_IO_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

#include "slr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLR_H5_MAXDIMS 6
#define SLR_PATH_MAX 4096

typedef enum {
  SLR_F32 = 0,
  SLR_F64,
  SLR_I32,
  SLR_I64,
  SLR_U8,
  SLR_DTYPE_COUNT
} slr_dtype;

/* Record a failed HDF5 call (with the innermost message of HDF5's error
 * stack) and return SLR_ERR. Local. */
int slr_error_hdf5(const char *call, const char *file, int line);
/* HDF5 calls that return a negative value on failure. */
#define SLR_H5(call)                                                           \
  do {                                                                         \
    if ((call) < 0) return slr_error_hdf5(#call, __FILE__, __LINE__);          \
  } while (0)

/* Name of a type ("float32", ...) and its size in bytes. Local. */
const char *slr_dtype_name(slr_dtype t);
size_t slr_dtype_size(slr_dtype t);

typedef struct {
  hid_t fid;
  hid_t dxpl;      /* collective transfer property list */
  MPI_Comm comm;   /* not owned */
  int rank, size;
  int writing;
  char path[SLR_PATH_MAX];     /* the final name */
  /* writing: fid is open on rank 0 only (-1 elsewhere); dxpl is H5P_DEFAULT */
  char tmp_path[SLR_PATH_MAX]; /* NAME.tmp while writing */
} slr_h5;

/* Flags of slr_h5_open. */
enum {
  /* accept a file without slr_format (written by h5py or another tool);
   * a file that has one must still match */
  SLR_H5_FOREIGN_OK = 1,
  /* check every dataset's slr_digest (reads the whole file once); a
   * mismatch is an SLR_ERR_INPUT error naming the file and dataset */
  SLR_H5_VERIFY = 2,
};

/* Create PATH.tmp for writing (truncating an old .tmp) and tag it with
 * `format` and `version`. PATH must pass slr_output_path_check. Collective
 * on comm. */
int slr_h5_create(slr_h5 *f, MPI_Comm comm, const char *path, const char *format,
                  int version);
/* Close, fsync and rename PATH.tmp to PATH. Collective. */
int slr_h5_commit(slr_h5 *f);
/* Close and delete PATH.tmp, leaving any previous PATH untouched. Local: no
 * communication, so it may be called on any subset of the ranks; safe on a
 * file that failed half-way or is closed. */
void slr_h5_abort(slr_h5 *f);

/* Open PATH read-only and check its format tag: `format` NULL accepts any;
 * otherwise the tag must equal `format` and the version be at most
 * `max_version`. Errors name the file and what was found. Collective. */
int slr_h5_open(slr_h5 *f, MPI_Comm comm, const char *path, const char *format,
                int max_version, unsigned flags);
/* Close a file opened for reading. Collective. */
int slr_h5_close(slr_h5 *f);
/* Check the slr_digest of every dataset that has one against its data
 * (files written by other tools have none and pass). 0 if all match;
 * otherwise an SLR_ERR_INPUT error "PATH is corrupt: dataset NAME ...".
 * Collective. */
int slr_h5_verify(slr_h5 *f);

/* Whether a dataset or group exists at `name` (intermediate groups may be
 * missing); also on a file being written. Collective (every rank must ask
 * the same). */
int slr_h5_exists(slr_h5 *f, const char *name);

/* Shape and type of a dataset of a file opened for reading. `type` is -1 for
 * types slr does not read (strings, compound ...). Errors name the file and
 * dataset. Collective. */
int slr_h5_shape(slr_h5 *f, const char *name, int *ndims, int64_t dims[SLR_H5_MAXDIMS],
                 int *type);

/* Write a row-sharded array: dims[0] is the global row count, dims[1..]
 * the trailing shape; this rank holds rows [row0, row0+nrows) contiguous in
 * buf. A rank with nrows = 0 still calls. Intermediate groups are created.
 * Collective. */
int slr_h5_write_rows(slr_h5 *f, const char *name, slr_dtype type, int ndims,
                      const int64_t dims[], int64_t row0, int64_t nrows,
                      const void *buf);
/* An int64 scalar dataset (rank 0's v is written). Collective. */
int slr_h5_write_scalar_i64(slr_h5 *f, const char *name, int64_t v);
/* Read rows [row0, row0+nrows) of a dataset into buf (converted to `type`).
 * Collective. */
int slr_h5_read_rows(slr_h5 *f, const char *name, slr_dtype type, int64_t row0,
                     int64_t nrows, void *buf);
/* Write an array that every rank holds whole (rank 0 writes it). Collective. */
int slr_h5_write_all(slr_h5 *f, const char *name, slr_dtype type, int ndims,
                     const int64_t dims[], const void *buf);
/* Read a whole dataset on every rank; *out is malloc'ed and *count gets the
 * element count. Collective. */
int slr_h5_read_all(slr_h5 *f, const char *name, slr_dtype type, void **out,
                    int64_t *count);

/* A row-sharded array of strings (stored fixed-length, NUL-padded, as wide as
 * the longest). Collective. */
int slr_h5_write_strings(slr_h5 *f, const char *name, int64_t nglobal, int64_t row0,
                         int64_t nrows, const char *const *strs);
/* Read rows of a string array (fixed or variable length). *out is one
 * malloc'ed block: an array of nrows pointers followed by the text. Collective. */
int slr_h5_read_strings(slr_h5 *f, const char *name, int64_t row0, int64_t nrows,
                        char ***out);

/* Attributes on an object ("/" for the file). Every rank passes the same
 * value; setting is agreed (rank 0 writes). Reading (get) is for files opened
 * for reading. Collective. */
int slr_h5_attr_set_i64(slr_h5 *f, const char *obj, const char *name, int64_t v);
int slr_h5_attr_set_f64(slr_h5 *f, const char *obj, const char *name, double v);
int slr_h5_attr_set_str(slr_h5 *f, const char *obj, const char *name, const char *v);
int slr_h5_attr_get_i64(slr_h5 *f, const char *obj, const char *name, int64_t *v);
int slr_h5_attr_get_f64(slr_h5 *f, const char *obj, const char *name, double *v);
int slr_h5_attr_get_str(slr_h5 *f, const char *obj, const char *name, char *buf,
                        size_t len);
/* Whether the attribute exists (also on a file being written). Collective. */
int slr_h5_attr_exists(slr_h5 *f, const char *obj, const char *name);

/* ---- checkpoints of a run ------------------------------------------------------ */

/* A run keeps its checkpoints as RUN/checkpoints/ckpt-NNNNNNNNNNNN.h5, where
 * N is the position (the global training step count) at which each was
 * written, zero-padded so that names sort as positions do. */
int slr_ckpt_path(const char *run_dir, int64_t position, char *out, size_t len);
/* The newest checkpoint that opens as an slr "checkpoint" file and whose
 * datasets match their digests (SLR_H5_VERIFY): a damaged or corrupt newer
 * one is skipped with a warning naming it and why. *position = -1 and
 * out = "" when there is none. Collective on comm. */
int slr_ckpt_newest(MPI_Comm comm, const char *run_dir, int max_version, char *out, size_t len,
                    int64_t *position);
/* Delete all but the `keep` newest checkpoints (and stale .tmp files older
 * than the newest). Collective on comm (rank 0 deletes). */
int slr_ckpt_prune(MPI_Comm comm, const char *run_dir, int64_t keep);

/* ---- the state of a run ---------------------------------------------------------- */

/* RUN/status.json, for wrappers (a batch script, tools) that cannot rely on
 * the launcher's exit code: Open MPI's mpiexec exits with 1, not the ranks'
 * 75, when it is itself sent SIGTERM or SIGINT. One JSON object:
 *   {"state": "running" | "stopped" | "done" | "failed", "exit_code": N,
 *    "signal": S, "position": P, "checkpoint": "PATH", "message": "...",
 *    "time": UNIX_SECONDS}
 * "stopped" means a checkpoint at `position` was committed and the run can be
 * resumed (exit code 75); "failed" carries the error message. Written
 * atomically by rank 0 of comm; `checkpoint` and `message` may be NULL.
 * Collective on comm (the result is agreed). */
int slr_run_status_write(MPI_Comm comm, const char *run_dir, const char *state, int exit_code,
                         int signal, int64_t position, const char *checkpoint,
                         const char *message);

/* ---- output paths ---------------------------------------------------------------- */

/* Check a path that slr is about to write (a file, or with what "run folder"
 * a folder): refused with SLR_ERR_USAGE, naming `what` and the path, when it
 * is empty, when it or its .tmp exists and is not a regular file (a device,
 * a FIFO, a socket; a folder unless what is "run folder"), or when it is
 * longer than SLR_OUT_PATH_MAX. Local. */
int slr_output_path_check(const char *path, const char *what);
#define SLR_OUT_PATH_MAX 3800

/* ---- JSON text ------------------------------------------------------------------ */

/* A JSON writer for result files and JSON-lines logs, on json-c. `key` is
 * the member name inside an object and NULL inside an array or at the top.
 * Numbers are written with the shortest text that reads back exactly;
 * NaN and infinities become null. The text is json-c's spaced style:
 * {"a": 1, "b": [1, 2]} prints as { "a": 1, "b": [ 1, 2 ] }. Local. */
struct json_object;
typedef struct {
  struct json_object *root;      /* the top value */
  struct json_object *stack[32]; /* open objects and arrays, innermost last */
  int depth;
  int top_set;
  int failed; /* out of memory, nesting too deep, or a second top value */
} slr_json;

void slr_json_init(slr_json *j);
void slr_json_free(slr_json *j);
void slr_json_object_begin(slr_json *j, const char *key);
void slr_json_object_end(slr_json *j);
void slr_json_array_begin(slr_json *j, const char *key);
void slr_json_array_end(slr_json *j);
void slr_json_num(slr_json *j, const char *key, double v);
void slr_json_int(slr_json *j, const char *key, int64_t v);
void slr_json_bool(slr_json *j, const char *key, int v);
void slr_json_str(slr_json *j, const char *key, const char *v);
/* The text ("" after a failure, which slr_json_ok reports); valid until the
 * next call on j. */
const char *slr_json_text(const slr_json *j);
int slr_json_ok(const slr_json *j);

/* ---- JSON lines ---------------------------------------------------------------- */

/* Append one line (a JSON object, without the newline) to a file and fsync
 * it. Local (call on one rank). */
int slr_jsonl_append(const char *path, const char *line);
/* The size of a file in bytes, 0 if it does not exist. Local. */
int64_t slr_file_size(const char *path);
/* Cut a file back to `size` bytes (resuming a run drops the lines written
 * after its checkpoint). A file already shorter than `size` is never
 * extended (no NUL padding): it is cut back to its last complete line, a
 * warning names it and both sizes, and 0 is returned; `*actual` (when not
 * NULL) gets the size the file has afterwards, so that a caller can record
 * the loss. Local. */
int slr_file_truncate_to(const char *path, int64_t size, int64_t *actual);
/* slr_file_truncate_to(path, size, NULL). Local. */
int slr_file_truncate(const char *path, int64_t size);

#ifdef __cplusplus
}
#endif
#endif
