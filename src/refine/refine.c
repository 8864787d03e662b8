/* The SLR step: pair counts of (previous, current) labels gathered over
 * ranks, the sparse IoU matrix and the projection, soft labels, and the hard
 * labels of the three modes; the parameters from the configuration. Everything
 * after the gather runs on a table of distinct pairs that every rank holds
 * whole and sorted, so every rank computes the same result whatever the rank
 * count. */
#include "slr/refine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int64_t prev, cur, count, minidx;
} pair_t;

/* The index of `value` in names[0 .. n), or SLR_ERR_CONFIG naming the key. */
static int parse_name(const char *key, const char *value, const char *const *names, int n,
                      int *out) {
  for (int i = 0; i < n; i++)
    if (strcmp(value, names[i]) == 0) {
      *out = i;
      return 0;
    }
  char list[160] = "";
  for (int i = 0; i < n; i++) {
    strncat(list, names[i], sizeof list - strlen(list) - 1);
    if (i + 1 < n) strncat(list, "|", sizeof list - strlen(list) - 1);
  }
  return SLR_FAIL(SLR_ERR_CONFIG, "%s: \"%s\" is not one of %s", key, value, list);
}

static const char *const mode_names[] = {"none", "argmax", "hierarchical"};

int slr_refine_mode_parse(const char *name, slr_refine_mode *out) {
  int v = 0;
  SLR_TRY(parse_name("refine.mode", name, mode_names, 3, &v));
  *out = (slr_refine_mode)v;
  return 0;
}

const char *slr_refine_mode_name(slr_refine_mode mode) {
  return (unsigned)mode < 3 ? mode_names[mode] : "unknown";
}

int slr_refine_params_from_config(const slr_refine_cfg *c, slr_refine_params *p) {
  memset(p, 0, sizeof *p);
  /* the configuration's enum keys are the indices of the names, in the
   * enums' order (checked by the configuration's key table) */
  p->mode = (slr_refine_mode)c->mode;
  p->linkage = (slr_linkage)c->linkage;
  p->distance = (slr_agglo_metric)c->distance;
  p->threshold_mode = (slr_refine_threshold_mode)c->threshold_mode;
  p->alpha_schedule = (slr_refine_alpha_schedule)c->alpha_schedule;
  p->projection = (slr_refine_projection)c->projection;
  p->previous = (slr_refine_previous)c->previous;
  p->memory = (slr_refine_memory)c->memory;
  p->alpha = c->alpha;
  p->alpha_end = c->alpha_end;
  p->threshold = c->threshold;
  p->reclaim_outliers = c->reclaim_outliers;
  p->soft_weight = c->soft_weight;
  if (!(p->alpha >= 0 && p->alpha <= 1))
    return SLR_FAIL(SLR_ERR_CONFIG, "refine.alpha: %g is outside [0, 1]", p->alpha);
  if (!(p->alpha_end >= 0 && p->alpha_end <= 1))
    return SLR_FAIL(SLR_ERR_CONFIG, "refine.alpha_end: %g is outside [0, 1]", p->alpha_end);
  if (!(p->threshold >= 0))
    return SLR_FAIL(SLR_ERR_CONFIG, "refine.threshold: %g is negative", p->threshold);
  if (!(p->soft_weight >= 0))
    return SLR_FAIL(SLR_ERR_CONFIG, "refine.soft_weight: %g is negative", p->soft_weight);
  if (p->linkage == SLR_LINKAGE_WARD && p->distance != SLR_AGGLO_EUCLIDEAN &&
      p->distance != SLR_AGGLO_HELLINGER)
    return SLR_FAIL(SLR_ERR_CONFIG, "refine.linkage: \"ward\" needs refine.distance euclidean or "
                    "hellinger, not \"%s\"", slr_config_enum_name("refine.distance", c->distance));
  return 0;
}

double slr_refine_alpha_at(const slr_refine_params *p, int64_t epoch, int64_t epochs) {
  if (p->alpha_schedule != SLR_ALPHA_LINEAR || epochs <= 1) return p->alpha;
  if (epoch <= 0) return p->alpha;
  if (epoch >= epochs - 1) return p->alpha_end;
  return p->alpha + (p->alpha_end - p->alpha) * ((double)epoch / (double)(epochs - 1));
}

