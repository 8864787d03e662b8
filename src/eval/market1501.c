/* The Market-1501 evaluation (mAP, CMC, mINP) over row-sharded query and
 * gallery features: query blocks gathered on every rank, distances to the
 * local gallery rows with cblas_sgemm, match positions counted per rank and
 * summed (see include/slr/eval.h for the protocol). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "slr/eval.h"

int slr_metric_parse(const char *name, slr_metric *out) {
  if (strcmp(name, "euclidean") == 0) {
    *out = SLR_METRIC_EUCLIDEAN;
    return 0;
  }
  if (strcmp(name, "cosine") == 0) {
    *out = SLR_METRIC_COSINE;
    return 0;
  }
  return SLR_FAIL(SLR_ERR_USAGE, "unknown metric \"%s\" (expected euclidean or cosine)", name);
}

int slr_rerank_variant_parse(const char *name, slr_rerank_variant *out) {
  if (strcmp(name, "jaccard") == 0) {
    *out = SLR_RERANK_JACCARD;
    return 0;
  }
  if (strcmp(name, "zhong") == 0) {
    *out = SLR_RERANK_ZHONG;
    return 0;
  }
  return SLR_FAIL(SLR_ERR_USAGE, "unknown re-ranking variant \"%s\" (expected jaccard or zhong)",
                  name);
}

const char *slr_rerank_variant_name(slr_rerank_variant v) {
  return v == SLR_RERANK_ZHONG ? "zhong" : "jaccard";
}

const char *slr_metric_name(slr_metric m) {
  return m == SLR_METRIC_COSINE ? "cosine" : "euclidean";
}

int slr_eval_format_json(const slr_eval_result *r, slr_metric metric, char *buf, size_t len) {
  char rr[128] = "false";
  if (r->rerank)
    snprintf(rr, sizeof rr, "{\"variant\": \"%s\", \"k1\": %d, \"k2\": %d, \"lambda\": %.15g}",
             slr_rerank_variant_name(r->rerank_variant), r->rerank_k1, r->rerank_k2,
             r->rerank_lambda);
  int n = snprintf(buf, len,
                   "{\n  \"metric\": \"%s\",\n  \"rerank\": %s,\n  \"num_query\": %lld,\n"
                   "  \"num_valid_query\": %lld,\n  \"num_gallery\": %lld,\n"
                   "  \"mAP\": %.17g,\n  \"mINP\": %.17g,\n  \"cmc\": [",
                   slr_metric_name(metric), rr, (long long)r->num_query, (long long)r->num_valid,
                   (long long)r->num_gallery, r->map, r->minp);
  for (int k = 0; k < SLR_EVAL_MAX_RANK && n > 0 && (size_t)n < len; k++)
    n += snprintf(buf + n, len - (size_t)n, "%s%.17g", k ? ", " : "", r->cmc[k]);
  if (n > 0 && (size_t)n < len) n += snprintf(buf + n, len - (size_t)n, "]\n}\n");
  if (n < 0 || (size_t)n >= len)
    return SLR_FAIL(SLR_ERR, "evaluation: %zu bytes are too few for the JSON text", len);
  return 0;
}

void slr_eval_print(const slr_eval_result *r, FILE *out) {
  fprintf(out, "mAP      %6.2f%%\n", 100 * r->map);
  fprintf(out, "mINP     %6.2f%%\n", 100 * r->minp);
  const int ranks[4] = {1, 5, 10, 20};
  for (int i = 0; i < 4; i++)
    fprintf(out, "Rank-%-3d %6.2f%%\n", ranks[i], 100 * r->cmc[ranks[i] - 1]);
}

void slr_eval_opts_default(slr_eval_opts *o) {
  memset(o, 0, sizeof *o);
  o->metric = SLR_METRIC_EUCLIDEAN;
  o->rerank_k1 = 20;
  o->rerank_k2 = 6;
  o->rerank_lambda = 0.3;
}

/* 1 / max(|x|, 1e-12), as torch.nn.functional.normalize */
static float inv_norm(const float *x, int64_t dim) {
  double s = 0;
  for (int64_t c = 0; c < dim; c++) s += (double)x[c] * x[c];
  double n = sqrt(s);
  return (float)(1.0 / (n > 1e-12 ? n : 1e-12));
}

