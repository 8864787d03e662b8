/* Stop requests: SIGTERM and SIGUSR1 set a flag; the job agrees on it at
 * its safe points (the end of a training step), checkpoints and exits. */
#include <signal.h>
#include <string.h>

#include "slr/core.h"

static volatile sig_atomic_t stop_sig = 0;

static void on_signal(int sig) { stop_sig = sig; }

void slr_stop_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
}

int slr_stop_signal(void) { return (int)stop_sig; }

void slr_stop_reset(void) { stop_sig = 0; }

int slr_stop_agree(MPI_Comm comm) {
  int mine = (int)stop_sig, any = 0;
  if (MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS) return mine;
  return any;
}