double slr_refine_threshold_at(const slr_refine_params *p) {
  return p->threshold_mode == SLR_THRESHOLD_ALPHA ? p->threshold * p->alpha : p->threshold;
}

void slr_csr_free(slr_csr *m) {
  free(m->indptr);
  free(m->indices);
  free(m->values);
  memset(m, 0, sizeof *m);
}

void slr_refine_result_free(slr_refine_result *r) {
  free(r->labels);
  slr_csr_free(&r->soft);
  slr_csr_free(&r->iou);
  slr_csr_free(&r->proj);
  memset(r, 0, sizeof *r);
}

static int cmp_pair(const void *x, const void *y) {
  const pair_t *a = x, *b = y;
  if (a->prev != b->prev) return a->prev < b->prev ? -1 : 1;
  if (a->cur != b->cur) return a->cur < b->cur ? -1 : 1;
  return 0;
}

/* sort and merge equal (prev, cur): counts add, minidx is the minimum */
static int64_t compress_pairs(pair_t *p, int64_t n) {
  if (n == 0) return 0;
  qsort(p, (size_t)n, sizeof *p, cmp_pair);
  int64_t m = 0;
  for (int64_t i = 1; i < n; i++) {
    if (p[i].prev == p[m].prev && p[i].cur == p[m].cur) {
      p[m].count += p[i].count;
      if (p[i].minidx < p[m].minidx) p[m].minidx = p[i].minidx;
    } else {
      p[++m] = p[i];
    }
  }
  return m + 1;
}

