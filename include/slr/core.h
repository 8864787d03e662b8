/* core: errors and checking macros, collective agreement on failure,
 * logging, progress lines, the clock, counter-based random numbers
 * (Philox4x32-10), finite-value checks and the thread setting.
 *
 * Error model: a function returns 0 on success or an slr_err code; the
 * message of the most recent error (with the rank) is kept per thread and
 * read with slr_error_message(); the source location where it was raised is
 * kept apart (slr_error_location(), and the debug log), so that users never
 * see it. Before a collective that follows a step that can fail on some
 * ranks only, the ranks agree with slr_agree(), so that no rank waits
 * forever for one that gave up. A failing MPI call itself (SLR_MPI) stops
 * every rank: a broken communicator cannot agree on anything. */
#ifndef SLR_CORE_H
#define SLR_CORE_H

#include <mpi.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------- */

typedef enum {
  SLR_OK = 0,
  SLR_ERR = 1,        /* runtime failure (I/O, bad input data, MPI, ...) */
  SLR_ERR_USAGE = 2,  /* bad command line: usage message, exit code 2 */
  SLR_ERR_CONFIG = 3, /* bad configuration file or --set value */
  SLR_ERR_INPUT = 4,  /* bad input file (missing, corrupt, wrong format) */
  SLR_ERR_NOMEM = 5,
  SLR_ERR_STOP = 6,   /* stopped on request (signal) after a checkpoint */
} slr_err;

/* Process exit codes of the slr command (documented in the README). */
enum {
  SLR_EXIT_OK = 0,
  SLR_EXIT_ERROR = 1,
  SLR_EXIT_USAGE = 2,
  SLR_EXIT_STOPPED = 75, /* checkpointed and stopped on SIGTERM/SIGUSR1 */
};

/* Record an error and return `code`. The message is prefixed with
 * "[rank r] " when `file` is not NULL; file and line are kept for
 * slr_error_location() and logged at debug level. Local. */
