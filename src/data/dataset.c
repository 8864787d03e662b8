/* data/dataset: readers of the Re-ID data set layouts. Each gives (path,
 * pid, camid) per image and split, as the peers' readers do: Market-1501,
 * DukeMTMC-reID and PersonX from file names in bounding_box_train/, query/
 * and bounding_box_test/; MSMT17 (V1 and V2) from its list files; a generic
 * list of `path pid camid` lines. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "slr/data.h"

/* ---- a growable split --------------------------------------------------------- */

typedef struct {
  int64_t n, cap;
  int64_t *off; /* offsets of paths into text */
  int32_t *pids, *camids;
  char *text;
  size_t tlen, tcap;
} split_builder;

static int sb_add(split_builder *b, const char *dir, const char *name, int32_t pid, int32_t cam) {
  if (b->n == b->cap) {
    int64_t cap = b->cap ? b->cap * 2 : 1024;
    int64_t *off = realloc(b->off, (size_t)cap * sizeof *off);
    if (off) b->off = off;
    int32_t *p = realloc(b->pids, (size_t)cap * sizeof *p);
    if (p) b->pids = p;
    int32_t *c = realloc(b->camids, (size_t)cap * sizeof *c);
    if (c) b->camids = c;
    if (!off || !p || !c) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory reading a file list");
    b->cap = cap;
  }
  size_t need = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
  if (b->tlen + need > b->tcap) {
    size_t cap = b->tcap ? b->tcap * 2 : 65536;
    while (cap < b->tlen + need) cap *= 2;
    char *t = realloc(b->text, cap);
    if (!t) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory reading a file list");
    b->text = t;
    b->tcap = cap;
  }
  char *dst = b->text + b->tlen;
  if (dir)
    snprintf(dst, need, "%s/%s", dir, name);
  else
    snprintf(dst, need, "%s", name);
  b->off[b->n] = (int64_t)b->tlen;
  b->tlen += need;
  b->pids[b->n] = pid;
  b->camids[b->n] = cam;
  b->n++;
  return 0;
}

static void sb_free(split_builder *b) {
  free(b->off);
  free(b->pids);
  free(b->camids);
  free(b->text);
  memset(b, 0, sizeof *b);
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Sorted distinct values of v[0..n-1] into a malloc'ed array. */
static int distinct(const int32_t *v, int64_t n, int32_t **out, int32_t *count) {
  int32_t *s;
  SLR_ALLOC(s, (size_t)(n ? n : 1) * sizeof *s);
  if (n) memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_i32);
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++)
    if (m == 0 || s[m - 1] != s[i]) s[m++] = s[i];
  *out = s;
  *count = (int32_t)m;
  return 0;
}

/* Move a builder into a split; relabel pids to 0..P-1 when asked. */
static int sb_finish(split_builder *b, int relabel, slr_split *sp) {
  memset(sp, 0, sizeof *sp);
  int32_t *u = NULL, nu = 0;
  SLR_TRY(distinct(b->pids, b->n, &u, &nu));
  if (relabel)
    for (int64_t i = 0; i < b->n; i++) {
      int32_t *f = bsearch(&b->pids[i], u, (size_t)nu, sizeof *u, cmp_i32);
      b->pids[i] = (int32_t)(f - u);
    }
  free(u);
  SLR_TRY(distinct(b->camids, b->n, &u, &nu));
  free(u);
  sp->num_cams = nu;
  SLR_TRY(distinct(b->pids, b->n, &u, &nu));
  free(u);
  sp->num_pids = nu;
  sp->n = b->n;
  SLR_ALLOC(sp->paths, (size_t)(b->n ? b->n : 1) * sizeof(char *));
  for (int64_t i = 0; i < b->n; i++) sp->paths[i] = b->text + b->off[i];
  sp->path_block = b->text;
  sp->pids = b->pids;
  sp->camids = b->camids;
  free(b->off);
  memset(b, 0, sizeof *b);
  return 0;
}

/* ---- folders ------------------------------------------------------------------ */

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in dir (skipping "." entries); images_only keeps the
 * .jpg/.jpeg/.png files. */