static int64_t find_pair(const pair_t *p, int64_t m, int64_t prev, int64_t cur) {
  int64_t lo = 0, hi = m - 1;
  pair_t key = {prev, cur, 0, 0};
  while (lo <= hi) {
    int64_t mid = lo + (hi - lo) / 2;
    int c = cmp_pair(&p[mid], &key);
    if (c == 0) return mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

/* Gather every rank's local pair table into one sorted table on all ranks. */
static int gather_pairs(MPI_Comm comm, pair_t *local, int64_t nlocal, pair_t **all,
                        int64_t *nall) {
  int size;
  SLR_MPI(MPI_Comm_size(comm, &size));
  int *counts = malloc((size_t)size * sizeof(int)), *displs = malloc((size_t)size * sizeof(int));
  int rc = counts && displs ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory gathering label pairs");
  if (!rc && nlocal * 4 > INT32_MAX) rc = SLR_FAIL(SLR_ERR, "too many label pairs on one rank");
  rc = slr_agree(comm, rc);
  if (rc) {
    free(counts);
    free(displs);
    return rc;
  }
  int mine = (int)(nlocal * 4);
  SLR_MPI(MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, comm));
  int64_t total = 0;
  for (int r = 0; r < size; r++) {
    displs[r] = (int)total;
    total += counts[r];
  }
  pair_t *buf = NULL;
  if (total > INT32_MAX)
    rc = SLR_FAIL(SLR_ERR, "too many label pairs (%lld) to gather", (long long)total / 4);
  else if (!(buf = malloc((size_t)(total > 0 ? total : 4) * sizeof(int64_t))))
    rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory gathering label pairs");
  rc = slr_agree(comm, rc);
  if (!rc)
    rc = MPI_Allgatherv(local, mine, MPI_INT64_T, buf, counts, displs, MPI_INT64_T, comm) ==
                 MPI_SUCCESS
             ? 0
             : SLR_FAIL(SLR_ERR, "MPI_Allgatherv of label pairs failed");
  free(counts);
  free(displs);
  if (rc) {
    free(buf);
    return rc;
  }
  *nall = compress_pairs(buf, total / 4);
  *all = buf;
  return 0;
}

/* Renumber cluster ids of the pairs (-1 kept) 0..K-1 in the order of the
 * clusters' lowest global sample index. */
static int renumber_by_first_sample(const pair_t *p, int64_t m, int32_t *lab, int64_t *k_out) {
  int64_t k = 0;
  for (int64_t i = 0; i < m; i++)
    if (lab[i] + 1 > k) k = lab[i] + 1;
  int64_t *first = malloc((size_t)(k > 0 ? k : 1) * sizeof(int64_t));
  int64_t *order = malloc((size_t)(k > 0 ? k : 1) * sizeof(int64_t));
  int32_t *map = malloc((size_t)(k > 0 ? k : 1) * sizeof(int32_t));
  if (!first || !order || !map) {
    free(first);
    free(order);
    free(map);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory renumbering clusters");
  }
  for (int64_t c = 0; c < k; c++) first[c] = INT64_MAX;
  for (int64_t i = 0; i < m; i++)
    if (lab[i] >= 0 && p[i].minidx < first[lab[i]]) first[lab[i]] = p[i].minidx;
  /* clusters that lost every member (possible in argmax) get no number */
  int64_t used = 0;
  for (int64_t c = 0; c < k; c++)
    if (first[c] != INT64_MAX) order[used++] = c;
  /* insertion-free: sort the used ids by first sample */
  for (int64_t a = 1; a < used; a++) {
    int64_t v = order[a], b = a - 1;
    while (b >= 0 && first[order[b]] > first[v]) {
      order[b + 1] = order[b];
      b--;
    }
    order[b + 1] = v;
  }
  for (int64_t c = 0; c < k; c++) map[c] = -1;
  for (int64_t r = 0; r < used; r++) map[order[r]] = (int32_t)r;
  for (int64_t i = 0; i < m; i++)
    if (lab[i] >= 0) lab[i] = map[lab[i]];
  *k_out = used;
  free(first);
  free(order);
  free(map);
  return 0;
}


/* Parameters and labels; the cluster counts over all ranks. Collective. */
static int check_inputs(MPI_Comm comm, const slr_refine_params *p, int64_t row0, int64_t n,
                        const int32_t *y_prev, const int32_t *y_cur, slr_refine_result *out) {
  int rc = 0;
  if (!(p->alpha >= 0 && p->alpha <= 1))
    rc = SLR_FAIL(SLR_ERR_CONFIG, "refine.alpha %g is outside [0, 1]", p->alpha);
  if (!rc && (unsigned)p->mode > SLR_REFINE_HIERARCHICAL)
    rc = SLR_FAIL(SLR_ERR_CONFIG, "refine.mode %d is unknown", (int)p->mode);
  if (!rc && (unsigned)p->projection > SLR_PROJECTION_TRANSITION)
    rc = SLR_FAIL(SLR_ERR_CONFIG, "refine.projection %d is unknown", (int)p->projection);
  if (!rc && (unsigned)p->threshold_mode > SLR_THRESHOLD_ALPHA)
    rc = SLR_FAIL(SLR_ERR_CONFIG, "refine.threshold_mode %d is unknown", (int)p->threshold_mode);
  if (!rc && p->mode == SLR_REFINE_HIERARCHICAL && !(p->threshold >= 0))
    rc = SLR_FAIL(SLR_ERR_CONFIG, "refine.threshold %g is negative", p->threshold);
  int64_t mx[2] = {-1, -1};
  for (int64_t i = 0; !rc && i < n; i++) {
    if (y_cur[i] < -1 || (y_prev && y_prev[i] < -1)) {
      rc = SLR_FAIL(SLR_ERR_INPUT, "label %d of sample %lld is below -1",
                    y_cur[i] < -1 ? y_cur[i] : y_prev[i], (long long)(row0 + i));
      break;
    }
    if (y_prev && y_prev[i] > mx[0]) mx[0] = y_prev[i];
    if (y_cur[i] > mx[1]) mx[1] = y_cur[i];
  }
  SLR_TRY(slr_agree(comm, rc));
  int64_t gmx[2];
  SLR_MPI(MPI_Allreduce(mx, gmx, 2, MPI_INT64_T, MPI_MAX, comm));
  out->k_prev = gmx[0] + 1;
  out->k_cur = gmx[1] + 1;
  return 0;
}

/* The distinct pairs of all ranks, sorted, on every rank. Collective. */
static int pair_table(MPI_Comm comm, int64_t row0, int64_t n, const int32_t *y_prev,
                      const int32_t *y_cur, pair_t **pairs, int64_t *m) {
  pair_t *local = malloc((size_t)(n > 0 ? n : 1) * sizeof(pair_t));
  int rc = local ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory (%lld samples)", (long long)n);
  SLR_TRY(slr_agree(comm, rc));
  for (int64_t i = 0; i < n; i++)
    local[i] = (pair_t){y_prev ? y_prev[i] : -1, y_cur[i], 1, row0 + i};
  const int64_t nlocal = compress_pairs(local, n);
  rc = gather_pairs(comm, local, nlocal, pairs, m);
  free(local);
  return rc;
}

static int csr_alloc(slr_csr *c, int64_t nrows, int64_t ncols, int64_t nnz) {
  c->nrows = nrows;
  c->ncols = ncols;
  c->indptr = calloc((size_t)nrows + 1, sizeof(int64_t));
  c->indices = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int32_t));
  c->values = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(double));
  if (!c->indptr || !c->indices || !c->values)
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for a %lld x %lld sparse matrix (%lld entries)",
                    (long long)nrows, (long long)ncols, (long long)nnz);
  return 0;
}

