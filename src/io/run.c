/* Checkpoint files of a run (naming, the newest complete one, pruning) and
 * JSON-lines logs that survive a kill (append + fsync, truncate on resume). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "slr/io.h"

#define CKPT_DIR "checkpoints"
#define CKPT_FMT "ckpt-%012" PRId64 ".h5"

int slr_ckpt_path(const char *run_dir, int64_t position, char *out, size_t len) {
  char name[64];
  snprintf(name, sizeof name, CKPT_FMT, position);
  if (snprintf(out, len, "%s/" CKPT_DIR "/%s", run_dir, name) >= (int)len)
    return SLR_FAIL(SLR_ERR, "run folder name too long: %s", run_dir);
  return 0;
}

static int cmp_i64_desc(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* positions of the committed checkpoints, newest first (rank-local scan) */
static int64_t scan(const char *run_dir, int64_t **out) {
  char dir[SLR_PATH_MAX];
  snprintf(dir, sizeof dir, "%s/" CKPT_DIR, run_dir);
  *out = NULL;
  DIR *d = opendir(dir);
  if (!d) return 0;
  int64_t n = 0, cap = 16;
  int64_t *pos = malloc((size_t)cap * sizeof(int64_t));
  struct dirent *e;
  while (pos && (e = readdir(d))) {
    int64_t p;
    int consumed = 0;
    if (sscanf(e->d_name, "ckpt-%" SCNd64 ".h5%n", &p, &consumed) == 1 &&
        e->d_name[consumed] == '\0' && consumed > 0) {
      if (n == cap) {
        cap *= 2;
        int64_t *np = realloc(pos, (size_t)cap * sizeof(int64_t));
        if (!np) break;
        pos = np;
      }
      pos[n++] = p;
    }
  }
  closedir(d);
  if (pos) qsort(pos, (size_t)n, sizeof(int64_t), cmp_i64_desc);
  *out = pos;
  return pos ? n : 0;
}

/* rank 0 scans; every rank gets the same list */
static int scan_all(MPI_Comm comm, const char *run_dir, int64_t **pos, int64_t *n) {
  int rank;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  int64_t cnt = 0;
  int64_t *p = NULL;
  if (rank == 0) cnt = scan(run_dir, &p);
  SLR_MPI(MPI_Bcast(&cnt, 1, MPI_INT64_T, 0, comm));
  if (rank != 0) p = malloc((size_t)(cnt > 0 ? cnt : 1) * sizeof(int64_t));
  int rc = p || cnt == 0 ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory listing checkpoints");
  rc = slr_agree(comm, rc);
  if (rc) {
    free(p);
    return rc;
  }
  if (cnt > 0) SLR_MPI(MPI_Bcast(p, (int)cnt, MPI_INT64_T, 0, comm));
  *pos = p;
  *n = cnt;
  return 0;
}

int slr_ckpt_newest(MPI_Comm comm, const char *run_dir, int max_version, char *out, size_t len,
                    int64_t *position) {
  int64_t *pos = NULL, n = 0;
  SLR_TRY(scan_all(comm, run_dir, &pos, &n));
  out[0] = '\0';
  *position = -1;
  for (int64_t i = 0; i < n; i++) {
    char path[SLR_PATH_MAX];
    slr_ckpt_path(run_dir, pos[i], path, sizeof path);
    slr_h5 f;
    int rc = slr_h5_open(&f, comm, path, "checkpoint", max_version, SLR_H5_VERIFY);
    if (rc == 0) {
      slr_h5_close(&f);
      snprintf(out, len, "%s", path);
      *position = pos[i];
      break;
    }
    slr_warn("skipping checkpoint %s (an older one is used if there is one): %s", path,
             slr_error_text());
  }
  free(pos);
  return 0;
}

int slr_ckpt_prune(MPI_Comm comm, const char *run_dir, int64_t keep) {
  int rank;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  int rc = 0;
  if (rank == 0) {
    int64_t *pos = NULL;
    int64_t n = scan(run_dir, &pos);
    for (int64_t i = keep; i < n; i++) {
      char path[SLR_PATH_MAX];
      slr_ckpt_path(run_dir, pos[i], path, sizeof path);
      if (unlink(path) != 0 && errno != ENOENT)
        rc = SLR_FAIL(SLR_ERR, "cannot remove old checkpoint %s: %s", path, strerror(errno));
      /* a .tmp of an older position is a leftover of a killed writer */
      char tmp[SLR_PATH_MAX + 8];
      snprintf(tmp, sizeof tmp, "%s.tmp", path);
      unlink(tmp);
    }
    free(pos);
  }
  return slr_agree(comm, rc);
}