/* first non-finite value of rows (n, dim), or -1 */
static int64_t first_nonfinite(const float *x, int64_t n, int64_t dim) {
  for (int64_t i = 0; i < n * dim; i++)
    if (!isfinite(x[i])) return i;
  return -1;
}

typedef struct {
  int64_t pid, j;
} pid_index;

static int cmp_pid_index(const void *pa, const void *pb) {
  const pid_index *a = pa, *b = pb;
  if (a->pid != b->pid) return a->pid < b->pid ? -1 : 1;
  return (a->j > b->j) - (a->j < b->j);
}

typedef struct {
  float d;
  int64_t j; /* global gallery index */
} key;

static int cmp_key(const void *pa, const void *pb) {
  const key *a = pa, *b = pb;
  if (a->d != b->d) return a->d < b->d ? -1 : 1;
  return (a->j > b->j) - (a->j < b->j);
}

/* (d, j) < (e, k) in the gallery order */
static inline int key_less(float d, int64_t j, float e, int64_t k) {
  return d < e || (d == e && j < k);
}

/* grow *buf to hold n elements of `elem` bytes (allocated even for n = 0) */
static int reserve(void **buf, int64_t *cap, int64_t n, size_t elem) {
  if (n <= *cap && *buf) return 0;
  int64_t c = *cap ? *cap : 1024;
  while (c < n) c *= 2;
  void *p = realloc(*buf, (size_t)c * elem);
  if (!p) return SLR_FAIL(SLR_ERR_NOMEM, "evaluation: out of memory (%lld items)", (long long)n);
  *buf = p;
  *cap = c;
  return 0;
}

typedef struct {
  int size;
  int64_t dim, nq_tot, ng_tot, goff;
  int64_t *qcnt, *qoff;     /* (size) query rows per rank, offsets */
  int64_t *qpid, *qcam;     /* (nq_tot) every query's pid and camera */
  float *ginv;              /* (ng) local gallery inverse norms */
  pid_index *gsorted;       /* (ng) local gallery sorted by pid */
  float *qb, *qinv;         /* (B, dim), (B) the query block */
  float *s;                 /* (B, ng) distances of the block */
  int *cnt_loc, *cnt_all;   /* (B), (size, B) positives per query */
  int *rcounts, *rdispls;   /* (size) */
  key *pos_loc;             /* local positives, by query */
  int64_t pos_loc_cap;
  float *sd;                /* exchange buffers */
  int64_t *sj;
  int64_t sd_cap, sj_cap;
  float *rd;
  int64_t *rj;
  int64_t rd_cap, rj_cap;
  key *pos;                 /* every positive of the block, by query */
  int64_t pos_cap;
  int64_t *pstart;          /* (B + 1) start of each query's positives */
  int64_t *hist;            /* negatives before each positive */
  int64_t hist_cap;
} work;

static void work_free(work *w) {
  free(w->qcnt);
  free(w->qoff);
  free(w->qpid);
  free(w->qcam);
  free(w->ginv);
  free(w->gsorted);
  free(w->qb);
  free(w->qinv);
  free(w->s);
  free(w->cnt_loc);
  free(w->cnt_all);
  free(w->rcounts);
  free(w->rdispls);
  free(w->pos_loc);
  free(w->sd);
  free(w->sj);
  free(w->rd);
  free(w->rj);
  free(w->pos);
  free(w->pstart);
  free(w->hist);
}