/* The IoU matrix C and the projection P (same sparsity) from the sorted
 * pairs. P[a][b] = num[e] / den[a], kept apart so that the soft labels are
 * (1 - alpha) * num / den in one rounding order. */
typedef struct {
  slr_csr *C, *P;
  double *num, *den; /* per entry of C, per row of C */
} proj_t;

static int build_projection(const slr_refine_params *p, const pair_t *pairs, int64_t m,
                            const int64_t *sa, const int64_t *sb, proj_t *pr) {
  slr_csr *C = pr->C, *P = pr->P;
  int64_t nnz = 0;
  for (int64_t i = 0; i < m; i++) nnz += pairs[i].prev >= 0 && pairs[i].cur >= 0;
  SLR_TRY(csr_alloc(C, C->nrows, C->ncols, nnz));
  SLR_TRY(csr_alloc(P, C->nrows, C->ncols, nnz));
  pr->num = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(double));
  pr->den = malloc((size_t)(C->nrows > 0 ? C->nrows : 1) * sizeof(double));
  if (!pr->num || !pr->den) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the projection");
  int64_t e = 0;
  for (int64_t i = 0; i < m; i++) {
    const pair_t *q = &pairs[i];
    if (q->prev < 0 || q->cur < 0) continue;
    C->indptr[q->prev + 1]++;
    C->indices[e] = (int32_t)q->cur;
    const double iou = (double)q->count / (double)(sa[q->prev] + sb[q->cur] - q->count);
    C->values[e] = iou;
    pr->num[e++] = p->projection == SLR_PROJECTION_TRANSITION ? (double)q->count : iou;
  }
  for (int64_t r = 0; r < C->nrows; r++) C->indptr[r + 1] += C->indptr[r];
  for (int64_t a = 0; a < C->nrows; a++) {
    double rowsum = 0;
    for (int64_t t = C->indptr[a]; t < C->indptr[a + 1]; t++) rowsum += C->values[t];
    pr->den[a] = p->projection == SLR_PROJECTION_ROW          ? rowsum
                 : p->projection == SLR_PROJECTION_TRANSITION ? (double)sa[a]
                                                              : 1.0;
  }
  memcpy(P->indptr, C->indptr, (size_t)(C->nrows + 1) * sizeof(int64_t));
  memcpy(P->indices, C->indices, (size_t)(nnz > 0 ? nnz : 0) * sizeof(int32_t));
  for (int64_t a = 0; a < C->nrows; a++)
    for (int64_t t = C->indptr[a]; t < C->indptr[a + 1]; t++)
      P->values[t] = pr->den[a] > 0 ? pr->num[t] / pr->den[a] : 0.0;
  return 0;
}

/* The soft vector of each pair (slr_refine_soft_label), as sorted sparse
 * rows (zeros dropped). */
static int build_soft(const pair_t *pairs, int64_t m, int has_prev, double alpha,
                      const proj_t *pr, slr_csr *S) {
  const slr_csr *P = pr->P;
  int64_t nnz = 0;
  for (int64_t i = 0; i < m; i++) {
    int64_t c = 0;
    if (has_prev && pairs[i].prev >= 0) c = P->indptr[pairs[i].prev + 1] - P->indptr[pairs[i].prev];
    nnz += c + (pairs[i].cur >= 0); /* the current label may be among the columns */
  }
  SLR_TRY(csr_alloc(S, m, P->ncols, nnz));
  int64_t e = 0;
  for (int64_t i = 0; i < m; i++) {
    e += slr_refine_soft_label(alpha, has_prev ? P : NULL, pairs[i].prev, pairs[i].cur,
                               S->indices + e, S->values + e);
    S->indptr[i + 1] = e;
  }
  return 0;
}

