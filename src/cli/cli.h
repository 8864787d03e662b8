/* The slr command: the command table and a small option parser shared by
 * the subcommands (one file per subcommand, src/cli/cmd_NAME.c). */
#ifndef SLR_CLI_H
#define SLR_CLI_H

#include <stdint.h>

#include "slr/core.h"
#include "slr/dist.h"
#include "slr/nn.h"

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

/* Parse argv[1..] against opts (terminated by a {NULL} entry) with
 * getopt_long. Positional arguments go to pos (at most max_pos), in order.
 * `-h` / `--help` prints the help of the command and returns SLR_CLI_HELP. Errors return SLR_ERR_USAGE with the
 * message recorded. Only rank 0 prints. Local. */
int slr_parse_options(const slr_command *cmd, const slr_opt *opts, int argc, char **argv,
                      const char **pos, int max_pos, int *npos);
/* Record a usage error: "slr NAME: MESSAGE" and the usage line with the
 * help hint; returns SLR_ERR_USAGE (exit 2). Local. */
int slr_cli_usage_error(const slr_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print `slr NAME USAGE`, the summary and the options. Local. */
void slr_print_command_help(const slr_command *cmd, const slr_opt *opts, FILE *out);

/* Load the configuration every rank: defaults, then FILE (may be NULL),
 * then each --set in order, then the checks across keys; agreed over ranks.
 * Collective on comm. */
struct slr_config;
int slr_cli_load_config(MPI_Comm comm, const char *file, const slr_opt_list *sets,
                        struct slr_config *cfg);

/* Model flags that confirm a weights file's description (NULL / 0: not
 * given). */
typedef struct {
  const char *arch, *pool;
  int64_t last_stride, width;
} slr_cli_model_flags;

/* The model a weights file describes, confirmed by the flags: a flag that
 * differs from the file is an error naming both values; a flag fills in
 * what the file does not say (last_stride of a file from another tool).
 * *feat_dim gets the file's feat_dim attribute (0 when absent). Collective
 * on comm. */
int slr_cli_model_from_file(const slr_command *cmd, MPI_Comm comm, const char *path,
                            const slr_cli_model_flags *fl, slr_model_config *cfg,
                            int *feat_dim);
/* "resnet50, width 64, last stride 1, gem pool (GeM), BNNeck". Local. */
void slr_cli_model_describe(const slr_model_config *c, char *buf, size_t len);

#endif