static int list_dir(const char *dir, int images_only, char ***names, int64_t *count) {
  DIR *d = opendir(dir);
  if (!d) return SLR_FAIL(SLR_ERR_INPUT, "cannot open folder %s: %s", dir, strerror(errno));
  int64_t n = 0, cap = 256;
  char **v = malloc((size_t)cap * sizeof *v);
  struct dirent *e;
  while (v && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (images_only) {
      const char *dot = strrchr(e->d_name, '.');
      if (!dot || !(strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                    strcasecmp(dot, ".png") == 0))
        continue;
    }
    if (n == cap) {
      cap *= 2;
      char **nv = realloc(v, (size_t)cap * sizeof *v);
      if (!nv) break;
      v = nv;
    }
    v[n] = strdup(e->d_name);
    if (!v[n]) break;
    n++;
  }
  closedir(d);
  if (!v) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory listing %s", dir);
  qsort(v, (size_t)n, sizeof *v, cmp_str);
  *names = v;
  *count = n;
  return 0;
}

static void free_names(char **v, int64_t n) {
  for (int64_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* "a/, b, c.txt, ..." of what a folder holds, for error messages. */
static void describe_dir(const char *dir, char *buf, size_t len) {
  char **v = NULL;
  int64_t n = 0;
  buf[0] = '\0';
  if (!is_dir(dir)) {
    snprintf(buf, len, "no such folder");
    return;
  }
  if (list_dir(dir, 0, &v, &n)) {
    slr_error_clear();
    snprintf(buf, len, "an unreadable folder");
    return;
  }
  if (n == 0) snprintf(buf, len, "an empty folder");
  size_t used = strlen(buf);
  for (int64_t i = 0; i < n && used + 8 < len; i++) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, v[i]);
    int w = snprintf(buf + used, len - used, "%s%s%s", i ? ", " : "", v[i], is_dir(p) ? "/" : "");
    if (w < 0 || (size_t)w >= len - used) {
      snprintf(buf + (len > 5 ? len - 5 : 0), 5, "...");
      break;
    }
    used += (size_t)w;
  }
  free_names(v, n);
}

/* The folder holding all of `need` (files or folders): root itself or one
 * of its immediate subfolders (e.g. Market-1501-v15.09.15/). */
static int find_layout_root(const char *root, const char *const *need, int nneed,
                            const char *layout, const char *expected, char *out, size_t len) {
  if (!root[0])
    return SLR_FAIL(SLR_ERR_INPUT, "no folder given for the %s data set (data.*.root)", layout);
  if (!is_dir(root))
    return SLR_FAIL(SLR_ERR_INPUT, "%s data set: folder %s does not exist", layout, root);
  char **v = NULL;
  int64_t n = 0;
  SLR_TRY(list_dir(root, 0, &v, &n));
  for (int64_t c = -1; c < n; c++) {
    char base[4096];
    if (c < 0)
      snprintf(base, sizeof base, "%s", root);
    else
      snprintf(base, sizeof base, "%s/%s", root, v[c]);
    if (c >= 0 && !is_dir(base)) continue;
    int ok = 1;
    for (int i = 0; i < nneed && ok; i++) {
      char p[4096 + 256];
      snprintf(p, sizeof p, "%s/%s", base, need[i]);
      ok = is_dir(p) || is_file(p);
    }
    if (ok) {
      free_names(v, n);
      return slr_strlcpy(out, base, len);
    }
  }
  free_names(v, n);
  char found[1024];
  describe_dir(root, found, sizeof found);
  return SLR_FAIL(SLR_ERR_INPUT, "%s: expected the %s layout (%s), found: %s", root, layout,
                  expected, found);
}

/* ---- names like 0002_c1s1_000451_03.jpg ------------------------------------------- */

/* Parse "<pid>_c<cam>" at the start of a name (pid may be -1). */
static int parse_pid_cam(const char *name, int32_t *pid, int32_t *cam) {
  const char *p = name;
  int neg = 0;
  if (*p == '-') {
    neg = 1;
    p++;
  }
  if (!isdigit((unsigned char)*p)) return -1;
  long v = 0;
  while (isdigit((unsigned char)*p) && v < 100000000) v = v * 10 + (*p++ - '0');
  if (p[0] != '_' || p[1] != 'c' || !isdigit((unsigned char)p[2])) return -1;
  p += 2;
  long c = 0;
  while (isdigit((unsigned char)*p) && c < 100000) c = c * 10 + (*p++ - '0');
  if (*p != 's' && *p != '_' && *p != '.') return -1;
  *pid = (int32_t)(neg ? -v : v);
  *cam = (int32_t)c;
  return 0;
}

