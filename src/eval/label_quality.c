/* Quality of pseudo labels against true identities: NMI, ARI and pairwise
 * precision/recall from the contingency table, which is gathered over ranks
 * as sparse (label, identity, count) cells. Outliers are singletons. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/eval.h"

typedef struct {
  int64_t a, b, n;
} cell_t;

static int cmp_cell(const void *x, const void *y) {
  const cell_t *p = x, *q = y;
  if (p->a != q->a) return p->a < q->a ? -1 : 1;
  if (p->b != q->b) return p->b < q->b ? -1 : 1;
  return 0;
}

static int64_t merge_cells(cell_t *c, int64_t n) {
  if (n == 0) return 0;
  qsort(c, (size_t)n, sizeof *c, cmp_cell);
  int64_t m = 0;
  for (int64_t i = 1; i < n; i++) {
    if (c[i].a == c[m].a && c[i].b == c[m].b)
      c[m].n += c[i].n;
    else
      c[++m] = c[i];
  }
  return m + 1;
}

static double comb2(double x) { return x * (x - 1) / 2; }

int slr_label_quality_compute(MPI_Comm comm, int64_t n, const int32_t *labels,
                              const int32_t *truth, slr_label_quality *q) {
  memset(q, 0, sizeof *q);
  int size, rc = 0;
  SLR_MPI(MPI_Comm_size(comm, &size));
  /* cells of clustered samples; outliers are tallied per identity */
  cell_t *cells = malloc((size_t)(n > 0 ? n : 1) * sizeof(cell_t));
  if (!cells) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  int64_t nc = 0, outl = 0;
  for (int64_t i = 0; !rc && i < n; i++) {
    if (labels[i] < -1 || truth[i] < 0) {
      rc = SLR_FAIL(SLR_ERR_INPUT, "label diagnostics: label %d / identity %d of local row %lld",
                    labels[i], truth[i], (long long)i);
      break;
    }
    if (labels[i] >= 0)
      cells[nc++] = (cell_t){labels[i], truth[i], 1};
    else {
      cells[nc++] = (cell_t){-1, truth[i], 1}; /* identity marginal of outliers */
      outl++;
    }
  }
  rc = slr_agree(comm, rc);
  if (rc) {
    free(cells);
    return rc;
  }
  nc = merge_cells(cells, nc);
  /* gather all ranks' cells */
  int mine = (int)(nc * 3);
  int *counts = malloc((size_t)size * sizeof(int)), *displs = malloc((size_t)size * sizeof(int));
  rc = counts && displs ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  SLR_TRY(slr_agree(comm, rc));
  SLR_MPI(MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, comm));
  int64_t total = 0;
  for (int r = 0; r < size; r++) {
    displs[r] = (int)total;
    total += counts[r];
  }
  cell_t *all = malloc((size_t)(total > 0 ? total : 3) * sizeof(int64_t));
  rc = all ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  SLR_TRY(slr_agree(comm, rc));
  SLR_MPI(MPI_Allgatherv(cells, mine, MPI_INT64_T, all, counts, displs, MPI_INT64_T, comm));
  free(cells);
  free(counts);
  free(displs);
  int64_t m = merge_cells(all, total / 3);

  /* marginals: clusters (a >= 0) and identities (all samples) */
  int64_t amax = -1, bmax = -1, N = 0, O = 0;
  for (int64_t i = 0; i < m; i++) {
    if (all[i].a > amax) amax = all[i].a;
    if (all[i].b > bmax) bmax = all[i].b;
    N += all[i].n;
    if (all[i].a < 0) O += all[i].n;
  }
  double *ra = calloc((size_t)(amax + 2), sizeof(double));
  double *cb = calloc((size_t)(bmax + 2), sizeof(double));
  if (!ra || !cb) {
    free(ra);
    free(cb);
    free(all);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  }
  for (int64_t i = 0; i < m; i++) {
    if (all[i].a >= 0) ra[all[i].a] += (double)all[i].n;
    cb[all[i].b] += (double)all[i].n;
  }
  const double dN = (double)N;
  double sum_ij = 0, sum_a = 0, sum_b = 0, mi = 0, ha = 0, hb = 0;
  int64_t kc = 0, kb = 0;
  for (int64_t i = 0; i < m; i++) {
    const double nij = (double)all[i].n, bj = cb[all[i].b];
    if (all[i].a >= 0) {
      sum_ij += comb2(nij);
      mi += nij / dN * log(dN * nij / (ra[all[i].a] * bj));
    } else {
      /* nij outliers of identity b, each its own cluster of size 1 */
      mi += nij / dN * log(dN / bj);
    }
  }
  for (int64_t a = 0; a <= amax; a++)
    if (ra[a] > 0) {
      kc++;
      sum_a += comb2(ra[a]);
      ha -= ra[a] / dN * log(ra[a] / dN);
    }
  ha += (double)O / dN * log(dN); /* singletons: -(1/N) log(1/N) each */
  for (int64_t b = 0; b <= bmax; b++)
    if (cb[b] > 0) {
      kb++;
      sum_b += comb2(cb[b]);
      hb -= cb[b] / dN * log(cb[b] / dN);
    }
  q->samples = N;
  q->clusters = kc;
  q->outliers = O;
  q->identities = kb;
  q->coverage = N > 0 ? (double)(N - O) / dN : 0;
  /* scikit-learn's conventions for the degenerate cases */
  if (mi < 0) mi = 0;
  double denom = 0.5 * (ha + hb);
  q->nmi = (ha == 0 && hb == 0) ? 1.0 : (denom > 0 ? mi / denom : 0.0);
  if (q->nmi > 1) q->nmi = 1;
  double expected = N > 1 ? sum_a * sum_b / comb2(dN) : 0;
  double maxidx = 0.5 * (sum_a + sum_b);
  q->ari = maxidx == expected ? 1.0 : (sum_ij - expected) / (maxidx - expected);
  q->precision = sum_a > 0 ? sum_ij / sum_a : 0;
  q->recall = sum_b > 0 ? sum_ij / sum_b : 0;
  q->f1 = q->precision + q->recall > 0
              ? 2 * q->precision * q->recall / (q->precision + q->recall)
              : 0;
  free(ra);
  free(cb);
  free(all);
  return 0;
}

