/* Logging: rank 0 by default, every rank with a "[rank r]" prefix on
 * request; warnings and errors to stderr, the rest to stdout; rank 0's
 * lines also appended to a log file with an ISO-8601 timestamp when one is
 * open. Progress lines with the time of day, their own ETA, and the ETA of
 * the whole run when the caller reports the run's work. */
#include "slr/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static slr_log_level log_level = SLR_LOG_INFO;
static int log_all = 0;
static FILE *log_file = NULL;

/* the whole run's work, for the run ETA in progress lines */
static struct {
  int set;
  double total, done;
  double t0, done0; /* the first report: the rate is measured from it */
} run_work;

/* "2026-12-01T09:52:42+0000" (local time with its offset) */
static void iso_now(char *buf, size_t len) {
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  if (!strftime(buf, len, "%Y-%m-%dT%H:%M:%S%z", &tm)) snprintf(buf, len, "?");
}

static void clock_now(char *buf, size_t len) {
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  if (!strftime(buf, len, "%H:%M:%S", &tm)) snprintf(buf, len, "?");
}

int slr_log_file_open(const char *path) {
  if (slr_world_rank() != 0) return 0;
  slr_log_file_close();
  FILE *f = fopen(path, "a");
  if (!f) return SLR_FAIL(SLR_ERR, "cannot open the log file %s: %s", path, strerror(errno));
  setvbuf(f, NULL, _IOLBF, 0);
  log_file = f;
  return 0;
}

void slr_log_file_close(void) {
  if (log_file) fclose(log_file);
  log_file = NULL;
}

static void file_line(const char *line) {
  if (!log_file) return;
  char ts[40];
  iso_now(ts, sizeof ts);
  fprintf(log_file, "%s %s\n", ts, line);
}

void slr_log_file_printf(const char *fmt, ...) {
  if (!log_file) return;
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  /* one timestamped line per line of the text */
  for (char *s = line, *nl; s && *s; s = nl ? nl + 1 : NULL) {
    nl = strchr(s, '\n');
    if (nl) *nl = '\0';
    file_line(s);
  }
}

void slr_run_progress_set(double total, double done) {
  double now = slr_now();
  if (!run_work.set || done < run_work.done0) {
    run_work.t0 = now;
    run_work.done0 = done;
  }
  run_work.set = 1;
  run_work.total = total;
  run_work.done = done;
}

void slr_run_progress_clear(void) { memset(&run_work, 0, sizeof run_work); }

int slr_run_eta(double *eta_s, double *fraction) {
  if (!run_work.set || !(run_work.total > 0)) return 0;
  double el = slr_now() - run_work.t0, did = run_work.done - run_work.done0;
  *fraction = run_work.done / run_work.total;
  if (*fraction > 1) *fraction = 1;
  *eta_s = did > 0 && el > 0 ? (run_work.total - run_work.done) * el / did : -1;
  if (*eta_s < 0 && run_work.done >= run_work.total) *eta_s = 0;
  return 1;
}

void slr_log_setup(slr_log_level level, int all_ranks) {
  log_level = level;
  log_all = all_ranks;
}

int slr_log_parse_level(const char *name, slr_log_level *out) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0) {
      *out = (slr_log_level)i;
      return 0;
    }
  return -1;
}

static void vlog(slr_log_level level, int prefix, const char *fmt, va_list ap) {
  static const char *tags[] = {"error: ", "warning: ", "", ""};
  FILE *out = level <= SLR_LOG_WARN ? stderr : stdout;
  char line[4096];
  int n = 0;
  if (prefix) n = snprintf(line, sizeof line, "[rank %d] ", slr_world_rank());
  n += snprintf(line + n, sizeof line - (size_t)n, "%s", tags[level]);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  fprintf(out, "%s\n", line);
  fflush(out);
  if (slr_world_rank() == 0) slr_log_file_printf("%s", line);
}

void slr_log(slr_log_level level, const char *fmt, ...) {
  if (level > log_level) return;
  int rank = slr_world_rank();
  if (!log_all && rank != 0) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(level, log_all, fmt, ap);
  va_end(ap);
}

void slr_log_rank(slr_log_level level, const char *fmt, ...) {
  if (level > log_level) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(level, 1, fmt, ap);
  va_end(ap);
}

