/* Test support: see slr_test.h. */
#include "slr_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int slr_test_main_mpi(int *argc, char ***argv, const char *name,
                      const struct CMUnitTest *tests, size_t ntests) {
  int provided;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char group[256];
  const char *base = strrchr(name, '/');
  snprintf(group, sizeof group, "%s (rank %d of %d)", base ? base + 1 : name, rank, size);
  int failed = _cmocka_run_group_tests(group, tests, ntests, NULL, NULL);
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0) printf("%s on %d ranks: %s\n", base ? base + 1 : name, size, any ? "FAILED" : "passed");
  MPI_Finalize();
  return any ? 1 : 0;
}

int slr_test_all(int cond) {
  int init = 0;
  MPI_Initialized(&init);
  if (!init) return cond;
  int all = 0;
  MPI_Allreduce(&cond, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all;
}

char *slr_test_tmpdir(int mpi) {
  char buf[512] = "";
  int rank = 0;
  if (mpi) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    const char *t = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/slr-test-XXXXXX", t && t[0] ? t : "/tmp");
    if (!mkdtemp(buf)) buf[0] = '\0';
  }
  if (mpi) MPI_Bcast(buf, sizeof buf, MPI_CHAR, 0, MPI_COMM_WORLD);
  return strdup(buf);
}

void slr_test_rmtree(const char *path) {
  if (!path || !path[0] || strcmp(path, "/") == 0) return;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

static int mpi_on(void) {
  int init = 0, done = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&done);
  return init && !done;
}

int slr_test_dir_open(char **dir) {
  *dir = slr_test_tmpdir(mpi_on());
  return *dir && (*dir)[0] ? 0 : -1;
}

int slr_test_dir_close(char **dir) {
  int rank = 0;
  if (mpi_on()) {
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  }
  if (rank == 0) slr_test_rmtree(*dir);
  free(*dir);
  *dir = NULL;
  return 0;
}

int slr_test_sh(const char *cmd, char **out) {
  char full[8192];
  snprintf(full, sizeof full, "%s 2>&1", cmd);
  FILE *p = popen(full, "r");
  if (!p) return -1;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while (buf && (n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (cap - len < 1024) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
  }
  if (buf) buf[len] = '\0';
  int st = pclose(p);
  if (out)
    *out = buf;
  else
    free(buf);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void slr_test_write(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}