typedef struct {
  const char *name;    /* "Market-1501" */
  const char *pattern; /* for error messages */
  int max_cam;         /* cameras 1..max_cam */
  const int *cam_map;  /* or: allowed camera numbers, mapped to 1..n */
  int ncam_map;
} name_scheme;

static const int personx_cams[] = {3, 4, 8, 10, 11, 12};
static const name_scheme market_scheme = {
    "Market-1501", "PID_cCAMsSEQ_FRAME_BOX.jpg, e.g. 0002_c1s1_000451_03.jpg", 6, NULL, 0};
static const name_scheme duke_scheme = {
    "DukeMTMC-reID", "PID_cCAM_fFRAME.jpg, e.g. 0001_c2_f0046182.jpg", 8, NULL, 0};
static const name_scheme personx_scheme = {
    "PersonX", "PID_cCAM....jpg with CAM in {3,4,8,10,11,12}, e.g. 0001_c3s1_000001.jpg", 0,
    personx_cams, 6};

static int read_named_folder(const char *dir, const name_scheme *s, split_builder *b) {
  char **v = NULL;
  int64_t n = 0;
  SLR_TRY(list_dir(dir, 1, &v, &n));
  int rc = 0;
  if (n == 0) rc = SLR_FAIL(SLR_ERR_INPUT, "%s: no .jpg images in this %s folder", dir, s->name);
  for (int64_t i = 0; i < n && !rc; i++) {
    int32_t pid, cam;
    if (parse_pid_cam(v[i], &pid, &cam)) {
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s/%s: file name does not follow the %s naming scheme %s", dir,
                    v[i], s->name, s->pattern);
      break;
    }
    if (pid == -1) continue; /* junk images */
    if (pid < 0) {
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s/%s: negative person id %d", dir, v[i], (int)pid);
      break;
    }
    int32_t c = -1;
    if (s->cam_map) {
      for (int k = 0; k < s->ncam_map; k++)
        if (s->cam_map[k] == cam) c = k;
    } else if (cam >= 1 && cam <= s->max_cam) {
      c = cam - 1;
    }
    if (c < 0) {
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s/%s: camera %d is not a %s camera (%s)", dir, v[i], (int)cam,
                    s->name, s->pattern);
      break;
    }
    rc = sb_add(b, dir, v[i], pid, c);
  }
  free_names(v, n);
  return rc;
}

static int read_market_like(slr_dataset *ds, const char *root, const name_scheme *s) {
  static const char *const need[] = {"bounding_box_train", "query", "bounding_box_test"};
  static const char *const sub[SLR_NSPLITS] = {"bounding_box_train", "query", "bounding_box_test"};
  char base[SLR_CFG_STR + 256];
  SLR_TRY(find_layout_root(root, need, 3, s->name,
                           "folders bounding_box_train/, query/, bounding_box_test/", base,
                           sizeof base));
  for (int k = 0; k < SLR_NSPLITS; k++) {
    split_builder b = {0};
    char dir[SLR_CFG_STR + 512];
    snprintf(dir, sizeof dir, "%s/%s", base, sub[k]);
    int rc = read_named_folder(dir, s, &b);
    if (!rc) rc = sb_finish(&b, k == SLR_TRAIN, &ds->split[k]);
    sb_free(&b);
    if (rc) return rc;
  }
  return 0;
}

/* ---- MSMT17 ---------------------------------------------------------------------- */

/* Lines "pid_folder/file.jpg label"; the camera is the 3rd '_' field of
 * the file name (1-based in the name). */
static int read_msmt_list(const char *list, const char *img_dir, split_builder *b) {
  FILE *f = fopen(list, "r");
  if (!f) return SLR_FAIL(SLR_ERR_INPUT, "cannot open %s: %s", list, strerror(errno));
  char line[4096];
  int64_t lineno = 0;
  int rc = 0;
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    char path[4096];
    long label;
    char extra;
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = 0;
    if (l == 0) continue;
    if (sscanf(line, "%4095s %ld %c", path, &label, &extra) != 2 || label < 0) {
      rc = SLR_FAIL(SLR_ERR_INPUT, "%s:%lld: expected `pid/file.jpg label`, found \"%s\"", list,
                    (long long)lineno, line);
      break;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *p = base;
    for (int k = 0; k < 2 && p; k++) {
      p = strchr(p, '_');
      if (p) p++;
    }
    long cam = -1;
    if (p && isdigit((unsigned char)*p)) {
      char *end;
      cam = strtol(p, &end, 10);
      if (*end != '_' && *end != '.') cam = -1;
    }
    if (cam < 1 || cam > 15) {
      rc = SLR_FAIL(SLR_ERR_INPUT,
                    "%s:%lld: file name %s does not follow the MSMT17 naming scheme "
                    "PID_SEQ_CAM_..., e.g. 0000_000_01_0303morning_0015_0.jpg (camera 1..15)",
                    list, (long long)lineno, base);
      break;
    }
    rc = sb_add(b, img_dir, path, (int32_t)label, (int32_t)(cam - 1));
  }
  fclose(f);
  return rc;
}

