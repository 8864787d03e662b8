/* Error recording, checked-call reporting and collective agreement. */
#include "slr/core.h"

#include <errno.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#define SLR_ERRMSG_LEN 2048

static _Thread_local char errmsg[SLR_ERRMSG_LEN];
static _Thread_local size_t errtext_off;

int slr_world_rank(void) {
  int init = 0, fin = 0, rank = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int slr_error_set(int code, const char *file, int line, const char *fmt, ...) {
  size_t off = 0;
  if (file) {
    const char *base = strstr(file, "src/");
    int n = snprintf(errmsg, sizeof errmsg, "[rank %d] %s:%d: ", slr_world_rank(),
                     base ? base : file, line);
    off = n > 0 && (size_t)n < sizeof errmsg ? (size_t)n : 0;
  }
  errtext_off = off;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errmsg + off, sizeof errmsg - off, fmt, ap);
  va_end(ap);
  return code;
}

const char *slr_error_message(void) { return errmsg; }
const char *slr_error_text(void) { return errmsg + errtext_off; }
void slr_error_clear(void) {
  errmsg[0] = '\0';
  errtext_off = 0;
}

int slr_exit_code(int err) {
  switch (err) {
  case SLR_OK: return SLR_EXIT_OK;
  case SLR_ERR_USAGE: return SLR_EXIT_USAGE;
  case SLR_ERR_STOP: return SLR_EXIT_STOPPED;
  default: return SLR_EXIT_ERROR;
  }
}

int slr_error_mpi(int mpirc, const char *call, const char *file, int line) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(mpirc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "code %d", mpirc);
  return slr_error_set(SLR_ERR, file, line, "MPI call failed: %s: %s", call, s);
}

int slr_error_errno(const char *call, const char *file, int line) {
  int e = errno;
  return slr_error_set(SLR_ERR, file, line, "%s: %s", call, strerror(e));
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

int slr_agree(MPI_Comm comm, int local_rc) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (size == 1) return local_rc;
  /* lowest failing rank: MIN over (failed ? rank : size) */
  int mine = local_rc ? rank : size, first = size;
  if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS) {
    /* the communicator itself is broken: nothing can be agreed, stop all */
    fprintf(stderr, "slr: [rank %d] MPI_Allreduce failed while agreeing on an error\n", rank);
    MPI_Abort(comm, SLR_EXIT_ERROR);
  }
  if (first == size) return SLR_OK;
  int msg[2] = {local_rc, (int)strlen(errmsg)};
  MPI_Bcast(msg, 2, MPI_INT, first, comm);
  char buf[SLR_ERRMSG_LEN];
  if (rank == first) memcpy(buf, errmsg, sizeof buf);
  MPI_Bcast(buf, SLR_ERRMSG_LEN, MPI_CHAR, first, comm);
  if (rank != first) {
    memcpy(errmsg, buf, sizeof errmsg);
    errmsg[sizeof errmsg - 1] = '\0';
    /* the rank/file/line prefix ends at the first ": " after "] " */
    const char *p = strstr(errmsg, "] ");
    p = p ? strstr(p, ": ") : NULL;
    errtext_off = p ? (size_t)(p + 2 - errmsg) : 0;
  }
  return msg[0];
}