/* ---- what refinement changes --------------------------------------------- */

typedef struct {
  int64_t k[3], n; /* keys (labels, -1 = outlier) and the count */
} cell3_t;

static int cmp_cell3(const void *x, const void *y) {
  const cell3_t *p = x, *q = y;
  for (int i = 0; i < 3; i++)
    if (p->k[i] != q->k[i]) return p->k[i] < q->k[i] ? -1 : 1;
  return 0;
}

static int64_t merge_cells3(cell3_t *c, int64_t n) {
  if (n == 0) return 0;
  qsort(c, (size_t)n, sizeof *c, cmp_cell3);
  int64_t m = 0;
  for (int64_t i = 1; i < n; i++) {
    if (cmp_cell3(&c[i], &c[m]) == 0)
      c[m].n += c[i].n;
    else
      c[++m] = c[i];
  }
  return m + 1;
}

/* Merge the local cells, gather every rank's, merge again: the same sorted
 * table on every rank. Frees `local`. Collective. */
static int gather_cells3(MPI_Comm comm, cell3_t *local, int64_t n, cell3_t **all, int64_t *nall) {
  int size, rc = 0;
  SLR_MPI(MPI_Comm_size(comm, &size));
  n = merge_cells3(local, n);
  int *counts = malloc((size_t)size * sizeof(int)), *displs = malloc((size_t)size * sizeof(int));
  if (!counts || !displs) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  if (!rc && n * 4 > INT32_MAX) rc = SLR_FAIL(SLR_ERR, "label diagnostics: too many cells");
  rc = slr_agree(comm, rc);
  int64_t total = 0;
  int mine = (int)(n * 4);
  if (!rc) rc = MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, comm) ? SLR_ERR : 0;
  for (int r = 0; !rc && r < size; r++) {
    displs[r] = (int)total;
    total += counts[r];
  }
  cell3_t *buf = NULL;
  if (!rc && total > INT32_MAX) rc = SLR_FAIL(SLR_ERR, "label diagnostics: too many cells");
  if (!rc && !(buf = malloc((size_t)(total > 0 ? total : 4) * sizeof(int64_t))))
    rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  rc = slr_agree(comm, rc);
  if (!rc && MPI_Allgatherv(local, mine, MPI_INT64_T, buf, counts, displs, MPI_INT64_T, comm))
    rc = SLR_FAIL(SLR_ERR, "MPI_Allgatherv of label cells failed");
  free(local);
  free(counts);
  free(displs);
  if (rc) {
    free(buf);
    return rc;
  }
  *nall = merge_cells3(buf, total / 4);
  *all = buf;
  return 0;
}