static int read_msmt(slr_dataset *ds, const slr_domain_cfg *cfg) {
  static const char *const need[] = {"list_train.txt", "list_query.txt", "list_gallery.txt"};
  char base[SLR_CFG_STR + 256];
  SLR_TRY(find_layout_root(cfg->root, need, 3, "MSMT17",
                           "list_train.txt, list_val.txt, list_query.txt, list_gallery.txt "
                           "and train/ + test/ (V1) or mask_train_v2/ + mask_test_v2/ (V2)",
                           base, sizeof base));
  char train_dir[SLR_CFG_STR + 512], test_dir[SLR_CFG_STR + 512];
  snprintf(train_dir, sizeof train_dir, "%s/train", base);
  snprintf(test_dir, sizeof test_dir, "%s/test", base);
  if (!is_dir(train_dir)) {
    snprintf(train_dir, sizeof train_dir, "%s/mask_train_v2", base);
    snprintf(test_dir, sizeof test_dir, "%s/mask_test_v2", base);
  }
  if (!is_dir(train_dir) || !is_dir(test_dir)) {
    char found[1024];
    describe_dir(base, found, sizeof found);
    return SLR_FAIL(SLR_ERR_INPUT,
                    "%s: expected the MSMT17 layout (train/ and test/, or mask_train_v2/ and "
                    "mask_test_v2/, beside the list files), found: %s",
                    base, found);
  }
  const char *lists[SLR_NSPLITS] = {"list_train.txt", "list_query.txt", "list_gallery.txt"};
  for (int k = 0; k < SLR_NSPLITS; k++) {
    split_builder b = {0};
    char list[SLR_CFG_STR + 512];
    snprintf(list, sizeof list, "%s/%s", base, lists[k]);
    const char *dir = k == SLR_TRAIN ? train_dir : test_dir;
    int rc = read_msmt_list(list, dir, &b);
    if (!rc && k == SLR_TRAIN && cfg->use_val) {
      snprintf(list, sizeof list, "%s/list_val.txt", base);
      if (!is_file(list))
        rc = SLR_FAIL(SLR_ERR_INPUT,
                      "%s: missing (MSMT17 training uses train + val; set "
                      "data.<side>.use_val: false to train on list_train.txt only)",
                      list);
      else
        rc = read_msmt_list(list, dir, &b);
    }
    if (!rc && b.n == 0) rc = SLR_FAIL(SLR_ERR_INPUT, "%s: no images listed", list);
    if (!rc) rc = sb_finish(&b, k == SLR_TRAIN, &ds->split[k]);
    sb_free(&b);
    if (rc) return rc;
  }
  return 0;
}

/* ---- generic lists ----------------------------------------------------------------- */

/* Lines "path pid camid" (camid 0-based); relative paths are relative to
 * root when given, else to the list's folder. pid -1 lines are dropped. */
