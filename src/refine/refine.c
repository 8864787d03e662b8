/* The SLR step: pair counts of (previous, current) labels gathered over
 * ranks, the sparse IoU matrix and its row-normalised projection, soft
 * labels, and the hard labels of the three modes. Everything after the
 * gather runs on a table of distinct pairs that every rank holds whole and
 * sorted, so every rank computes the same result whatever the rank count. */
#include "slr/refine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int64_t prev, cur, count, minidx;
} pair_t;

int slr_refine_mode_parse(const char *name, slr_refine_mode *out) {
  static const char *names[] = {"none", "argmax", "hierarchical"};
  for (int i = 0; i < 3; i++)
    if (strcmp(name, names[i]) == 0) {
      *out = (slr_refine_mode)i;
      return 0;
    }
  return SLR_FAIL(SLR_ERR_CONFIG, "refine mode \"%s\" is not one of none|argmax|hierarchical",
                  name);
}

const char *slr_refine_mode_name(slr_refine_mode mode) {
  switch (mode) {
  case SLR_REFINE_NONE: return "none";
  case SLR_REFINE_ARGMAX: return "argmax";
  case SLR_REFINE_HIERARCHICAL: return "hierarchical";
  }
  return "unknown";
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

/* Euclidean distance between two sorted sparse vectors. */
static double sparse_dist(const int32_t *ia, const double *va, int64_t na, const int32_t *ib,
                          const double *vb, int64_t nb) {
  double s = 0;
  int64_t i = 0, j = 0;
  while (i < na || j < nb) {
    double d;
    if (j >= nb || (i < na && ia[i] < ib[j]))
      d = va[i++];
    else if (i >= na || ib[j] < ia[i])
      d = -vb[j++];
    else
      d = va[i++] - vb[j++];
    s += d * d;
  }
  return sqrt(s);
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

/* Hierarchical: cluster the eligible pairs' soft vectors, weighted by count. */
static int cluster_pairs(const slr_refine_params *p, const pair_t *pairs, int64_t m,
                         const slr_csr *soft, int32_t *lab, int64_t *nclustered) {
  int64_t *sel = malloc((size_t)(m > 0 ? m : 1) * sizeof(int64_t));
  if (!sel) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory in the SLR clustering");
  int64_t ne = 0;
  for (int64_t i = 0; i < m; i++) {
    lab[i] = -1;
    int zero = soft->indptr[i + 1] == soft->indptr[i];
    int reclaim_blocked = pairs[i].cur < 0 && !p->reclaim_outliers;
    if (!zero && !reclaim_blocked) sel[ne++] = i;
  }
  *nclustered = ne;
  int rc = 0;
  if (ne == 1) lab[sel[0]] = 0;
  if (ne >= 2) {
    int64_t npd = ne * (ne - 1) / 2;
    double *dist = malloc((size_t)npd * sizeof(double));
    int64_t *w = malloc((size_t)ne * sizeof(int64_t));
    slr_merge *z = malloc((size_t)(ne - 1) * sizeof(slr_merge));
    int32_t *cut = malloc((size_t)ne * sizeof(int32_t));
    if (!dist || !w || !z || !cut)
      rc = SLR_FAIL(SLR_ERR_NOMEM,
                    "out of memory in the SLR clustering (%lld distinct label pairs)",
                    (long long)ne);
    if (!rc) {
      for (int64_t a = 0; a < ne; a++) w[a] = pairs[sel[a]].count;
#pragma omp parallel for schedule(dynamic, 16)
      for (int64_t a = 0; a < ne; a++) {
        const int64_t ia = sel[a];
        const int64_t base = a * ne - a * (a + 1) / 2 - a - 1; /* condensed row a */
        for (int64_t b = a + 1; b < ne; b++) {
          const int64_t ib = sel[b];
          dist[base + b] = sparse_dist(
              soft->indices + soft->indptr[ia], soft->values + soft->indptr[ia],
              soft->indptr[ia + 1] - soft->indptr[ia], soft->indices + soft->indptr[ib],
              soft->values + soft->indptr[ib], soft->indptr[ib + 1] - soft->indptr[ib]);
        }
      }
      rc = slr_agglo_tree_dist(dist, ne, 0, w, p->linkage, z);
    }
    int64_t k = 0;
    if (!rc) rc = slr_agglo_cut_distance(z, ne, p->threshold, cut, &k);
    if (!rc)
      for (int64_t a = 0; a < ne; a++) lab[sel[a]] = cut[a];
    free(dist);
    free(w);
    free(z);
    free(cut);
  }
  free(sel);
  return rc;
}

int slr_refine(MPI_Comm comm, const slr_refine_params *p, int64_t row0, int64_t n,
               const int32_t *y_prev, const int32_t *y_cur, slr_refine_result *out) {
  memset(out, 0, sizeof *out);
  int rc = 0;
  if (!(p->alpha >= 0 && p->alpha <= 1))
    rc = SLR_FAIL(SLR_ERR_CONFIG, "refine.alpha %g is outside [0, 1]", p->alpha);
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
  const int64_t kc = out->k_cur;

  /* local pair table */
  pair_t *local = malloc((size_t)(n > 0 ? n : 1) * sizeof(pair_t));
  rc = local ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory (%lld samples)", (long long)n);
  SLR_TRY(slr_agree(comm, rc));
  for (int64_t i = 0; i < n; i++)
    local[i] = (pair_t){y_prev ? y_prev[i] : -1, y_cur[i], 1, row0 + i};
  int64_t nlocal = compress_pairs(local, n);
  pair_t *pairs = NULL;
  int64_t m = 0;
  rc = gather_pairs(comm, local, nlocal, &pairs, &m);
  free(local);
  if (rc) return rc;
  out->npairs = m;

  /* cluster sizes at t-1 and t, over all samples */
  int64_t *sa = calloc((size_t)(out->k_prev > 0 ? out->k_prev : 1), sizeof(int64_t));
  int64_t *sb = calloc((size_t)(kc > 0 ? kc : 1), sizeof(int64_t));
  int32_t *plab = malloc((size_t)(m > 0 ? m : 1) * sizeof(int32_t));
  slr_csr psoft = {0}; /* soft vector of each pair */
  psoft.nrows = m;
  psoft.ncols = kc;
  psoft.indptr = calloc((size_t)m + 1, sizeof(int64_t));
  rc = sa && sb && plab && psoft.indptr ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory in the SLR step");
  for (int64_t i = 0; !rc && i < m; i++) {
    if (pairs[i].prev >= 0) sa[pairs[i].prev] += pairs[i].count;
    if (pairs[i].cur >= 0) sb[pairs[i].cur] += pairs[i].count;
  }

  /* IoU matrix: pairs with both labels, already sorted by (prev, cur) */
  slr_csr *C = &out->iou;
  C->nrows = out->k_prev;
  C->ncols = kc;
  if (!rc) {
    int64_t nnz = 0;
    for (int64_t i = 0; i < m; i++) nnz += pairs[i].prev >= 0 && pairs[i].cur >= 0;
    C->indptr = calloc((size_t)C->nrows + 1, sizeof(int64_t));
    C->indices = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int32_t));
    C->values = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(double));
    if (!C->indptr || !C->indices || !C->values)
      rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the IoU matrix");
    int64_t e = 0;
    for (int64_t i = 0; !rc && i < m; i++) {
      const pair_t *q = &pairs[i];
      if (q->prev < 0 || q->cur < 0) continue;
      C->indptr[q->prev + 1]++;
      C->indices[e] = (int32_t)q->cur;
      C->values[e++] = (double)q->count / (double)(sa[q->prev] + sb[q->cur] - q->count);
    }
    for (int64_t r = 0; !rc && r < C->nrows; r++) C->indptr[r + 1] += C->indptr[r];
  }

  /* soft vector of each pair: alpha e_cur + (1 - alpha) P[prev] */
  if (!rc) {
    int64_t nnz = 0;
    for (int64_t i = 0; i < m; i++) {
      int64_t c = 0;
      if (y_prev && pairs[i].prev >= 0)
        c = C->indptr[pairs[i].prev + 1] - C->indptr[pairs[i].prev];
      /* the current label may already be among the projection's columns */
      nnz += c + (pairs[i].cur >= 0);
    }
    psoft.indices = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int32_t));
    psoft.values = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(double));
    if (!psoft.indices || !psoft.values) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for soft labels");
    int64_t e = 0;
    const double alpha = y_prev ? p->alpha : 1.0;
    for (int64_t i = 0; !rc && i < m; i++) {
      const int64_t a = pairs[i].prev, b = pairs[i].cur;
      int placed = b < 0 || alpha == 0.0;
      if (y_prev && a >= 0) {
        double rowsum = 0;
        for (int64_t t = C->indptr[a]; t < C->indptr[a + 1]; t++) rowsum += C->values[t];
        for (int64_t t = C->indptr[a]; t < C->indptr[a + 1]; t++) {
          const int32_t col = C->indices[t];
          if (!placed && b < col) {
            psoft.indices[e] = (int32_t)b;
            psoft.values[e++] = alpha;
            placed = 1;
          }
          double v = rowsum > 0 ? (1.0 - alpha) * C->values[t] / rowsum : 0.0;
          if (col == b) {
            v += alpha;
            placed = 1;
          }
          if (v == 0.0) continue;
          psoft.indices[e] = col;
          psoft.values[e++] = v;
        }
      }
      if (!placed && alpha > 0) {
        psoft.indices[e] = (int32_t)b;
        psoft.values[e++] = alpha;
      }
      psoft.indptr[i + 1] = e;
    }
  }

  /* hard labels of each pair */
  int64_t k = 0;
  if (!rc) {
    if (!y_prev || p->mode == SLR_REFINE_NONE) {
      for (int64_t i = 0; i < m; i++) plab[i] = (int32_t)pairs[i].cur;
      k = kc;
    } else if (p->mode == SLR_REFINE_ARGMAX) {
      for (int64_t i = 0; i < m; i++) {
        plab[i] = -1;
        if (pairs[i].cur < 0 && !p->reclaim_outliers) continue;
        double best = 0;
        for (int64_t t = psoft.indptr[i]; t < psoft.indptr[i + 1]; t++)
          if (psoft.values[t] > best) { /* strict: the lowest column wins ties */
            best = psoft.values[t];
            plab[i] = psoft.indices[t];
          }
      }
      rc = renumber_by_first_sample(pairs, m, plab, &k);
    } else {
      rc = cluster_pairs(p, pairs, m, &psoft, plab, &out->nclustered);
      if (!rc) rc = renumber_by_first_sample(pairs, m, plab, &k);
    }
  }
  out->nclusters = k;
  for (int64_t i = 0; !rc && i < m; i++)
    if (plab[i] < 0) out->noutliers += pairs[i].count;

  /* local rows: labels and soft labels through the pair table */
  if (!rc) {
    out->labels = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    slr_csr *S = &out->soft;
    S->nrows = n;
    S->ncols = kc;
    S->indptr = calloc((size_t)n + 1, sizeof(int64_t));
    int64_t *which = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!out->labels || !S->indptr || !which) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for labels");
    int64_t nnz = 0;
    for (int64_t i = 0; !rc && i < n; i++) {
      which[i] = find_pair(pairs, m, y_prev ? y_prev[i] : -1, y_cur[i]);
      nnz += psoft.indptr[which[i] + 1] - psoft.indptr[which[i]];
      S->indptr[i + 1] = nnz;
      out->labels[i] = plab[which[i]];
    }
    if (!rc) {
      S->indices = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int32_t));
      S->values = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(double));
      if (!S->indices || !S->values) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for soft labels");
    }
    for (int64_t i = 0; !rc && i < n; i++) {
      const int64_t q = which[i], len = psoft.indptr[q + 1] - psoft.indptr[q];
      memcpy(S->indices + S->indptr[i], psoft.indices + psoft.indptr[q], (size_t)len * sizeof(int32_t));
      memcpy(S->values + S->indptr[i], psoft.values + psoft.indptr[q], (size_t)len * sizeof(double));
    }
    free(which);
  }
  free(sa);
  free(sb);
  free(plab);
  free(pairs);
  slr_csr_free(&psoft);
  rc = slr_agree(comm, rc);
  if (rc) slr_refine_result_free(out);
  return rc;
}