/* Gather the global query rows [b0, b0 + nb) on every rank. */
static int gather_block(MPI_Comm comm, work *w, int rank, const float *qf, int64_t b0,
                        int64_t nb) {
  int64_t mine0 = 0, mine = 0;
  for (int r = 0; r < w->size; r++) {
    int64_t lo = w->qoff[r] > b0 ? w->qoff[r] : b0;
    int64_t hi = w->qoff[r] + w->qcnt[r] < b0 + nb ? w->qoff[r] + w->qcnt[r] : b0 + nb;
    int64_t c = hi > lo ? hi - lo : 0;
    w->rcounts[r] = (int)(c * w->dim);
    w->rdispls[r] = (int)((c ? lo - b0 : 0) * w->dim);
    if (r == rank) {
      mine0 = lo - w->qoff[r];
      mine = c;
    }
  }
  static const float none = 0;
  const float *send = mine ? qf + mine0 * w->dim : &none;
  SLR_MPI(MPI_Allgatherv(send, (int)(mine * w->dim), MPI_FLOAT, w->qb, w->rcounts, w->rdispls,
                         MPI_FLOAT, comm));
  return 0;
}

/* Every positive (same pid, other camera) of each query of the block, from
 * all ranks, sorted by (distance, gallery index). */
static int collect_positives(MPI_Comm comm, work *w, const int64_t *gcam, int64_t ng,
                             int64_t b0, int64_t nb, double *tcomm) {
  int64_t nloc = 0;
  int rc = 0;
  for (int64_t q = 0; q < nb; q++) {
    int64_t pid = w->qpid[b0 + q], cam = w->qcam[b0 + q];
    /* the local gallery rows with this pid */
    int64_t lo = 0, hi = ng;
    while (lo < hi) {
      int64_t mid = (lo + hi) / 2;
      if (w->gsorted[mid].pid < pid)
        lo = mid + 1;
      else
        hi = mid;
    }
    int c = 0;
    for (int64_t a = lo; a < ng && w->gsorted[a].pid == pid; a++) {
      int64_t j = w->gsorted[a].j;
      if (gcam[j] == cam) continue;
      if ((rc = reserve((void **)&w->pos_loc, &w->pos_loc_cap, nloc + 1, sizeof(key)))) break;
      w->pos_loc[nloc].d = w->s[q * ng + j];
      w->pos_loc[nloc].j = w->goff + j;
      nloc++;
      c++;
    }
    w->cnt_loc[q] = c;
    if (rc) break;
  }
  double t0 = slr_now();
  SLR_TRY(slr_agree(comm, rc));
  SLR_MPI(MPI_Allgather(w->cnt_loc, (int)nb, MPI_INT, w->cnt_all, (int)nb, MPI_INT, comm));
  int64_t total = 0;
  for (int r = 0; r < w->size; r++) {
    int64_t t = 0;
    for (int64_t q = 0; q < nb; q++) t += w->cnt_all[r * nb + q];
    w->rcounts[r] = (int)t;
    w->rdispls[r] = (int)total;
    total += t;
  }
  /* the same on every rank */
  if (total > 0x7fffffff)
    return SLR_FAIL(SLR_ERR, "evaluation: %lld matches in one query block; lower query_block",
                    (long long)total);
  rc = reserve((void **)&w->sd, &w->sd_cap, nloc, sizeof(float));
  if (!rc) rc = reserve((void **)&w->sj, &w->sj_cap, nloc, sizeof(int64_t));
  if (!rc) rc = reserve((void **)&w->rd, &w->rd_cap, total, sizeof(float));
  if (!rc) rc = reserve((void **)&w->rj, &w->rj_cap, total, sizeof(int64_t));
  if (!rc) rc = reserve((void **)&w->pos, &w->pos_cap, total, sizeof(key));
  if (!rc) rc = reserve((void **)&w->hist, &w->hist_cap, total + 1, sizeof(int64_t));
  SLR_TRY(slr_agree(comm, rc));
  for (int64_t i = 0; i < nloc; i++) {
    w->sd[i] = w->pos_loc[i].d;
    w->sj[i] = w->pos_loc[i].j;
  }
  SLR_MPI(MPI_Allgatherv(w->sd, (int)nloc, MPI_FLOAT, w->rd, w->rcounts, w->rdispls, MPI_FLOAT,
                         comm));
  SLR_MPI(MPI_Allgatherv(w->sj, (int)nloc, MPI_INT64_T, w->rj, w->rcounts, w->rdispls,
                         MPI_INT64_T, comm));
  *tcomm += slr_now() - t0;
  /* regroup by query: rank r's part lists its queries in order */
  w->pstart[0] = 0;
  for (int64_t q = 0; q < nb; q++) {
    int64_t t = 0;
    for (int r = 0; r < w->size; r++) t += w->cnt_all[r * nb + q];
    w->pstart[q + 1] = w->pstart[q] + t;
  }
  for (int r = 0; r < w->size; r++) {
    int64_t src = w->rdispls[r];
    for (int64_t q = 0; q < nb; q++) {
      int64_t dst = w->pstart[q];
      /* ranks before r already filled their part of this query */
      for (int r2 = 0; r2 < r; r2++) dst += w->cnt_all[r2 * nb + q];
      for (int c = 0; c < w->cnt_all[r * nb + q]; c++, src++, dst++) {
        w->pos[dst].d = w->rd[src];
        w->pos[dst].j = w->rj[src];
      }
    }
  }
  for (int64_t q = 0; q < nb; q++)
    qsort(w->pos + w->pstart[q], (size_t)(w->pstart[q + 1] - w->pstart[q]), sizeof(key), cmp_key);
  return 0;
}

