/* A writer killed between writing NAME.tmp and the rename leaves the
 * previous NAME intact and loadable; the next writer replaces the stale
 * .tmp. The writer runs in a child process that is killed with SIGKILL. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slr/io.h"
#include "slr_test.h"

static char path[1024];

static int write_version(int64_t version, int die_before_commit) {
  slr_h5 f;
  int64_t dims[1] = {1000};
  int64_t *v = malloc(1000 * sizeof *v);
  for (int i = 0; i < 1000; i++) v[i] = version;
  int rc = slr_h5_create(&f, MPI_COMM_SELF, path, "test", 1);
  if (!rc) rc = slr_h5_write_rows(&f, "/v", SLR_I64, 1, dims, 0, 1000, v);
  free(v);
  if (!rc && die_before_commit) {
    H5Fflush(f.fid, H5F_SCOPE_GLOBAL);
    raise(SIGKILL);
  }
  if (!rc) rc = slr_h5_commit(&f);
  return rc;
}

/* run a writer in a child; returns its wait status */
static int child_writer(int64_t version, int die) {
  pid_t pid = fork();
  if (pid == 0) {
    MPI_Init(NULL, NULL);
    int rc = write_version(version, die);
    MPI_Finalize();
    _exit(rc ? 1 : 0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return st;
}

static int64_t read_version(void) {
  slr_h5 f;
  if (slr_h5_open(&f, MPI_COMM_SELF, path, "test", 1, 0)) return -1;
  int64_t *v = NULL, n = 0;
  int rc = slr_h5_read_all(&f, "/v", SLR_I64, (void **)&v, &n);
  slr_h5_close(&f);
  int64_t out = rc || n != 1000 ? -2 : v[0];
  for (int64_t i = 0; !rc && i < n; i++)
    if (v[i] != out) out = -3;
  free(v);
  return out;
}

static void test_killed_writer(void **state) {
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int st = child_writer(1, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = child_writer(2, 1);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  assert_int_equal(access(tmp, F_OK), 0); /* the torn file is there ... */
  MPI_Init(NULL, NULL);
  assert_int_equal(read_version(), 1); /* ... but the reader sees version 1 */
  /* the next writer replaces the stale .tmp and commits */
  assert_int_equal(write_version(3, 0), 0);
  assert_int_equal(read_version(), 3);
  assert_int_not_equal(access(tmp, F_OK), 0);
  MPI_Finalize();
}

int main(void) {
  char *dir = slr_test_tmpdir(0);
  snprintf(path, sizeof path, "%s/ckpt.h5", dir);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_killed_writer)};
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  slr_test_rmtree(dir);
  free(dir);
  return rc;
}
