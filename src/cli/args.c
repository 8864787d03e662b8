/* Option parsing for the subcommands: --name value, --name=value, flags,
 * repeatable options, positional arguments, and generated help. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void slr_print_command_help(const slr_command *cmd, const slr_opt *opts, FILE *out) {
  fprintf(out, "usage: slr %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
  if (opts && opts[0].name) fprintf(out, "\noptions:\n");
  for (const slr_opt *o = opts; o && o->name; o++) {
    char left[64];
    if (o->type == OPT_FLAG)
      snprintf(left, sizeof left, "--%s", o->name);
    else
      snprintf(left, sizeof left, "--%s %s", o->name, o->arg ? o->arg : "VALUE");
    fprintf(out, "  %-26s %s\n", left, o->help);
  }
  fprintf(out, "  %-26s %s\n", "--help", "show this help");
}

static int usage_error(const slr_command *cmd, const char *fmt, const char *a) {
  char msg[512];
  snprintf(msg, sizeof msg, fmt, a);
  return slr_error_set(SLR_ERR_USAGE, NULL, 0, "slr %s: %s\nusage: slr %s %s (see slr %s --help)",
                       cmd->name, msg, cmd->name, cmd->usage, cmd->name);
}

static int set_value(const slr_command *cmd, const slr_opt *o, const char *v) {
  char *end;
  switch (o->type) {
  case OPT_STR: *(const char **)o->dest = v; return 0;
  case OPT_LIST: {
    slr_opt_list *l = o->dest;
    if (l->n >= 64) return usage_error(cmd, "too many --%s options", o->name);
    l->v[l->n++] = v;
    return 0;
  }
  case OPT_INT: {
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end) {
      char m[300];
      snprintf(m, sizeof m, "--%s: \"%.200s\" is not an integer", o->name, v);
      return usage_error(cmd, "%s", m);
    }
    *(int64_t *)o->dest = x;
    return 0;
  }
  case OPT_FLOAT: {
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x)) {
      char m[300];
      snprintf(m, sizeof m, "--%s: \"%.200s\" is not a number", o->name, v);
      return usage_error(cmd, "%s", m);
    }
    *(double *)o->dest = x;
    return 0;
  }
  default: return 0;
  }
}

int slr_parse_options(const slr_command *cmd, const slr_opt *opts, int argc, char **argv,
                      const char **pos, int max_pos, int *npos) {
  *npos = 0;
  int only_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
      if (slr_world_rank() == 0) slr_print_command_help(cmd, opts, stdout);
      return SLR_CLI_HELP;
    }
    if (!only_pos && a[0] == '-' && a[1] == '-' && a[2]) {
      char name[128];
      const char *eq = strchr(a + 2, '=');
      size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
      if (n >= sizeof name) return usage_error(cmd, "unknown option %s", a);
      memcpy(name, a + 2, n);
      name[n] = '\0';
      const slr_opt *o = NULL;
      for (const slr_opt *q = opts; q && q->name; q++)
        if (strcmp(q->name, name) == 0) o = q;
      if (!o) return usage_error(cmd, "unknown option --%s", name);
      if (o->type == OPT_FLAG) {
        if (eq) return usage_error(cmd, "option --%s takes no value", name);
        *(int *)o->dest = 1;
        continue;
      }
      const char *v = eq ? eq + 1 : NULL;
      if (!v) {
        if (i + 1 >= argc) return usage_error(cmd, "option --%s needs a value", name);
        v = argv[++i];
      }
      SLR_TRY(set_value(cmd, o, v));
      continue;
    }
    if (!only_pos && a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9'))
      return usage_error(cmd, "unknown option %s", a);
    if (*npos >= max_pos) return usage_error(cmd, "unexpected argument \"%s\"", a);
    pos[(*npos)++] = a;
  }
  return 0;
}