/* hist[pstart[q] + m] = the number of this rank's non-matching gallery
 * items of query q that come after exactly m of its matches in the order
 * (items after the last match are not counted). */
static void count_negatives(work *w, const int64_t *gpid, int64_t ng, int64_t b0, int64_t nb) {
  int64_t total = w->pstart[nb];
  memset(w->hist, 0, (size_t)total * sizeof(int64_t));
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t q = 0; q < nb; q++) {
    int64_t np = w->pstart[q + 1] - w->pstart[q];
    if (np == 0) continue;
    const key *pk = w->pos + w->pstart[q];
    int64_t *h = w->hist + w->pstart[q];
    int64_t pid = w->qpid[b0 + q];
    float dlast = pk[np - 1].d;
    int64_t jlast = pk[np - 1].j;
    const float *row = w->s + q * ng;
    for (int64_t j = 0; j < ng; j++) {
      float d = row[j];
      if (d > dlast || gpid[j] == pid) continue;
      int64_t jg = w->goff + j;
      if (!key_less(d, jg, dlast, jlast)) continue;
      /* m = number of positives before (d, jg) */
      int64_t lo = 0, hi = np - 1;
      while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (key_less(pk[mid].d, pk[mid].j, d, jg))
          lo = mid + 1;
        else
          hi = mid;
      }
      h[lo]++;
    }
  }
}

/* Re-ranking: row q of the block becomes (1 - lambda) jac + lambda d, jac
 * from the pairs of query b0 + q (1 for the others). The pairs are used
 * once, so their values are overwritten with the blended distances. */
static void blend_block(const slr_rerank_pairs *rr, float *s, int64_t ng, int64_t b0,
                        int64_t nb, double lambda) {
  float lam = (float)lambda, one_lam = (float)(1.0 - lambda);
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < nb; q++) {
    float *row = s + q * ng;
    int64_t e0 = rr->qptr[b0 + q], e1 = rr->qptr[b0 + q + 1];
    if (rr->qinv) { /* the original distance, divided by the query's largest */
      float f = rr->qinv[b0 + q];
      for (int64_t j = 0; j < ng; j++) {
        float v = row[j] * f;
        row[j] = rr->power == 2 ? v * v : v;
      }
    }
    for (int64_t e = e0; e < e1; e++) rr->jac[e] = one_lam * rr->jac[e] + lam * row[rr->g[e]];
    for (int64_t j = 0; j < ng; j++) row[j] = one_lam + lam * row[j];
    for (int64_t e = e0; e < e1; e++) row[rr->g[e]] = rr->jac[e];
  }
}