int slr_jsonl_append(const char *path, const char *line) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return SLR_FAIL(SLR_ERR, "cannot open %s: %s", path, strerror(errno));
  size_t len = strlen(line);
  char *buf = malloc(len + 1);
  if (!buf) {
    close(fd);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory writing %s", path);
  }
  memcpy(buf, line, len);
  buf[len] = '\n';
  ssize_t w = write(fd, buf, len + 1);
  free(buf);
  if (w != (ssize_t)(len + 1) || fsync(fd) != 0) {
    int e = errno;
    close(fd);
    return SLR_FAIL(SLR_ERR, "cannot write %s: %s", path, strerror(e));
  }
  close(fd);
  return 0;
}

int64_t slr_file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

int slr_file_truncate_to(const char *path, int64_t size, int64_t *actual) {
  struct stat st;
  if (actual) *actual = 0;
  if (stat(path, &st) != 0) {
    if (size == 0) return 0;
    return SLR_FAIL(SLR_ERR_INPUT, "%s is missing (expected %lld bytes)", path, (long long)size);
  }
  if (!S_ISREG(st.st_mode)) return SLR_FAIL(SLR_ERR_INPUT, "%s is not a regular file", path);
  int64_t target = size;
  if ((int64_t)st.st_size < size) {
    /* shorter than recorded: never extend it (truncate would pad with NUL
     * bytes); keep its complete lines only */
    target = 0;
    FILE *fp = fopen(path, "rb");
    if (fp) {
      int64_t pos = 0;
      int c;
      while ((c = fgetc(fp)) != EOF) {
        pos++;
        if (c == '\n') target = pos;
      }
      fclose(fp);
    }
    slr_warn("%s has %lld bytes, fewer than the %lld its checkpoint recorded; kept its first "
             "%lld bytes (complete lines), the lines after them are lost",
             path, (long long)st.st_size, (long long)size, (long long)target);
  }
  if (truncate(path, (off_t)target) != 0)
    return SLR_FAIL(SLR_ERR, "cannot truncate %s: %s", path, strerror(errno));
  if (actual) *actual = target;
  return 0;
}

int slr_file_truncate(const char *path, int64_t size) {
  return slr_file_truncate_to(path, size, NULL);
}

int slr_output_path_check(const char *path, const char *what) {
  int folder = what && strcmp(what, "run folder") == 0;
  if (!what) what = "output";
  if (!path || !path[0])
    return slr_error_set(SLR_ERR_USAGE, NULL, 0, "the %s path is empty (\"\")", what);
  if (strlen(path) > SLR_OUT_PATH_MAX)
    return slr_error_set(SLR_ERR_USAGE, NULL, 0, "the %s path is %zu characters long, more "
                         "than the %d supported: %.60s...",
                         what, strlen(path), SLR_OUT_PATH_MAX, path);
  struct stat st;
  char tmp[SLR_PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  const char *names[2] = {path, tmp};
  for (int i = 0; i < (folder ? 1 : 2); i++) {
    if (stat(names[i], &st) != 0) continue;
    if (S_ISREG(st.st_mode)) continue;
    if (folder && S_ISDIR(st.st_mode)) continue;
    const char *kind = S_ISDIR(st.st_mode)    ? "a folder"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return slr_error_set(SLR_ERR_USAGE, NULL, 0,
                         "%s %s is %s; slr writes %s only as a new or regular file%s", what,
                         names[i], kind, folder ? "a run" : "outputs",
                         folder ? " or folder" : "");
  }
  if (folder && stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
    return slr_error_set(SLR_ERR_USAGE, NULL, 0, "%s %s exists and is not a folder", what, path);
  return 0;
}

int slr_run_status_write(MPI_Comm comm, const char *run_dir, const char *state, int exit_code,
                         int signal, int64_t position, const char *checkpoint,
                         const char *message) {
  int rank = 0, rc = 0;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) {
    char path[SLR_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/status.json", run_dir) >= (int)sizeof path)
      rc = SLR_FAIL(SLR_ERR, "run folder name too long: %s", run_dir);
    slr_json j;
    slr_json_init(&j);
    slr_json_object_begin(&j, NULL);
    slr_json_str(&j, "state", state);
    slr_json_int(&j, "exit_code", exit_code);
    slr_json_int(&j, "signal", signal);
    slr_json_int(&j, "position", position);
    if (checkpoint) slr_json_str(&j, "checkpoint", checkpoint);
    if (message) slr_json_str(&j, "message", message);
    slr_json_int(&j, "time", (int64_t)time(NULL));
    slr_json_object_end(&j);
    if (!rc && !slr_json_ok(&j)) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory writing %s", path);
    if (!rc) {
      size_t len = strlen(slr_json_text(&j));
      char *text = malloc(len + 2);
      if (!text) {
        rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory writing %s", path);
      } else {
        memcpy(text, slr_json_text(&j), len);
        text[len] = '\n';
        rc = slr_write_file_atomic(path, text, len + 1);
        free(text);
      }
    }
    slr_json_free(&j);
  }
  return slr_agree(comm, rc);
}
