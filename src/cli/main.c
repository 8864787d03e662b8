/* main(): global options, MPI start-up, dispatch to a subcommand, and the
 * agreed exit code. Every rank runs the same command. */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <limits.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "slr/nn.h"
#include "slr/version.h"

#define SLR_COMMAND(n) extern const slr_command slr_cmd_##n;
#include "slr_commands.inc"
#undef SLR_COMMAND

static const slr_command *const commands[] = {
#define SLR_COMMAND(n) &slr_cmd_##n,
#include "slr_commands.inc"
#undef SLR_COMMAND
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

void pilaver_(int *major, int *minor, int *patch);

static void print_help(FILE *out) {
  fprintf(out,
          "usage: slr <command> [options]\n"
          "       slr <command> --help\n"
          "       slr --version\n\n"
          "Unsupervised domain adaptation for person re-identification with SLR\n"
          "pseudo-label refinement. Run under mpiexec/srun for several ranks.\n\n"
          "commands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(out,
          "\nexit codes: 0 success, 1 error, 2 usage error, %d checkpointed and stopped\n"
          "on SIGTERM/SIGUSR1 (resume with the same command)\n",
          SLR_EXIT_STOPPED);
}

static void print_version(void) {
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  char *nl = strchr(mpi, '\n');
  if (nl) *nl = '\0';
  char *comma = strchr(mpi, ',');
  if (comma) *comma = '\0';
  unsigned maj, min, rel;
  H5get_libversion(&maj, &min, &rel);
  /* ScaLAPACK's pilaver() is not kept up to date upstream: the version of
   * the library actually loaded is read from its file name */
  char scal[64] = "unknown";
  Dl_info info;
  char real[PATH_MAX];
  if (dladdr((void *)pilaver_, &info) && info.dli_fname && realpath(info.dli_fname, real)) {
    const char *so = strstr(real, ".so.");
    if (so) snprintf(scal, sizeof scal, "%s", so + 4);
  }
  char obl[256];
  snprintf(obl, sizeof obl, "%s", openblas_get_config());
  char *sp = strchr(obl, ' ');
  sp = sp ? strchr(sp + 1, ' ') : NULL;
  if (sp) *sp = '\0';
  printf("slr %s\n", SLR_VERSION);
  printf("  MPI        %s\n", mpi);
  printf("  HDF5       %u.%u.%u (parallel)\n", maj, min, rel);
  printf("  OpenBLAS   %s (core %s, %d threads)\n", obl, openblas_get_corename(),
         openblas_get_num_threads());
  printf("  ScaLAPACK  %s\n", scal);
  printf("  CNN        %s\n", slr_nn_kernels());
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return SLR_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
    print_help(stdout);
    return SLR_EXIT_OK;
  }
  if (strcmp(name, "--version") == 0) {
    if (argc > 2) {
      fprintf(stderr, "slr: --version takes no arguments (got \"%s\")\nusage: slr --version\n",
              argv[2]);
      return SLR_EXIT_USAGE;
    }
    print_version();
    return SLR_EXIT_OK;
  }
  const slr_command *cmd = NULL;
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i]->name, name) == 0) cmd = commands[i];
  if (!cmd) {
    fprintf(stderr, "slr: %s \"%s\"\n\n", name[0] == '-' ? "unknown option" : "unknown command",
            name);
    print_help(stderr);
    return SLR_EXIT_USAGE;
  }

  if (cmd->stop_signals) slr_stop_install();
  int provided;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "slr: MPI_Init_thread failed\n");
    return SLR_EXIT_ERROR;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  slr_ctx ctx;
  int rc = slr_ctx_init(&ctx, MPI_COMM_WORLD);
  if (rc == 0) {
    MPI_Comm_set_errhandler(ctx.world, MPI_ERRORS_RETURN);
    slr_threads_set(0, ctx.node_size);
    rc = cmd->run(&ctx, argc - 1, argv + 1);
    /* agreed, so that every rank exits with the same code and rank 0 holds
     * the message of the first failing rank */
    rc = slr_agree(ctx.world, rc == SLR_CLI_HELP ? 0 : rc);
  }
  if (rc && slr_world_rank() == 0) {
    int user = rc == SLR_ERR_USAGE || rc == SLR_ERR_CONFIG || rc == SLR_ERR_INPUT;
    if (rc == SLR_ERR_STOP || rc == SLR_ERR_USAGE) {
      fprintf(stderr, "%s\n", slr_error_text());
      slr_log_file_printf("%s", slr_error_text());
    } else {
      const char *msg = user ? slr_error_text() : slr_error_message();
      fprintf(stderr, "slr: error: %s\n", msg);
      slr_log_file_printf("slr: error: %s", msg);
    }
  }
  slr_log_file_close();
  int code = slr_exit_code(rc);
  slr_ctx_free(&ctx);
  MPI_Finalize();
  return code;
}
