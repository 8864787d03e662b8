/* Logging: rank 0 by default, every rank with a "[rank r]" prefix on
 * request; warnings and errors to stderr, the rest to stdout. */
#include "slr/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static slr_log_level log_level = SLR_LOG_INFO;
static int log_all = 0;

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
  p->t_start = p->t_last_print = slr_now();
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
  char eta[32], elapsed[32];
  slr_format_duration(rate > 0 ? (double)(p->total - p->done) / rate : -1, eta, sizeof eta);
  slr_format_duration(el, elapsed, sizeof elapsed);
  double pct = p->total > 0 ? 100.0 * (double)p->done / (double)p->total : 100.0;
  if (p->tty) {
    fprintf(p->out, "\r%s: %5.1f%% %lld/%lld %s, %.1f %s/s, %s %s\033[K", p->label, pct,
            (long long)p->done, (long long)p->total, p->unit, rate, p->unit,
            final ? "took" : "ETA", final ? elapsed : eta);
    if (final) fputc('\n', p->out);
  } else {
    fprintf(p->out, "%s: %5.1f%% %lld/%lld %s, %.1f %s/s, %s %s\n", p->label, pct,
            (long long)p->done, (long long)p->total, p->unit, rate, p->unit,
            final ? "took" : "ETA", final ? elapsed : eta);
  }
  fflush(p->out);
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
