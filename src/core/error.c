/* Error recording, checked-call reporting, collective agreement and
 * finite-value checks. */
#include "slr/core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SLR_ERRMSG_LEN 2048

static _Thread_local char errmsg[SLR_ERRMSG_LEN];
static _Thread_local size_t errtext_off;
static _Thread_local char errloc[256];

int slr_world_rank(void) {
  int init = 0, fin = 0, rank = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int slr_error_set(int code, const char *file, int line, const char *fmt, ...) {
  size_t off = 0;
  errloc[0] = '\0';
  if (file) {
    const char *base = strstr(file, "src/");
    snprintf(errloc, sizeof errloc, "%s:%d", base ? base : file, line);
    int n = snprintf(errmsg, sizeof errmsg, "[rank %d] ", slr_world_rank());
    off = n > 0 && (size_t)n < sizeof errmsg ? (size_t)n : 0;
  }
  errtext_off = off;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errmsg + off, sizeof errmsg - off, fmt, ap);
  va_end(ap);
  if (file) slr_log_rank(SLR_LOG_DEBUG, "error raised at %s: %s", errloc, errmsg + off);
  return code;
}

const char *slr_error_message(void) { return errmsg; }
const char *slr_error_text(void) { return errmsg + errtext_off; }
const char *slr_error_location(void) { return errloc; }
void slr_error_clear(void) {
  errmsg[0] = '\0';
  errtext_off = 0;
  errloc[0] = '\0';
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

_Noreturn void slr_error_mpi_fatal(int mpirc, const char *call, const char *file, int line) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(mpirc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "code %d", mpirc);
  const char *base = strstr(file, "src/");
  slr_log_rank(SLR_LOG_DEBUG, "MPI failure at %s:%d", base ? base : file, line);
  fprintf(stderr, "slr: error: [rank %d] MPI call failed: %s: %s; stopping all ranks\n",
          slr_world_rank(), call, s);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, SLR_EXIT_ERROR);
  abort(); /* not reached */
}

int slr_error_errno(const char *call, const char *file, int line) {
  int e = errno;
  return slr_error_set(SLR_ERR, file, line, "%s: %s", call, strerror(e));
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
    /* the rank prefix "[rank r] " */
    const char *p = strncmp(errmsg, "[rank ", 6) == 0 ? strstr(errmsg, "] ") : NULL;
    errtext_off = p ? (size_t)(p + 2 - errmsg) : 0;
    errloc[0] = '\0';
  }
  return msg[0];
}

int64_t slr_first_nonfinite_f32(const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return i;
  return -1;
}

int64_t slr_first_nonfinite_f64(const double *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return i;
  return -1;
}

int slr_check_finite_f32(MPI_Comm comm, const float *x, int64_t n, int64_t row0,
                         int64_t row_len, const char *what) {
  int64_t i = slr_first_nonfinite_f32(x, n);
  int rc = 0;
  if (i >= 0) {
    int64_t rl = row_len > 0 ? row_len : 1;
    if (rl == 1)
      rc = slr_error_set(SLR_ERR_INPUT, NULL, 0, "%s: element %lld is %g (not finite)", what,
                         (long long)(row0 + i), (double)x[i]);
    else
      rc = slr_error_set(SLR_ERR_INPUT, NULL, 0, "%s: row %lld, column %lld is %g (not finite)",
                         what, (long long)(row0 + i / rl), (long long)(i % rl), (double)x[i]);
  }
  return slr_agree(comm, rc);
}