/* argmax of each pair's soft vector (the lowest column on ties). */
static void labels_argmax(const slr_refine_params *p, const pair_t *pairs, int64_t m,
                          const slr_csr *S, int32_t *lab) {
  for (int64_t i = 0; i < m; i++) {
    lab[i] = -1;
    if (pairs[i].cur < 0 && !p->reclaim_outliers) continue;
    double best = 0;
    for (int64_t t = S->indptr[i]; t < S->indptr[i + 1]; t++)
      if (S->values[t] > best) {
        best = S->values[t];
        lab[i] = S->indices[t];
      }
  }
}

/* Hierarchical: cluster the eligible pairs' soft vectors, weighted by count. */
static int labels_hierarchical(const slr_refine_params *p, const pair_t *pairs, int64_t m,
                               const slr_csr *S, int32_t *lab, int64_t *nclustered) {
  int64_t *sel = malloc((size_t)(m > 0 ? m : 1) * sizeof(int64_t));
  int64_t *indptr = malloc((size_t)(m + 1) * sizeof(int64_t));
  int64_t *w = malloc((size_t)(m > 0 ? m : 1) * sizeof(int64_t));
  int32_t *cut = malloc((size_t)(m > 0 ? m : 1) * sizeof(int32_t));
  int rc = sel && indptr && w && cut ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory in the SLR "
                                                    "clustering (%lld pairs)", (long long)m);
  int64_t ne = 0;
  for (int64_t i = 0; !rc && i < m; i++) {
    lab[i] = -1;
    const int zero = S->indptr[i + 1] == S->indptr[i];
    const int blocked = pairs[i].cur < 0 && !p->reclaim_outliers;
    if (!zero && !blocked) sel[ne++] = i;
  }
  *nclustered = ne;
  /* the selected rows, in place: their entries are contiguous ranges of S */
  int32_t *ind = NULL;
  double *val = NULL;
  if (!rc) {
    int64_t nnz = 0;
    indptr[0] = 0;
    for (int64_t a = 0; a < ne; a++) {
      nnz += S->indptr[sel[a] + 1] - S->indptr[sel[a]];
      indptr[a + 1] = nnz;
      w[a] = pairs[sel[a]].count;
    }
    ind = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int32_t));
    val = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(double));
    if (!ind || !val) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory in the SLR clustering");
    for (int64_t a = 0; !rc && a < ne; a++) {
      const int64_t s0 = S->indptr[sel[a]], len = indptr[a + 1] - indptr[a];
      memcpy(ind + indptr[a], S->indices + s0, (size_t)len * sizeof(int32_t));
      memcpy(val + indptr[a], S->values + s0, (size_t)len * sizeof(double));
    }
  }
  if (!rc && ne > 0) {
    const slr_sparse_points x = {ne, S->ncols > 0 ? S->ncols : 1, indptr, ind, val, w};
    rc = slr_agglo_cut_sparse(&x, p->linkage, p->distance, slr_refine_threshold_at(p), cut, NULL);
  }
  for (int64_t a = 0; !rc && a < ne; a++) lab[sel[a]] = cut[a];
  free(ind);
  free(val);
  free(sel);
  free(indptr);
  free(w);
  free(cut);
  return rc;
}

/* The hard labels of the pairs (renumbered) and their counts. */
static int pair_labels(const slr_refine_params *p, int has_prev, const pair_t *pairs, int64_t m,
                       const slr_csr *S, int32_t *lab, slr_refine_result *out) {
  int64_t k = 0;
  int rc = 0;
  if (!has_prev || p->mode == SLR_REFINE_NONE) {
    for (int64_t i = 0; i < m; i++) lab[i] = (int32_t)pairs[i].cur;
    k = out->k_cur;
  } else if (p->mode == SLR_REFINE_ARGMAX) {
    labels_argmax(p, pairs, m, S, lab);
    rc = renumber_by_first_sample(pairs, m, lab, &k);
  } else {
    rc = labels_hierarchical(p, pairs, m, S, lab, &out->nclustered);
    if (!rc) rc = renumber_by_first_sample(pairs, m, lab, &k);
  }
  out->nclusters = k;
  for (int64_t i = 0; !rc && i < m; i++)
    if (lab[i] < 0) out->noutliers += pairs[i].count;
  return rc;
}