static int read_plain_list(const char *list, const char *root, split_builder *b) {
  FILE *f = fopen(list, "r");
  if (!f) return SLR_FAIL(SLR_ERR_INPUT, "cannot open list file %s: %s", list, strerror(errno));
  char dir[SLR_CFG_STR];
  if (root[0]) {
    snprintf(dir, sizeof dir, "%s", root);
  } else {
    snprintf(dir, sizeof dir, "%s", list);
    char *sl = strrchr(dir, '/');
    if (sl)
      *sl = '\0';
    else
      snprintf(dir, sizeof dir, ".");
  }
  char line[4096];
  int64_t lineno = 0;
  int rc = 0;
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = 0;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == 0 || *s == '#') continue;
    char path[4096], extra;
    long long pid, cam;
    if (sscanf(s, "%4095s %lld %lld %c", path, &pid, &cam, &extra) != 3 || cam < 0 || pid < -1) {
      rc = SLR_FAIL(SLR_ERR_INPUT,
                    "%s:%lld: expected `path pid camid` (pid >= -1, camid >= 0), found \"%s\"",
                    list, (long long)lineno, s);
      break;
    }
    /* ids are 32-bit: a larger one is refused, never wrapped onto another */
    if (pid > INT32_MAX || cam > INT32_MAX) {
      rc = SLR_FAIL(SLR_ERR_INPUT,
                    "%s:%lld: %s %lld is larger than %d, the largest id slr supports, in \"%s\"",
                    list, (long long)lineno, pid > INT32_MAX ? "pid" : "camid",
                    pid > INT32_MAX ? pid : cam, INT32_MAX, s);
      break;
    }
    if (pid == -1) continue;
    rc = sb_add(b, path[0] == '/' ? NULL : dir, path, (int32_t)pid, (int32_t)cam);
  }
  fclose(f);
  return rc;
}

static int read_list(slr_dataset *ds, const slr_domain_cfg *cfg) {
  const char *lists[SLR_NSPLITS] = {cfg->train_list, cfg->query_list, cfg->gallery_list};
  if (!cfg->train_list[0] && !cfg->query_list[0] && !cfg->gallery_list[0])
    return SLR_FAIL(SLR_ERR_INPUT,
                    "format list: no list file given (data.*.train_list, query_list, "
                    "gallery_list)");
  for (int k = 0; k < SLR_NSPLITS; k++) {
    split_builder b = {0};
    int rc = lists[k][0] ? read_plain_list(lists[k], cfg->root, &b) : 0;
    if (!rc) rc = sb_finish(&b, k == SLR_TRAIN, &ds->split[k]);
    sb_free(&b);
    if (rc) return rc;
  }
  return 0;
}

/* ---- entry points ------------------------------------------------------------------ */

int slr_dataset_read(slr_dataset *ds, const slr_domain_cfg *cfg) {
  memset(ds, 0, sizeof *ds);
  snprintf(ds->root, sizeof ds->root, "%s", cfg->root);
  int rc;
  switch (cfg->format) {
  case SLR_FMT_MARKET1501:
    snprintf(ds->name, sizeof ds->name, "Market-1501");
    rc = read_market_like(ds, cfg->root, &market_scheme);
    break;
  case SLR_FMT_DUKEMTMC:
    snprintf(ds->name, sizeof ds->name, "DukeMTMC-reID");
    rc = read_market_like(ds, cfg->root, &duke_scheme);
    break;
  case SLR_FMT_PERSONX:
    snprintf(ds->name, sizeof ds->name, "PersonX");
    rc = read_market_like(ds, cfg->root, &personx_scheme);
    break;
  case SLR_FMT_MSMT17:
    snprintf(ds->name, sizeof ds->name, "MSMT17");
    rc = read_msmt(ds, cfg);
    break;
  case SLR_FMT_LIST:
    snprintf(ds->name, sizeof ds->name, "list");
    rc = read_list(ds, cfg);
    break;
  case SLR_FMT_NONE:
    rc = SLR_FAIL(SLR_ERR_CONFIG, "no data set configured (format none)");
    break;
  default:
    rc = SLR_FAIL(SLR_ERR_CONFIG, "unknown data set format %d", (int)cfg->format);
  }
  if (rc) slr_dataset_free(ds);
  return rc;
}

/* Broadcast a split read by rank 0: sizes, then the path text, offsets,
 * pids and camids. */
