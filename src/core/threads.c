/* One thread setting for OpenBLAS and the engine's OpenMP loops. */
#define _GNU_SOURCE
#include "slr/core.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

static int slr_nthreads = 1;

void slr_threads_set(int n, int ranks_on_node) {
  if (n <= 0) {
    cpu_set_t set;
    int cores = 0;
    int online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (sched_getaffinity(0, sizeof set, &set) == 0) cores = CPU_COUNT(&set);
    if (ranks_on_node < 1) ranks_on_node = 1;
    /* a rank bound to a subset of the cores (mpirun --bind-to, srun
     * --cpu-bind) uses that subset; an unbound one shares the node */
    if (cores > 0 && cores < online)
      n = cores;
    else
      n = online / ranks_on_node;
    if (n < 1) n = 1;
  }
  slr_nthreads = n;
  openblas_set_num_threads(n);
  omp_set_num_threads(n);
}

int slr_threads_get(void) { return slr_nthreads; }