/* The local rows' labels and soft labels through the pair table. */
static int scatter_rows(const pair_t *pairs, int64_t m, const slr_csr *PS, const int32_t *plab,
                        int64_t n, const int32_t *y_prev, const int32_t *y_cur,
                        slr_refine_result *out) {
  out->labels = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
  int64_t *which = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
  slr_csr *S = &out->soft;
  S->nrows = n;
  S->ncols = PS->ncols;
  S->indptr = calloc((size_t)n + 1, sizeof(int64_t));
  int rc = out->labels && which && S->indptr ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for "
                                                            "labels");
  int64_t nnz = 0;
  for (int64_t i = 0; !rc && i < n; i++) {
    which[i] = find_pair(pairs, m, y_prev ? y_prev[i] : -1, y_cur[i]);
    nnz += PS->indptr[which[i] + 1] - PS->indptr[which[i]];
    S->indptr[i + 1] = nnz;
    out->labels[i] = plab[which[i]];
  }
  if (!rc) {
    S->indices = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int32_t));
    S->values = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(double));
    if (!S->indices || !S->values) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for soft labels");
  }
  for (int64_t i = 0; !rc && i < n; i++) {
    const int64_t q = which[i], len = PS->indptr[q + 1] - PS->indptr[q];
    memcpy(S->indices + S->indptr[i], PS->indices + PS->indptr[q], (size_t)len * sizeof(int32_t));
    memcpy(S->values + S->indptr[i], PS->values + PS->indptr[q], (size_t)len * sizeof(double));
  }
  free(which);
  return rc;
}

int slr_refine(MPI_Comm comm, const slr_refine_params *p, int64_t row0, int64_t n,
               const int32_t *y_prev, const int32_t *y_cur, slr_refine_result *out) {
  memset(out, 0, sizeof *out);
  SLR_TRY(check_inputs(comm, p, row0, n, y_prev, y_cur, out));
  const int64_t kc = out->k_cur, kp = out->k_prev;
  pair_t *pairs = NULL;
  int64_t m = 0;
  SLR_TRY(pair_table(comm, row0, n, y_prev, y_cur, &pairs, &m));
  out->npairs = m;
  /* cluster sizes at t-1 and t, over all samples */
  int64_t *sa = calloc((size_t)(kp > 0 ? kp : 1), sizeof(int64_t));
  int64_t *sb = calloc((size_t)(kc > 0 ? kc : 1), sizeof(int64_t));
  int32_t *plab = malloc((size_t)(m > 0 ? m : 1) * sizeof(int32_t));
  int rc = sa && sb && plab ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory in the SLR step");
  for (int64_t i = 0; !rc && i < m; i++) {
    if (pairs[i].prev >= 0) sa[pairs[i].prev] += pairs[i].count;
    if (pairs[i].cur >= 0) sb[pairs[i].cur] += pairs[i].count;
  }
  out->iou.nrows = out->proj.nrows = kp;
  out->iou.ncols = out->proj.ncols = kc;
  proj_t pr = {&out->iou, &out->proj, NULL, NULL};
  slr_csr psoft = {0}; /* soft vector of each pair */
  if (!rc) rc = build_projection(p, pairs, m, sa, sb, &pr);
  if (!rc) rc = build_soft(pairs, m, y_prev != NULL, y_prev ? p->alpha : 1.0, &pr, &psoft);
  if (!rc) rc = pair_labels(p, y_prev != NULL, pairs, m, &psoft, plab, out);
  if (!rc) rc = scatter_rows(pairs, m, &psoft, plab, n, y_prev, y_cur, out);
  free(pr.num);
  free(pr.den);
  free(sa);
  free(sb);
  free(plab);
  free(pairs);
  slr_csr_free(&psoft);
  rc = slr_agree(comm, rc);
  if (rc) slr_refine_result_free(out);
  return rc;
}
