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