static int64_t pairs_of(int64_t c) { return c * (c - 1) / 2; }

/* Sum of C(count, 2) over the groups of the keys in `mask` (bit i: key i),
 * leaving out the cells where a grouped label key (i < nlabel) is an
 * outlier: outliers are in no cluster. */
static int grouped_pairs(const cell3_t *c, int64_t m, unsigned mask, int nlabel, int64_t *out) {
  cell3_t *g = malloc((size_t)(m > 0 ? m : 1) * sizeof *g);
  if (!g) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  int64_t ng = 0;
  for (int64_t i = 0; i < m; i++) {
    int skip = 0;
    cell3_t e = {{0, 0, 0}, c[i].n};
    for (int k = 0; k < 3; k++)
      if (mask & (1u << k)) {
        e.k[k] = c[i].k[k];
        skip |= k < nlabel && e.k[k] < 0;
      }
    if (!skip) g[ng++] = e;
  }
  ng = merge_cells3(g, ng);
  int64_t s = 0;
  for (int64_t i = 0; i < ng; i++) s += pairs_of(g[i].n);
  free(g);
  *out = s;
  return 0;
}

/* scikit-learn's NMI (arithmetic normaliser) from the entropies and MI. */
static double nmi_of(double ha, double hb, double mi) {
  if (ha == 0 && hb == 0) return 1.0;
  if (mi <= 0) return 0.0;
  const double v = mi / (0.5 * (ha + hb));
  return v > 1 ? 1 : v;
}

/* NMI of two labelings from their cells (k[0], k[1], -, n), every outlier
 * a singleton: a cell with an outlier side is that many joint singletons. */
static int transition_nmi(const cell3_t *c, int64_t m, int64_t ka, int64_t kb, double *nmi) {
  double *na = calloc((size_t)(ka + 1), sizeof(double)), *nb = calloc((size_t)(kb + 1), sizeof(double));
  if (!na || !nb) {
    free(na);
    free(nb);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  }
  double N = 0, oa = 0, ob = 0;
  for (int64_t i = 0; i < m; i++) {
    const int64_t a = c[i].k[0], b = c[i].k[1];
    const double v = (double)c[i].n;
    N += v;
    if (a >= 0) na[a] += v; else oa += v;
    if (b >= 0) nb[b] += v; else ob += v;
  }
  double ha = N > 0 ? oa / N * log(N) : 0, hb = N > 0 ? ob / N * log(N) : 0, mi = 0;
  for (int64_t a = 0; a < ka; a++)
    if (na[a] > 0) ha -= na[a] / N * log(na[a] / N);
  for (int64_t b = 0; b < kb; b++)
    if (nb[b] > 0) hb -= nb[b] / N * log(nb[b] / N);
  for (int64_t i = 0; i < m; i++) {
    const int64_t a = c[i].k[0], b = c[i].k[1];
    const double v = (double)c[i].n;
    const double sa = a >= 0 ? na[a] : 1.0, sb = b >= 0 ? nb[b] : 1.0;
    const double joint = a >= 0 && b >= 0 ? v : 1.0; /* a singleton's cell holds 1 */
    mi += v / N * log(N * joint / (sa * sb));
  }
  *nmi = nmi_of(ha, hb, mi);
  free(na);
  free(nb);
  return 0;
}

/* Clusters of key `side` that at least two clusters of the other side each
 * hold >= share of (|group| counts outliers of the other side). `c` sorted
 * with `side` as its first key. */
static int64_t count_spread(const cell3_t *c, int64_t m, int side, double share) {
  int64_t spread = 0;
  for (int64_t i = 0; i < m;) {
    int64_t j = i, size = 0, big = 0;
    while (j < m && c[j].k[side] == c[i].k[side]) size += c[j++].n;
    for (int64_t e = i; c[i].k[side] >= 0 && e < j; e++)
      big += c[e].k[1 - side] >= 0 && (double)c[e].n >= share * (double)size;
    spread += big >= 2;
    i = j;
  }
  return spread;
}