/* Progress lines ------------------------------------------------------------ */

void slr_format_duration(double s, char *buf, size_t len) {
  if (!(s >= 0) || s > 1e9) {
    snprintf(buf, len, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, len, "%ldh%02ldm%02lds", t / 3600, (t / 60) % 60, t % 60);
  else if (t >= 60)
    snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
  else
    snprintf(buf, len, "%lds", t);
}

/* Whether progress lines may redraw in place. Under mpiexec a rank's stdout
 * is a pseudo-terminal even when mpiexec writes to a file (a Slurm log), so
 * the launcher's own stdout decides: the parent process's descriptor 1.
 * SLR_PROGRESS=tty|plain overrides. */
static int stdout_is_terminal(void) {
  const char *force = getenv("SLR_PROGRESS");
  if (force && strcmp(force, "plain") == 0) return 0;
  if (force && strcmp(force, "tty") == 0) return 1;
  if (!isatty(fileno(stdout))) return 0;
  if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_RANK") && !getenv("PMIX_RANK") &&
      !getenv("SLURM_PROCID"))
    return 1;
  char link[64], target[256];
  snprintf(link, sizeof link, "/proc/%d/fd/1", (int)getppid());
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = '\0';
  return strncmp(target, "/dev/pts/", 9) == 0 || strncmp(target, "/dev/tty", 8) == 0;
}

void slr_progress_begin(slr_progress *p, const char *label, int64_t total,
                        const char *unit, double interval) {
  memset(p, 0, sizeof *p);
  slr_strlcpy(p->label, label, sizeof p->label);
  slr_strlcpy(p->unit, unit ? unit : "it", sizeof p->unit);
  p->total = total;
  p->out = stdout;
  p->t_start = p->t_last_print = p->t_last_file = slr_now();
  if (interval <= 0) {
    const char *env = getenv("SLR_PROGRESS_INTERVAL");
    interval = env ? atof(env) : 10.0;
  }
  p->interval = interval;
  p->tty = stdout_is_terminal();
  p->active = slr_world_rank() == 0 && log_level >= SLR_LOG_INFO;
}

static void progress_print(slr_progress *p, int final) {
  double el = slr_now() - p->t_start;
  double rate = el > 0 ? (double)p->done / el : 0;
  char eta[32], elapsed[32], clock[16], run[64] = "";
  slr_format_duration(rate > 0 ? (double)(p->total - p->done) / rate : -1, eta, sizeof eta);
  slr_format_duration(el, elapsed, sizeof elapsed);
  clock_now(clock, sizeof clock);
  double reta, frac;
  if (slr_run_eta(&reta, &frac)) {
    char r[32];
    slr_format_duration(reta, r, sizeof r);
    snprintf(run, sizeof run, "; run %.0f%%, ETA %s", 100.0 * frac, r);
  }
  double pct = p->total > 0 ? 100.0 * (double)p->done / (double)p->total : 100.0;
  char line[512];
  snprintf(line, sizeof line, "%s: %5.1f%% %lld/%lld %s, %.1f %s/s, %s %s%s", p->label, pct,
           (long long)p->done, (long long)p->total, p->unit, rate, p->unit,
           final ? "took" : "ETA", final ? elapsed : eta, run);
  if (p->tty) {
    fprintf(p->out, "\r%s %s\033[K", clock, line);
    if (final) fputc('\n', p->out);
  } else {
    fprintf(p->out, "%s %s\n", clock, line);
  }
  fflush(p->out);
  /* the log file gets the plain lines only, at the plain interval */
  double now = slr_now();
  if (final || !p->tty || now - p->t_last_file >= p->interval) {
    p->t_last_file = now;
    slr_log_file_printf("%s", line);
  }
}

void slr_progress_update(slr_progress *p, int64_t done) {
  p->done = done;
  if (!p->active) return;
  double now = slr_now();
  double every = p->tty ? 0.2 : p->interval;
  if (now - p->t_last_print >= every) {
    p->t_last_print = now;
    progress_print(p, 0);
  }
}

void slr_progress_end(slr_progress *p) {
  if (p->active) progress_print(p, 1);
  p->active = 0;
}