static int setup(MPI_Comm comm, work *w, int rank, int64_t dim, const float *qf,
                 const int64_t *qpid, const int64_t *qcam, int64_t nq, const float *gf,
                 const int64_t *gpid, int64_t ng, int64_t B) {
  int rc = 0;
  int64_t dims[2] = {dim, -dim}, dr[2];
  SLR_MPI(MPI_Allreduce(dims, dr, 2, MPI_INT64_T, MPI_MIN, comm));
  if (dr[0] != -dr[1])
    rc = SLR_FAIL(SLR_ERR, "evaluation: feature dimension differs over ranks (%lld to %lld)",
                  (long long)dr[0], (long long)-dr[1]);
  else if (dim < 1)
    rc = SLR_FAIL(SLR_ERR, "evaluation: feature dimension %lld < 1", (long long)dim);
  else if (nq < 0 || ng < 0)
    rc = SLR_FAIL(SLR_ERR, "evaluation: negative row count");
  SLR_TRY(slr_agree(comm, rc));
  w->dim = dim;
  w->qcnt = malloc((size_t)w->size * sizeof(int64_t));
  w->qoff = malloc((size_t)w->size * sizeof(int64_t));
  w->rcounts = malloc((size_t)w->size * sizeof(int));
  w->rdispls = malloc((size_t)w->size * sizeof(int));
  int64_t *gcnt = malloc((size_t)w->size * sizeof(int64_t));
  if (!w->qcnt || !w->qoff || !w->rcounts || !w->rdispls || !gcnt)
    rc = SLR_FAIL(SLR_ERR_NOMEM, "evaluation: out of memory");
  if ((rc = slr_agree(comm, rc))) {
    free(gcnt);
    return rc;
  }
  rc = MPI_Allgather(&nq, 1, MPI_INT64_T, w->qcnt, 1, MPI_INT64_T, comm);
  if (rc == MPI_SUCCESS) rc = MPI_Allgather(&ng, 1, MPI_INT64_T, gcnt, 1, MPI_INT64_T, comm);
  if (rc != MPI_SUCCESS) {
    free(gcnt);
    return slr_error_mpi(rc, "MPI_Allgather", __FILE__, __LINE__);
  }
  w->nq_tot = w->ng_tot = 0;
  for (int r = 0; r < w->size; r++) {
    w->qoff[r] = w->nq_tot;
    w->nq_tot += w->qcnt[r];
    if (r == rank) w->goff = w->ng_tot;
    w->ng_tot += gcnt[r];
  }
  free(gcnt);

  int64_t bad = first_nonfinite(qf, nq, dim);
  if (bad >= 0)
    rc = SLR_FAIL(SLR_ERR_INPUT, "evaluation: query feature row %lld has a non-finite value",
                  (long long)(w->qoff[rank] + bad / dim));
  else if ((bad = first_nonfinite(gf, ng, dim)) >= 0)
    rc = SLR_FAIL(SLR_ERR_INPUT, "evaluation: gallery feature row %lld has a non-finite value",
                  (long long)(w->goff + bad / dim));
  SLR_TRY(slr_agree(comm, rc));
  if (w->nq_tot == 0) return SLR_FAIL(SLR_ERR_INPUT, "evaluation: the query set is empty");
  if ((int64_t)B * dim > 0x7fffffff || (int64_t)w->size * B > 0x7fffffff)
    return SLR_FAIL(SLR_ERR, "evaluation: query block %lld x %lld too large for MPI counts",
                    (long long)B, (long long)dim);

  w->qpid = malloc((size_t)w->nq_tot * sizeof(int64_t));
  w->qcam = malloc((size_t)w->nq_tot * sizeof(int64_t));
  w->ginv = malloc((size_t)(ng ? ng : 1) * sizeof(float));
  w->gsorted = malloc((size_t)(ng ? ng : 1) * sizeof(pid_index));
  w->qb = malloc((size_t)(B * dim) * sizeof(float));
  w->qinv = malloc((size_t)B * sizeof(float));
  w->s = malloc((size_t)(B * (ng ? ng : 1)) * sizeof(float));
  w->cnt_loc = malloc((size_t)B * sizeof(int));
  w->cnt_all = malloc((size_t)(w->size * B) * sizeof(int));
  w->pstart = malloc((size_t)(B + 1) * sizeof(int64_t));
  rc = 0;
  if (!w->qpid || !w->qcam || !w->ginv || !w->gsorted || !w->qb || !w->qinv || !w->s ||
      !w->cnt_loc || !w->cnt_all || !w->pstart)
    rc = SLR_FAIL(SLR_ERR_NOMEM,
                  "evaluation: out of memory (query block %lld x %lld local gallery rows)",
                  (long long)B, (long long)ng);
  SLR_TRY(slr_agree(comm, rc));
  int *c = w->rcounts, *dsp = w->rdispls;
  for (int r = 0; r < w->size; r++) {
    c[r] = (int)w->qcnt[r];
    dsp[r] = (int)w->qoff[r];
  }
  SLR_MPI(MPI_Allgatherv(qpid, (int)nq, MPI_INT64_T, w->qpid, c, dsp, MPI_INT64_T, comm));
  SLR_MPI(MPI_Allgatherv(qcam, (int)nq, MPI_INT64_T, w->qcam, c, dsp, MPI_INT64_T, comm));
  for (int64_t j = 0; j < ng; j++) {
    w->ginv[j] = inv_norm(gf + j * dim, dim);
    w->gsorted[j].pid = gpid[j];
    w->gsorted[j].j = j;
  }
  qsort(w->gsorted, (size_t)ng, sizeof(pid_index), cmp_pid_index);
  return 0;
}