int slr_label_transition_compute(MPI_Comm comm, int64_t n, const int32_t *y_prev,
                                 const int32_t *y_cur, double share, slr_label_transition *t) {
  memset(t, 0, sizeof *t);
  t->share = share;
  int rc = share > 0 && share <= 0.5 ? 0 : SLR_FAIL(SLR_ERR, "label transition: share %g is "
                                                    "outside (0, 0.5]", share);
  cell3_t *local = malloc((size_t)(n > 0 ? n : 1) * sizeof *local);
  if (!rc && !local) rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  int64_t mx[2] = {-1, -1};
  for (int64_t i = 0; !rc && i < n; i++) {
    if (y_prev[i] < -1 || y_cur[i] < -1)
      rc = SLR_FAIL(SLR_ERR_INPUT, "label transition: labels %d -> %d of local row %lld",
                    y_prev[i], y_cur[i], (long long)i);
    local[i] = (cell3_t){{y_prev[i], y_cur[i], 0}, 1};
    if (y_prev[i] > mx[0]) mx[0] = y_prev[i];
    if (y_cur[i] > mx[1]) mx[1] = y_cur[i];
  }
  rc = slr_agree(comm, rc);
  if (rc) {
    free(local);
    return rc;
  }
  SLR_MPI(MPI_Allreduce(MPI_IN_PLACE, mx, 2, MPI_INT64_T, MPI_MAX, comm));
  cell3_t *c = NULL;
  int64_t m = 0;
  SLR_TRY(gather_cells3(comm, local, n, &c, &m));
  t->splits = count_spread(c, m, 0, share);
  rc = transition_nmi(c, m, mx[0] + 1, mx[1] + 1, &t->nmi);
  for (int64_t i = 0; i < m; i++) { /* the other side first, for merges */
    const int64_t a = c[i].k[0];
    c[i].k[0] = c[i].k[1];
    c[i].k[1] = a;
  }
  m = merge_cells3(c, m);
  t->merges = count_spread(c, m, 0, share);
  for (int64_t i = 0; i < m; i++) {
    t->clusters_cur += c[i].k[0] >= 0 && (i == 0 || c[i].k[0] != c[i - 1].k[0]);
  }
  for (int64_t i = 0; i < m; i++) { /* back: count the previous clusters */
    const int64_t a = c[i].k[0];
    c[i].k[0] = c[i].k[1];
    c[i].k[1] = a;
  }
  m = merge_cells3(c, m);
  for (int64_t i = 0; i < m; i++)
    t->clusters_prev += c[i].k[0] >= 0 && (i == 0 || c[i].k[0] != c[i - 1].k[0]);
  free(c);
  return rc;
}

/* Moved, reclaimed and dropped samples from the cells (refined, DBSCAN,
 * identity), sorted; `scratch` holds m cells. */
static void moved_samples(const cell3_t *c, int64_t m, cell3_t *scratch,
                          slr_refine_diagnostics *d) {
  for (int64_t i = 0; i < m;) {
    int64_t j = i;
    while (j < m && c[j].k[0] == c[i].k[0]) j++;
    if (c[i].k[0] < 0) {
      for (int64_t e = i; e < j; e++) d->dropped += c[e].k[1] >= 0 ? c[e].n : 0;
      i = j;
      continue;
    }
    /* the cluster's DBSCAN cluster (cells are sorted by b, then identity) */
    int64_t best_b = -1, best_nb = 0, ns = 0;
    for (int64_t e = i; e < j;) {
      int64_t f = e, nbv = 0;
      while (f < j && c[f].k[1] == c[e].k[1]) nbv += c[f++].n;
      if (c[e].k[1] >= 0 && nbv > best_nb) {
        best_nb = nbv;
        best_b = c[e].k[1];
      }
      e = f;
    }
    /* the majority identity of its DBSCAN-clustered samples */
    for (int64_t e = i; e < j; e++)
      if (c[e].k[1] >= 0) scratch[ns++] = (cell3_t){{c[e].k[2], 0, 0}, c[e].n};
    ns = merge_cells3(scratch, ns);
    int64_t best_t = -1, best_nt = 0;
    for (int64_t e = 0; e < ns; e++)
      if (scratch[e].n > best_nt) {
        best_nt = scratch[e].n;
        best_t = scratch[e].k[0];
      }
    for (int64_t e = i; e < j; e++) {
      if (c[e].k[1] < 0) {
        d->reclaimed += c[e].n;
        if (best_t >= 0 && c[e].k[2] == best_t) d->reclaimed_right += c[e].n;
      } else if (c[e].k[1] != best_b) {
        d->reassigned += c[e].n;
      }
    }
    i = j;
  }
  d->moved = d->reclaimed + d->dropped + d->reassigned;
}