int slr_error_set(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The message of the last error recorded on this thread ("" if none). Local. */
const char *slr_error_message(void);
/* The message without the "[rank r] " prefix. Local. */
const char *slr_error_text(void);
/* "src/io/h5.c:142" of the last error raised with SLR_FAIL on this thread,
 * "" if none (for debugging; never part of a user-facing message). Local. */
const char *slr_error_location(void);
void slr_error_clear(void);
/* Map an slr_err to the command's exit code. Local. */
int slr_exit_code(int err);

#define SLR_FAIL(code, ...) slr_error_set((code), __FILE__, __LINE__, __VA_ARGS__)

/* Return the error code of `expr` to the caller if it is not 0. */
#define SLR_TRY(expr)                                                          \
  do {                                                                         \
    int slr_rc_ = (expr);                                                      \
    if (slr_rc_ != 0) return slr_rc_;                                          \
  } while (0)

/* After an agreement, a failure jumps to the caller's cleanup label instead of
 * returning (SLR_TRY there would leak what the function holds):
 *   rc = slr_agree(comm, rc); SLR_AGREED(rc, done); ... done: free(...); */
#define SLR_AGREED(rc, label)                                                  \
  do {                                                                         \
    if ((rc) != 0) goto label;                                                 \
  } while (0)
/* Agree on `rc` over comm and jump to `label` on failure. Collective. */
#define SLR_AGREE_GOTO(comm, rc, label)                                        \
  do {                                                                         \
    (rc) = slr_agree((comm), (rc));                                            \
    if ((rc) != 0) goto label;                                                 \
  } while (0)

/* Checked calls: each records rank, file and line and returns SLR_ERR. */
int slr_error_errno(const char *call, const char *file, int line);
int slr_error_mpi(int mpirc, const char *call, const char *file, int line);
/* A failed MPI call: prints the error (call and MPI's message) and stops
 * every rank with MPI_Abort, exit code 1. An MPI call that fails leaves its
 * communicator unusable for an agreement, so returning on the failing rank
 * alone would leave the others waiting in the next collective. Local. */
_Noreturn void slr_error_mpi_fatal(int mpirc, const char *call, const char *file, int line);

#define SLR_MPI(call)                                                          \
  do {                                                                         \
    int slr_mrc_ = (call);                                                     \
    if (slr_mrc_ != MPI_SUCCESS)                                               \
      slr_error_mpi_fatal(slr_mrc_, #call, __FILE__, __LINE__);                \
  } while (0)
/* Allocation: `ptr = malloc(bytes)`, returns SLR_ERR_NOMEM on failure. */
#define SLR_ALLOC(ptr, bytes)                                                  \
  do {                                                                         \
    size_t slr_b_ = (size_t)(bytes);                                           \
    (ptr) = slr_b_ ? malloc(slr_b_) : NULL;                                    \
    if (slr_b_ && !(ptr))                                                      \
      return SLR_FAIL(SLR_ERR_NOMEM, "out of memory allocating %zu bytes",     \
                      slr_b_);                                                 \
  } while (0)

/* Collective agreement on failure. Every rank passes its local status (0 =
 * ok); every rank gets back 0 if all were ok, otherwise the error code of
 * the lowest failing rank, whose message is copied to every rank so that
 * rank 0 can print it. Collective on comm. */
int slr_agree(MPI_Comm comm, int local_rc);

/* The rank in MPI_COMM_WORLD, or 0 before MPI_Init. Local. */
int slr_world_rank(void);

/* ---- logging ------------------------------------------------------------ */

typedef enum {
  SLR_LOG_ERROR = 0,
  SLR_LOG_WARN = 1,
  SLR_LOG_INFO = 2,
  SLR_LOG_DEBUG = 3,
} slr_log_level;

/* Set the level and whether every rank logs (with a "[rank r]" prefix)
 * or only rank 0 does. Local. */
void slr_log_setup(slr_log_level level, int all_ranks);
int slr_log_parse_level(const char *name, slr_log_level *out);
void slr_log(slr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Log from every rank regardless of the setting (prefixed). Local. */
void slr_log_rank(slr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The run log: rank 0's log lines and progress lines (plain, at the
 * progress interval) are also appended to `path`, one line each, prefixed
 * with an ISO-8601 timestamp ("2026-12-01T09:52:42+0000"). Opening another
 * file closes the first; on ranks other than 0 it does nothing. main()
 * writes the final error line and closes the file at exit. Local: only rank
 * 0 opens, so the caller agrees the result (slr_agree) before going on. */
int slr_log_file_open(const char *path);
void slr_log_file_close(void);
/* Append text to the log file only (each of its lines timestamped); nothing
 * without an open file. Local. */
void slr_log_file_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define slr_info(...) slr_log(SLR_LOG_INFO, __VA_ARGS__)
#define slr_warn(...) slr_log(SLR_LOG_WARN, __VA_ARGS__)
#define slr_debug(...) slr_log(SLR_LOG_DEBUG, __VA_ARGS__)

/* ---- progress ------------------------------------------------------------ */

/* A progress line with rate and ETA, printed by rank 0 only. On a terminal
 * it redraws in place; otherwise (a Slurm log) it prints a plain line every
 * `interval` seconds and at the end. */
typedef struct {
  char label[64];
  char unit[16];
  int64_t total;
  int64_t done;
  double t_start;
  double t_last_print;
  double t_last_file;
  double interval;
  int tty;
  int active; /* rank 0 and logging at info level */
  FILE *out;
} slr_progress;

/* Local (only rank 0 prints). interval <= 0 means the default (10 s), which
 * the environment variable SLR_PROGRESS_INTERVAL overrides. */
void slr_progress_begin(slr_progress *p, const char *label, int64_t total,
                        const char *unit, double interval);
void slr_progress_update(slr_progress *p, int64_t done);
void slr_progress_end(slr_progress *p);
/* The whole run's work, for the run ETA that progress lines append
 * ("; run 34%, ETA 1h02m"): total and done in any unit (training steps,
 * say), reported as often as the caller likes (each step). The rate is
 * measured from the first report, so a resumed run reports what its
 * checkpoint had done first. Local (rank 0's values are printed). */
void slr_run_progress_set(double total, double done);
void slr_run_progress_clear(void);
/* The run ETA in seconds (-1: no rate yet) and the fraction done; 0 when
 * no run work is set. Local. */
int slr_run_eta(double *eta_s, double *fraction);
/* Formats an ETA/duration in seconds as "1h02m03s". Local. */
void slr_format_duration(double seconds, char *buf, size_t len);

/* ---- clock ------------------------------------------------------------------ */

/* Monotonic wall time in seconds. Local. */
double slr_now(void);

/* Peak resident set size of this process in bytes (from getrusage). Local. */
int64_t slr_peak_rss(void);

/* ---- random numbers -------------------------------------------------------- */

/* Philox4x32-10 (Salmon et al., SC'11): one block of 4 random 32-bit words
 * from a 128-bit counter and a 64-bit key. Local. */
void slr_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* A stream of random numbers keyed by (seed, stream) and positioned by a
 * 64-bit counter: the n-th number depends only on (seed, stream, n), so a
 * stream can be rebuilt anywhere (another rank, a resumed run). */
typedef struct {
  uint64_t seed;
  uint64_t stream;
  uint64_t counter; /* index of the next 128-bit block */
  uint32_t buf[4];
  int avail; /* words left in buf */
} slr_rng;

void slr_rng_init(slr_rng *r, uint64_t seed, uint64_t stream, uint64_t counter);
uint32_t slr_rng_u32(slr_rng *r);
uint64_t slr_rng_u64(slr_rng *r);
/* Uniform in [0, 1) with 24 (float) or 53 (double) random bits. */
float slr_rng_uniform(slr_rng *r);
double slr_rng_uniform_double(slr_rng *r);
/* Uniform integer in [0, n), without modulo bias. n > 0. */
uint64_t slr_rng_below(slr_rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
float slr_rng_normal(slr_rng *r);
/* A stream id from up to four keys (e.g. purpose, epoch, step, sample),
 * mixed with SplitMix64; different key tuples give unrelated streams. */
uint64_t slr_rng_stream_id(uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* ---- threads ------------------------------------------------------------------ */

/* One setting for OpenBLAS's threads and the engine's own (OpenMP) threads.
 * n <= 0 picks the default: the cores available to this process divided by
 * the ranks sharing its node (at least 1). Local. */
void slr_threads_set(int n, int ranks_on_node);
int slr_threads_get(void);

/* ---- stop requests (SIGTERM, SIGUSR1) ---------------------------------------- */

/* Install handlers for SIGTERM and SIGUSR1 that only record the request; a
 * long job checks it at its safe points, checkpoints and exits with
 * SLR_EXIT_STOPPED. SIGUSR1 is what Slurm sends before the time limit
 * (`#SBATCH --signal=B:USR1@120`, forwarded by the batch script). Local. */
void slr_stop_install(void);
/* The signal received on this rank, 0 if none. Local. */
int slr_stop_signal(void);
/* The signal received on any rank (the highest number), 0 if none: every
 * rank decides the same. Collective on comm. */
int slr_stop_agree(MPI_Comm comm);
/* Forget a received request (tests). Local. */
void slr_stop_reset(void);

/* ---- finite values ------------------------------------------------------------ */

/* Index of the first element of x[0..n) that is NaN or infinite, -1 if all
 * are finite. Local. */
int64_t slr_first_nonfinite_f32(const float *x, int64_t n);
int64_t slr_first_nonfinite_f64(const double *x, int64_t n);
/* Whether x[0..n) on every rank of comm is finite; 0 if so. Otherwise an
 * SLR_ERR_INPUT error naming `what` (e.g. "F.h5: dataset /features"), the
 * global row (row0 + index / row_len) and the value, agreed on every rank.
 * row_len is the number of elements in a row (1 for a vector). Collective
 * on comm. */
int slr_check_finite_f32(MPI_Comm comm, const float *x, int64_t n, int64_t row0,
                         int64_t row_len, const char *what);

/* ---- small helpers ---------------------------------------------------------- */

/* snprintf into a fixed buffer; returns an error if the text was cut. */
int slr_strlcpy(char *dst, const char *src, size_t len);
/* Make a directory and its parents (mode 0755). Local. */
int slr_mkdir_p(const char *path);
/* Write a whole file atomically (tmp + fsync + rename). Local. */
int slr_write_file_atomic(const char *path, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
