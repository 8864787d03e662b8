/* Small helpers: time, memory use, strings, directories, atomic files. */
#include "slr/core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double slr_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int64_t slr_peak_rss(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return (int64_t)ru.ru_maxrss * 1024;
}

int slr_strlcpy(char *dst, const char *src, size_t len) {
  size_t n = strlen(src);
  if (len == 0) return SLR_ERR;
  if (n >= len) {
    memcpy(dst, src, len - 1);
    dst[len - 1] = '\0';
    return SLR_FAIL(SLR_ERR, "text too long (%zu characters, at most %zu): %.40s...", n,
                    len - 1, src);
  }
  memcpy(dst, src, n + 1);
  return 0;
}

int slr_mkdir_p(const char *path) {
  char buf[4096];
  SLR_TRY(slr_strlcpy(buf, path, sizeof buf));
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return SLR_FAIL(SLR_ERR, "cannot create directory %s: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST)
    return SLR_FAIL(SLR_ERR, "cannot create directory %s: %s", buf, strerror(errno));
  struct stat st;
  if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
    return SLR_FAIL(SLR_ERR, "%s exists and is not a directory", buf);
  return 0;
}

int slr_write_file_atomic(const char *path, const void *data, size_t len) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return SLR_FAIL(SLR_ERR, "path too long: %s", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return SLR_FAIL(SLR_ERR, "cannot create %s: %s", tmp, strerror(errno));
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp);
      return SLR_FAIL(SLR_ERR, "cannot write %s: %s", tmp, strerror(e));
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    return SLR_FAIL(SLR_ERR, "cannot sync %s: %s", tmp, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return SLR_FAIL(SLR_ERR, "cannot rename %s to %s: %s", tmp, path, strerror(e));
  }
  char dir[4096];
  slr_strlcpy(dir, path, sizeof dir);
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}