/* Joined and separated pairs from grouped pair counts. */
static int pair_changes(const cell3_t *c, int64_t m, slr_refine_diagnostics *d) {
  int64_t s_r, s_b, s_rb, s_rt, s_bt, s_rbt;
  /* keys: 0 refined, 1 DBSCAN (labels), 2 identity */
  SLR_TRY(grouped_pairs(c, m, 1u, 2, &s_r));
  SLR_TRY(grouped_pairs(c, m, 2u, 2, &s_b));
  SLR_TRY(grouped_pairs(c, m, 3u, 2, &s_rb));
  SLR_TRY(grouped_pairs(c, m, 5u, 2, &s_rt));
  SLR_TRY(grouped_pairs(c, m, 6u, 2, &s_bt));
  SLR_TRY(grouped_pairs(c, m, 7u, 2, &s_rbt));
  d->pairs_joined = s_r - s_rb;
  d->pairs_joined_right = s_rt - s_rbt;
  d->pairs_separated = s_b - s_rb;
  d->pairs_separated_right = d->pairs_separated - (s_bt - s_rbt);
  d->join_precision =
      d->pairs_joined > 0 ? (double)d->pairs_joined_right / (double)d->pairs_joined : 0;
  d->separate_precision =
      d->pairs_separated > 0 ? (double)d->pairs_separated_right / (double)d->pairs_separated : 0;
  return 0;
}

int slr_refine_diagnostics_compute(MPI_Comm comm, int64_t n, const int32_t *y_dbscan,
                                   const int32_t *y_refined, const int32_t *y_prev,
                                   const int32_t *truth, double share,
                                   slr_refine_diagnostics *d) {
  memset(d, 0, sizeof *d);
  cell3_t *local = malloc((size_t)(n > 0 ? n : 1) * sizeof *local);
  int rc = local ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  for (int64_t i = 0; !rc && i < n; i++) {
    if (y_dbscan[i] < -1 || y_refined[i] < -1 || truth[i] < 0)
      rc = SLR_FAIL(SLR_ERR_INPUT, "refinement diagnostics: DBSCAN label %d, refined label %d, "
                    "identity %d of local row %lld", y_dbscan[i], y_refined[i], truth[i],
                    (long long)i);
    local[i] = (cell3_t){{y_refined[i], y_dbscan[i], truth[i]}, 1};
  }
  int has_prev = y_prev != NULL, all_prev = 0;
  SLR_MPI(MPI_Allreduce(&has_prev, &all_prev, 1, MPI_INT, MPI_MIN, comm));
  if (!rc && all_prev != has_prev)
    rc = SLR_FAIL(SLR_ERR, "refinement diagnostics: previous labels on some ranks only");
  rc = slr_agree(comm, rc);
  if (rc) {
    free(local);
    return rc;
  }
  cell3_t *c = NULL;
  int64_t m = 0;
  SLR_TRY(gather_cells3(comm, local, n, &c, &m));
  for (int64_t i = 0; i < m; i++) d->samples += c[i].n;
  cell3_t *scratch = malloc((size_t)(m > 0 ? m : 1) * sizeof *scratch);
  rc = scratch ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory for label diagnostics");
  if (!rc) moved_samples(c, m, scratch, d);
  d->reclaimed_precision = d->reclaimed > 0 ? (double)d->reclaimed_right / (double)d->reclaimed : 0;
  if (!rc) rc = pair_changes(c, m, d);
  free(scratch);
  free(c);
  rc = slr_agree(comm, rc);
  if (!rc && has_prev) {
    d->has_prev = 1;
    rc = slr_label_transition_compute(comm, n, y_prev, y_refined, share, &d->transition);
  }
  return rc;
}