static int evaluate(MPI_Comm comm, work *w, int rank, const float *qf, const float *gf,
                    const int64_t *gpid, const int64_t *gcam, int64_t ng,
                    const slr_eval_opts *o, const slr_rerank_pairs *rr, int64_t B, int64_t GB,
                    slr_eval_result *res) {
  int64_t dim = w->dim;
  double sum_ap = 0, sum_inp = 0;
  int64_t first_hits[SLR_EVAL_MAX_RANK] = {0}, nvalid = 0;
  slr_progress prog;
  if (o->progress) slr_progress_begin(&prog, "evaluate", w->nq_tot, "queries", 0);
  double t0, tc = 0;
  for (int64_t b0 = 0; b0 < w->nq_tot; b0 += B) {
    int64_t nb = w->nq_tot - b0 < B ? w->nq_tot - b0 : B;
    t0 = slr_now();
    SLR_TRY(gather_block(comm, w, rank, qf, b0, nb));
    tc += slr_now() - t0;
    t0 = slr_now();
    for (int64_t q = 0; q < nb; q++) w->qinv[q] = inv_norm(w->qb + q * dim, dim);
    /* (nb, ng) block of inner products, then distances in place */
    for (int64_t g0 = 0; g0 < ng; g0 += GB) {
      int64_t gn = ng - g0 < GB ? ng - g0 : GB;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)gn, (int)dim, 1.0f,
                  w->qb, (int)dim, gf + g0 * dim, (int)dim, 0.0f, w->s + g0, (int)ng);
    }
    float a = o->metric == SLR_METRIC_COSINE ? 1.0f : 2.0f;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < nb; q++) {
      float *row = w->s + q * ng, qi = w->qinv[q];
      for (int64_t j = 0; j < ng; j++) row[j] = a - a * (row[j] * qi * w->ginv[j]);
    }
    if (rr) blend_block(rr, w->s, ng, b0, nb, o->rerank_lambda);
    res->time_distance += slr_now() - t0;
    t0 = slr_now();
    SLR_TRY(collect_positives(comm, w, gcam, ng, b0, nb, &tc));
    count_negatives(w, gpid, ng, b0, nb);
    int64_t total = w->pstart[nb];
    double t1 = slr_now();
    SLR_MPI(MPI_Allreduce(MPI_IN_PLACE, w->hist, (int)total, MPI_INT64_T, MPI_SUM, comm));
    tc += slr_now() - t1;
    /* the metrics of the block's queries, in global query order */
    for (int64_t q = 0; q < nb; q++) {
      int64_t np = w->pstart[q + 1] - w->pstart[q];
      if (np == 0) continue;
      const int64_t *h = w->hist + w->pstart[q];
      int64_t neg = 0, pos_rank = 0;
      double ap = 0;
      for (int64_t i = 0; i < np; i++) {
        neg += h[i];
        pos_rank = i + neg; /* 0-based position among the kept gallery */
        ap += (double)(i + 1) / (double)(pos_rank + 1);
      }
      if (h[0] < SLR_EVAL_MAX_RANK) first_hits[h[0]]++;
      sum_ap += ap / (double)np;
      sum_inp += (double)np / (double)(pos_rank + 1);
      nvalid++;
    }
    res->time_matches += slr_now() - t0;
    if (o->progress) slr_progress_update(&prog, b0 + nb);
  }
  res->time_matches -= tc;
  res->time_comm = tc;
  if (o->progress) slr_progress_end(&prog);
  res->num_query = w->nq_tot;
  res->num_gallery = w->ng_tot;
  res->num_valid = nvalid;
  if (nvalid == 0)
    return SLR_FAIL(SLR_ERR_INPUT,
                    "evaluation: none of the %lld queries has a match in the gallery "
                    "(same pid, another camera)",
                    (long long)w->nq_tot);
  res->map = sum_ap / (double)nvalid;
  res->minp = sum_inp / (double)nvalid;
  int64_t cum = 0;
  for (int k = 0; k < SLR_EVAL_MAX_RANK; k++) {
    cum += first_hits[k];
    res->cmc[k] = (double)cum / (double)nvalid;
  }
  return 0;
}

