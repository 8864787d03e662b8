/* Test support: cmocka under MPI (every rank runs the group, the verdict is
 * agreed over ranks), temporary folders, and running the slr command. */
#ifndef SLR_TEST_H
#define SLR_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the above first */
#include <cmocka.h>
#include <mpi.h>

#include "slr/core.h"

/* Initialise MPI, run the group on every rank, agree on the verdict (any
 * rank failing fails all), finalise. Returns the process exit code. */
int slr_test_main_mpi(int *argc, char ***argv, const char *name,
                      const struct CMUnitTest *tests, size_t ntests);
#define SLR_TEST_MAIN_MPI(tests)                                                  \
  int main(int argc, char **argv) {                                             \
    return slr_test_main_mpi(&argc, &argv, __FILE__, tests,                     \
                             sizeof(tests) / sizeof((tests)[0]));                 \
  }

/* Agree a condition over all ranks of MPI_COMM_WORLD, then assert it, so a
 * failure on one rank fails every rank at the same point. */
int slr_test_all(int cond);
#define assert_all(cond) assert_true(slr_test_all((cond) ? 1 : 0))

/* A new empty folder under $TMPDIR (same name on every rank when `mpi`; then
 * collective on MPI_COMM_WORLD). The caller frees the string. */
char *slr_test_tmpdir(int mpi);
/* rm -rf. Local. */
void slr_test_rmtree(const char *path);
/* For a cmocka setup: *dir = a new empty folder (slr_test_tmpdir, the same on
 * every rank once MPI is initialised; then collective on MPI_COMM_WORLD).
 * Returns 0, or -1 if it could not be made. */
int slr_test_dir_open(char **dir);
/* For the matching teardown: once every rank is done with it (MPI
 * initialised: collective on MPI_COMM_WORLD, rank 0 removes it), the folder
 * of slr_test_dir_open removed and *dir freed and set to NULL. Returns 0. */
int slr_test_dir_close(char **dir);

/* Run a shell command; return its exit status (or -1) and, if out != NULL,
 * its combined stdout+stderr (malloc'ed). Local. */
int slr_test_sh(const char *cmd, char **out);
/* Write a text file. Local. */
void slr_test_write(const char *path, const char *text);

#endif