static int bcast_split(slr_split *sp, int rank, MPI_Comm comm) {
  int64_t hdr[4] = {sp->n, 0, sp->num_pids, sp->num_cams};
  int64_t *off = NULL;
  int rc = 0;
  if (rank == 0 && sp->n) {
    hdr[1] = (int64_t)(sp->paths[sp->n - 1] - sp->path_block) +
             (int64_t)strlen(sp->paths[sp->n - 1]) + 1;
    off = malloc((size_t)sp->n * sizeof *off);
    if (!off) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory sharing the file list");
    for (int64_t i = 0; off && i < sp->n; i++) off[i] = (int64_t)(sp->paths[i] - sp->path_block);
  }
  SLR_TRY(slr_agree(comm, rc));
  SLR_MPI(MPI_Bcast(hdr, 4, MPI_INT64_T, 0, comm));
  int64_t n = hdr[0], tlen = hdr[1];
  if (rank != 0) {
    memset(sp, 0, sizeof *sp);
    sp->n = n;
    sp->num_pids = (int32_t)hdr[2];
    sp->num_cams = (int32_t)hdr[3];
    size_t m = (size_t)(n ? n : 1);
    sp->path_block = malloc((size_t)(tlen ? tlen : 1));
    sp->paths = malloc(m * sizeof *sp->paths);
    sp->pids = malloc(m * sizeof *sp->pids);
    sp->camids = malloc(m * sizeof *sp->camids);
    off = malloc(m * sizeof *off);
    if (!sp->path_block || !sp->paths || !sp->pids || !sp->camids || !off)
      rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for a file list of %lld images", (long long)n);
  }
  rc = slr_agree(comm, rc);
  /* in pieces below 2^31 bytes (MPI counts are int) */
  const int64_t piece = (int64_t)1 << 30;
  for (int64_t a = 0; !rc && a < tlen; a += piece) {
    int c = (int)(tlen - a < piece ? tlen - a : piece);
    SLR_MPI(MPI_Bcast(sp->path_block + a, c, MPI_CHAR, 0, comm));
  }
  for (int64_t a = 0; !rc && a < n; a += piece / 8) {
    int c = (int)(n - a < piece / 8 ? n - a : piece / 8);
    SLR_MPI(MPI_Bcast(off + a, c, MPI_INT64_T, 0, comm));
    SLR_MPI(MPI_Bcast(sp->pids + a, c, MPI_INT32_T, 0, comm));
    SLR_MPI(MPI_Bcast(sp->camids + a, c, MPI_INT32_T, 0, comm));
  }
  if (!rc && rank != 0)
    for (int64_t i = 0; i < n; i++) sp->paths[i] = sp->path_block + off[i];
  free(off);
  return rc;
}

int slr_dataset_load(slr_dataset *ds, const slr_domain_cfg *cfg, MPI_Comm comm) {
  int rank;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  memset(ds, 0, sizeof *ds);
  /* rank 0 reads the folders or lists (one pass over the file system,
   * however many ranks), the others receive the arrays */
  int rc = slr_agree(comm, rank == 0 ? slr_dataset_read(ds, cfg) : 0);
  if (rc) return rc;
  SLR_MPI(MPI_Bcast(ds->name, sizeof ds->name, MPI_CHAR, 0, comm));
  if (rank != 0) slr_strlcpy(ds->root, cfg->root, sizeof ds->root);
  for (int k = 0; k < SLR_NSPLITS && !rc; k++) rc = bcast_split(&ds->split[k], rank, comm);
  if (rc)
    slr_dataset_free(ds);
  else
    slr_dataset_log(ds);
  return rc;
}

void slr_dataset_free(slr_dataset *ds) {
  for (int k = 0; k < SLR_NSPLITS; k++) {
    slr_split *s = &ds->split[k];
    free(s->paths);
    free(s->path_block);
    free(s->pids);
    free(s->camids);
    memset(s, 0, sizeof *s);
  }
}

void slr_dataset_print(const slr_dataset *ds, FILE *out) {
  static const char *const names[SLR_NSPLITS] = {"train", "query", "gallery"};
  fprintf(out, "=> %s loaded from %s\n", ds->name, ds->root[0] ? ds->root : "(lists)");
  fprintf(out, "  ----------------------------------------\n");
  fprintf(out, "  subset   | # ids | # images | # cameras\n");
  fprintf(out, "  ----------------------------------------\n");
  for (int k = 0; k < SLR_NSPLITS; k++)
    fprintf(out, "  %-8s | %5d | %8lld | %9d\n", names[k], (int)ds->split[k].num_pids,
            (long long)ds->split[k].n, (int)ds->split[k].num_cams);
  fprintf(out, "  ----------------------------------------\n");
}

void slr_dataset_log(const slr_dataset *ds) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (!m) return;
  slr_dataset_print(ds, m);
  fclose(m);
  char *line = buf, *nl;
  while (line && (nl = strchr(line, '\n')) != NULL) {
    *nl = '\0';
    slr_info("%s", line);
    line = nl + 1;
  }
  free(buf);
}