int slr_eval_market1501(MPI_Comm comm, int64_t dim, const float *qf, const int64_t *qpid,
                        const int64_t *qcam, int64_t nq, const float *gf,
                        const int64_t *gpid, const int64_t *gcam, int64_t ng,
                        const slr_eval_opts *opts, slr_eval_result *res) {
  slr_eval_opts o;
  if (opts)
    o = *opts;
  else
    slr_eval_opts_default(&o);
  int64_t B = o.query_block > 0 ? o.query_block : 256;
  int64_t GB = o.gallery_block > 0 ? o.gallery_block : 4096;
  memset(res, 0, sizeof *res);
  work w;
  memset(&w, 0, sizeof w);
  int rank;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  SLR_MPI(MPI_Comm_size(comm, &w.size));
  int rc = setup(comm, &w, rank, dim, qf, qpid, qcam, nq, gf, gpid, ng, B);
  slr_rerank_pairs rr = {0};
  if (!rc && o.rerank) {
    if (!(o.rerank_lambda >= 0.0 && o.rerank_lambda <= 1.0))
      rc = SLR_FAIL(SLR_ERR_INPUT, "re-ranking: lambda = %g must be in [0, 1]", o.rerank_lambda);
    double t0 = slr_now();
    if (!rc)
      rc = slr_rerank_pairs_compute(comm, dim, qf, nq, gf, ng, (int)o.rerank_variant,
                                    (int)o.metric, o.rerank_k1, o.rerank_k2, &rr);
    res->time_rerank = slr_now() - t0;
  }
  /* every failure past setup is either the same on all ranks (computed from
   * shared data) or an MPI/memory failure, agreed below */
  if (!rc) rc = evaluate(comm, &w, rank, qf, gf, gpid, gcam, ng, &o, o.rerank ? &rr : NULL, B, GB,
                         res);
  if (!rc && o.rerank) {
    res->rerank = 1;
    res->rerank_variant = o.rerank_variant;
    res->rerank_k1 = o.rerank_k1;
    res->rerank_k2 = o.rerank_k2;
    res->rerank_lambda = o.rerank_lambda;
  }
  slr_rerank_pairs_free(&rr);
  work_free(&w);
  return slr_agree(comm, rc);
}
