/* Option parsing for the subcommands on getopt_long: --name value,
 * --name=value, flags, repeatable options, positional arguments kept in
 * order ("-" at the head of the short-option string, a GNU extension),
 * "--" ending the options, and generated help. getopt_long also takes a
 * unique prefix of a long name (--weig for --weights), as GNU tools do. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void slr_print_command_help(const slr_command *cmd, const slr_opt *opts, FILE *out) {
  fprintf(out, "usage: slr %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
  fprintf(out, "\noptions:\n");
  for (const slr_opt *o = opts; o && o->name; o++) {
    char left[64];
    if (o->type == OPT_FLAG)
      snprintf(left, sizeof left, "--%s", o->name);
    else
      snprintf(left, sizeof left, "--%s %s", o->name, o->arg ? o->arg : "VALUE");
    if (strlen(left) > 26)
      fprintf(out, "  %s\n  %-26s %s\n", left, "", o->help);
    else
      fprintf(out, "  %-26s %s\n", left, o->help);
  }
  fprintf(out, "  %-26s %s\n", "-h, --help", "show this help");
}

int slr_cli_usage_error(const slr_command *cmd, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return slr_error_set(SLR_ERR_USAGE, NULL, 0, "slr %s: %s\nusage: slr %s %s (see slr %s --help)",
                       cmd->name, msg, cmd->name, cmd->usage, cmd->name);
}

static int set_value(const slr_command *cmd, const slr_opt *o, const char *v) {
  char *end;
  switch (o->type) {
  case OPT_STR: *(const char **)o->dest = v; return 0;
  case OPT_LIST: {
    slr_opt_list *l = o->dest;
    if (l->n >= 64) return slr_cli_usage_error(cmd, "too many --%s options (at most 64)", o->name);
    l->v[l->n++] = v;
    return 0;
  }
  case OPT_INT: {
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
      return slr_cli_usage_error(cmd, "--%s: \"%.200s\" is not an integer", o->name, v);
    *(int64_t *)o->dest = x;
    return 0;
  }
  case OPT_FLOAT: {
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x))
      return slr_cli_usage_error(cmd, "--%s: \"%.200s\" is not a number", o->name, v);
    *(double *)o->dest = x;
    return 0;
  }
  default: return 0;
  }
}

/* the option as the user wrote it, without "=value" */
static void written_name(const char *arg, char *buf, size_t len) {
  size_t n = strcspn(arg, "=");
  if (n >= len) n = len - 1;
  memcpy(buf, arg, n);
  buf[n] = '\0';
}

#define OPT_BASE 256

int slr_parse_options(const slr_command *cmd, const slr_opt *opts, int argc, char **argv,
                      const char **pos, int max_pos, int *npos) {
  *npos = 0;
  int n = 0;
  while (opts && opts[n].name) n++;
  struct option *lo = calloc((size_t)n + 2, sizeof *lo);
  if (!lo) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory parsing options");
  for (int i = 0; i < n; i++) {
    lo[i].name = opts[i].name;
    lo[i].has_arg = opts[i].type == OPT_FLAG ? no_argument : required_argument;
    lo[i].val = OPT_BASE + i;
  }
  lo[n].name = "help";
  lo[n].val = 'h';
  int rc = 0;
  optind = 0; /* glibc: a full restart of the scan */
  opterr = 0; /* the messages below, with the command's prefix and usage */
  char name[128];
  while (!rc) {
    int c = getopt_long(argc, argv, "-:h", lo, NULL);
    if (c == -1) break;
    if (c == 'h') {
      if (slr_world_rank() == 0) slr_print_command_help(cmd, opts, stdout);
      rc = SLR_CLI_HELP;
    } else if (c == 1) {
      if (*npos >= max_pos)
        rc = slr_cli_usage_error(cmd, "unexpected argument \"%s\"", optarg);
      else
        pos[(*npos)++] = optarg;
    } else if (c == ':') {
      if (optopt >= OPT_BASE)
        rc = slr_cli_usage_error(cmd, "option --%s needs a value", opts[optopt - OPT_BASE].name);
      else
        rc = slr_cli_usage_error(cmd, "option %s needs a value", argv[optind - 1]);
    } else if (c == '?') {
      written_name(argv[optind - 1], name, sizeof name);
      if (optopt >= OPT_BASE)
        rc = slr_cli_usage_error(cmd, "option --%s takes no value", opts[optopt - OPT_BASE].name);
      else if (optopt)
        rc = slr_cli_usage_error(cmd, "unknown option -%c", optopt);
      else {
        /* getopt_long gives '?' for an unknown name and for a prefix of several */
        char which[256] = "";
        size_t len = strlen(name) > 2 ? strlen(name) - 2 : 0, w = 0;
        int hits = 0;
        for (int i = 0; i < n && len && !strncmp(name, "--", 2); i++)
          if (!strncmp(opts[i].name, name + 2, len) && w < sizeof which) {
            w += (size_t)snprintf(which + w, sizeof which - w, "%s--%s", hits ? ", " : "",
                                  opts[i].name);
            hits++;
          }
        if (hits > 1)
          rc = slr_cli_usage_error(cmd, "ambiguous option %s (%s)", name, which);
        else
          rc = slr_cli_usage_error(cmd, "unknown option %s", name);
      }
    } else if (c >= OPT_BASE && c < OPT_BASE + n) {
      const slr_opt *o = &opts[c - OPT_BASE];
      if (o->type == OPT_FLAG)
        *(int *)o->dest = 1;
      else
        rc = set_value(cmd, o, optarg);
    }
  }
  /* after "--" everything is positional */
  for (int i = optind; !rc && i < argc; i++) {
    if (*npos >= max_pos)
      rc = slr_cli_usage_error(cmd, "unexpected argument \"%s\"", argv[i]);
    else
      pos[(*npos)++] = argv[i];
  }
  free(lo);
  return rc;
}
