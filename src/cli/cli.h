/* The slr command: the command table and a small option parser shared by
 * the subcommands (one file per subcommand, src/cli/cmd_NAME.c). */
#ifndef SLR_CLI_H
#define SLR_CLI_H

#include <stdint.h>

#include "slr/core.h"
#include "slr/dist.h"

typedef struct {
  const char *name;
  const char *summary;  /* one line for `slr --help` */
  const char *usage;    /* "FILE [--set key=value ...]" */
  /* Runs with MPI initialised; returns an slr_err code. Collective on
   * MPI_COMM_WORLD. argv[0] is the command name. */
  int (*run)(slr_ctx *ctx, int argc, char **argv);
  /* 1: SIGTERM and SIGUSR1 ask the command to checkpoint and stop; the
   * handlers are installed before MPI starts, so that a signal that comes
   * early does not kill the process */
  int stop_signals;
} slr_command;

/* ---- options ------------------------------------------------------------------ */

typedef enum { OPT_FLAG, OPT_STR, OPT_INT, OPT_FLOAT, OPT_LIST } slr_opt_type;

typedef struct {
  const char *name;  /* long name without "--" */
  slr_opt_type type;
  void *dest;        /* int* (flag), const char** (str), int64_t* (int), double* (float),
                        slr_opt_list* (list, repeatable) */
  const char *arg;   /* argument name in the help ("FILE") */
  const char *help;
} slr_opt;

typedef struct {
  int n;
  const char *v[64];
} slr_opt_list;

/* Returned by slr_parse_options after printing the help: exit 0. */
#define SLR_CLI_HELP (-1)

/* Parse argv[1..] against opts (terminated by a {NULL} entry). Positional
 * arguments go to pos (at most max_pos). `--help` prints the help of the
 * command and returns SLR_CLI_HELP. Errors return SLR_ERR_USAGE with the
 * message recorded. Only rank 0 prints. Local. */
int slr_parse_options(const slr_command *cmd, const slr_opt *opts, int argc, char **argv,
                      const char **pos, int max_pos, int *npos);
/* Print `slr NAME USAGE`, the summary and the options. Local. */
void slr_print_command_help(const slr_command *cmd, const slr_opt *opts, FILE *out);

/* Load the configuration every rank: defaults, then FILE (may be NULL),
 * then each --set in order, then the checks across keys; agreed over ranks.
 * Collective on comm. */
struct slr_config;
int slr_cli_load_config(MPI_Comm comm, const char *file, const slr_opt_list *sets,
                        struct slr_config *cfg);

#endif
