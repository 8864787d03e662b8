/* cluster/agglomerative: trees and flat cuts against scipy's linkage +
 * fcluster on the expanded points (fixture made by
 * tools/ref/agglomerative_ref.py), through both distance-matrix forms and
 * the sparse cut; the sparse cut against the dense tree for every linkage
 * and distance on soft-label-like points; weighted points equal their
 * copies; input errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slr/cluster.h"
#include "slr_test.h"

#define MAXCUTS 32

typedef struct {
  char method[16];
  int64_t n, d;
  double *x;
  int64_t *w;
  double *h;
  int ncuts;
  int is_dist[MAXCUTS];
  double t[MAXCUTS];
  int32_t *labels[MAXCUTS];
} agg_case;

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)len + 1);
  if (fread(buf, 1, (size_t)len, f) != (size_t)len) len = 0;
  buf[len] = '\0';
  fclose(f);
  return buf;
}

/* Parses the next case at *p; returns 0 at the end of the file. */
static int next_case(char **p, agg_case *c) {
  char *s = *p;
  while (*s == ' ' || *s == '\n') s++;
  if (strncmp(s, "case ", 5) != 0) return 0;
  int weighted, used = 0;
  long long n, d;
  assert_int_equal(sscanf(s, "case %15s %lld %lld %d%n", c->method, &n, &d, &weighted, &used), 4);
  s += used;
  c->n = n;
  c->d = d;
  c->x = malloc((size_t)(n * d) * sizeof(double));
  c->w = malloc((size_t)n * sizeof(int64_t));
  c->h = malloc((size_t)n * sizeof(double));
  s = strstr(s, "\nx ") + 3;
  for (int64_t i = 0; i < n * d; i++) c->x[i] = strtod(s, &s);
  s = strstr(s, "\nw ") + 3;
  for (int64_t i = 0; i < n; i++) c->w[i] = strtoll(s, &s, 10);
  s = strstr(s, "\nh ") + 3;
  for (int64_t i = 0; i < n - 1; i++) c->h[i] = strtod(s, &s);
  c->ncuts = 0;
  for (;;) {
    while (*s == ' ' || *s == '\n') s++;
    if (strncmp(s, "end", 3) == 0) {
      s += 3;
      break;
    }
    assert_true(strncmp(s, "cut ", 4) == 0);
    s += 4;
    int k = c->ncuts++;
    assert_true(k < MAXCUTS);
    c->is_dist[k] = strncmp(s, "distance", 8) == 0;
    s = strchr(s, ' ') + 1;
    c->t[k] = strtod(s, &s);
    c->labels[k] = malloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) c->labels[k][i] = (int32_t)strtol(s, &s, 10);
  }
  *p = s;
  return 1;
}

static void free_case(agg_case *c) {
  free(c->x);
  free(c->w);
  free(c->h);
  for (int k = 0; k < c->ncuts; k++) free(c->labels[k]);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* every distance cut of the case on tree z (or, z NULL, by the sparse cut
 * of the points as CSR rows xs) equals scipy's labels */
static int check_cuts(const agg_case *c, const slr_merge *z, const slr_sparse_points *xs,
                      slr_linkage m, const char *form) {
  int32_t *lab = malloc((size_t)c->n * sizeof(int32_t));
  int bad = 0;
  for (int k = 0; k < c->ncuts; k++) {
    if (!c->is_dist[k]) continue;
    int64_t nc = 0;
    int rc = z ? slr_agglo_cut_distance(z, c->n, c->t[k], lab, &nc)
               : slr_agglo_cut_sparse(xs, m, SLR_AGGLO_EUCLIDEAN, c->t[k], lab, &nc);
    assert_int_equal(rc, 0);
    int32_t kmax = -1;
    for (int64_t i = 0; i < c->n; i++) {
      if (lab[i] != c->labels[k][i]) {
        printf("%s %s n=%lld distance %g: point %lld label %d, scipy %d\n", form, c->method,
               (long long)c->n, c->t[k], (long long)i, lab[i], c->labels[k][i]);
        bad++;
        break;
      }
      if (lab[i] > kmax) kmax = lab[i];
    }
    if (!bad) assert_int_equal(nc, kmax + 1);
  }
  free(lab);
  return bad;
}

static void test_against_scipy(void **state) {
  char *text = read_file(SLR_FIXTURE_DIR "/cluster/agglomerative.txt");
  assert_non_null(text);
  char *p = text;
  agg_case c;
  int ncases = 0, bad = 0;
  while (next_case(&p, &c)) {
    ncases++;
    slr_linkage m;
    assert_int_equal(slr_linkage_parse(c.method, &m), 0);
    int64_t n = c.n;
    slr_merge *z = malloc((size_t)(n - 1) * sizeof *z);
    double *full = malloc((size_t)(n * n) * sizeof(double));
    double *cond = malloc((size_t)(n * (n - 1) / 2) * sizeof(double));
    int64_t q = 0;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t e = 0; e < c.d; e++) {
          double t = c.x[i * c.d + e] - c.x[j * c.d + e];
          s += t * t;
        }
        full[i * n + j] = i == j ? 0 : sqrt(s);
        if (j > i) cond[q++] = sqrt(s);
      }
    assert_int_equal(slr_agglo_tree_dist(cond, n, 0, c.w, m, z), 0);

    /* heights equal scipy's (sorted), ids follow scipy's convention */
    double *hs = malloc((size_t)(n - 1) * sizeof(double));
    for (int64_t k = 0; k < n - 1; k++) {
      hs[k] = z[k].height;
      if (k) assert_true(z[k].height >= z[k - 1].height);
      assert_true(z[k].a < z[k].b && z[k].b < n + k);
    }
    int64_t wtot = 0;
    for (int64_t i = 0; i < n; i++) wtot += c.w[i];
    assert_int_equal(z[n - 2].weight, wtot);
    qsort(c.h, (size_t)(n - 1), sizeof(double), cmp_double);
    for (int64_t k = 0; k < n - 1; k++) assert_true(fabs(hs[k] - c.h[k]) <= 1e-9 * c.h[k]);
    free(hs);
    bad += check_cuts(&c, z, NULL, m, "condensed");
    assert_int_equal(slr_agglo_tree_dist(full, n, 1, c.w, m, z), 0);
    bad += check_cuts(&c, z, NULL, m, "full");
    /* the sparse cut on the points moved to the positive orthant (a
     * translation keeps every distance), every column stored */
    double lo = 0;
    for (int64_t i = 0; i < n * c.d; i++)
      if (c.x[i] < lo) lo = c.x[i];
    int64_t *indptr = malloc((size_t)(n + 1) * sizeof(int64_t));
    int32_t *indices = malloc((size_t)(n * c.d) * sizeof(int32_t));
    double *values = malloc((size_t)(n * c.d) * sizeof(double));
    for (int64_t i = 0; i <= n; i++) indptr[i] = i * c.d;
    for (int64_t i = 0; i < n * c.d; i++) {
      indices[i] = (int32_t)(i % c.d);
      values[i] = c.x[i] - lo + 1;
    }
    const slr_sparse_points xs = {n, c.d, indptr, indices, values, c.w, -1};
    bad += check_cuts(&c, NULL, &xs, m, "sparse");
    free(indptr);
    free(indices);
    free(values);
    free(full);
    free(cond);
    free(z);
    free_case(&c);
  }
  free(text);
  assert_int_equal(ncases, 12);
  assert_int_equal(bad, 0);
}

/* Random soft-label-like points (1 to 4 non-zeros among d columns, one
 * large value, small others), in CSR form with sorted columns, and dense. */
typedef struct {
  int64_t n, d;
  int64_t *indptr, *w;
  int32_t *indices;
  double *values, *dense;
} pts;

static void make_points(pts *x, int64_t n, int64_t d, uint64_t seed, int weighted) {
  slr_rng r;
  slr_rng_init(&r, seed, 0, 0);
  x->n = n;
  x->d = d;
  x->dense = calloc((size_t)(n * d), sizeof(double));
  x->indptr = malloc((size_t)(n + 1) * sizeof(int64_t));
  x->w = malloc((size_t)n * sizeof(int64_t));
  x->indices = malloc((size_t)(n * d) * sizeof(int32_t));
  x->values = malloc((size_t)(n * d) * sizeof(double));
  x->indptr[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    x->w[i] = weighted ? 1 + (int64_t)slr_rng_below(&r, 4) : 1;
    const int64_t nz = 1 + (int64_t)slr_rng_below(&r, 4);
    /* clustered columns: points near each other share columns */
    const int64_t base = (int64_t)slr_rng_below(&r, (uint64_t)d);
    for (int64_t e = 0; e < nz; e++) {
      const int64_t col = (base + (int64_t)slr_rng_below(&r, 3)) % d;
      x->dense[i * d + col] += e == 0 ? 0.3 + 0.5 * slr_rng_uniform_double(&r)
                                      : 0.3 * slr_rng_uniform_double(&r);
    }
    int64_t p = x->indptr[i];
    for (int64_t col = 0; col < d; col++)
      if (x->dense[i * d + col] != 0) {
        x->indices[p] = (int32_t)col;
        x->values[p++] = x->dense[i * d + col];
      }
    x->indptr[i + 1] = p;
  }
}

static void free_points(pts *x) {
  free(x->dense);
  free(x->indptr);
  free(x->w);
  free(x->indices);
  free(x->values);
}

/* A plain dense distance, the test's own. */
static double dense_dist(const double *a, const double *b, int64_t d, slr_agglo_metric m) {
  double sa = 0, sb = 0, na = 0, nb = 0, dot = 0, r = 0;
  for (int64_t c = 0; c < d; c++) {
    sa += a[c];
    sb += b[c];
    na += a[c] * a[c];
    nb += b[c] * b[c];
    dot += a[c] * b[c];
  }
  for (int64_t c = 0; c < d; c++) {
    const double p = a[c] / sa, q = b[c] / sb, mid = 0.5 * (p + q);
    switch (m) {
      case SLR_AGGLO_EUCLIDEAN: r += (a[c] - b[c]) * (a[c] - b[c]); break;
      case SLR_AGGLO_HELLINGER: r += 0.5 * (sqrt(p) - sqrt(q)) * (sqrt(p) - sqrt(q)); break;
      case SLR_AGGLO_JENSEN_SHANNON:
        r += (p > 0 ? p * log(p / mid) : 0) + (q > 0 ? q * log(q / mid) : 0);
        break;
      case SLR_AGGLO_COSINE: break;
    }
  }
  if (m == SLR_AGGLO_COSINE) return fmax(0.0, 1 - dot / sqrt(na * nb));
  if (m == SLR_AGGLO_JENSEN_SHANNON) return sqrt(fmax(0.0, r) / (2 * log(2.0)));
  return sqrt(r);
}

/* Same partition (labels by first appearance on both sides). */
static int same_partition(const int32_t *a, const int32_t *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

/* The sparse cut equals the dense tree + cut for every linkage, distance
 * and threshold, including thresholds where points without a shared column
 * are within reach (Euclidean) and where everything merges. */
static void test_sparse_vs_dense(void **state) {
  const double ts[] = {0.05, 0.2, 0.35, 0.5, 0.7, 0.9, 1.3, 3.0};
  int checked = 0, bad = 0;
  for (int set = 0; set < 3; set++) {
    pts x;
    make_points(&x, set == 2 ? 40 : 160, set == 1 ? 12 : 60, 100 + (uint64_t)set, set != 1);
    const int64_t n = x.n;
    /* the sparse search always (dense_max -1), and with the default */
    slr_sparse_points xs = {n, x.d, x.indptr, x.indices, x.values, x.w, -1};
    double *cond = malloc((size_t)(n * (n - 1) / 2) * sizeof(double));
    slr_merge *z = malloc((size_t)n * sizeof *z);
    int32_t *l1 = malloc((size_t)n * sizeof(int32_t)), *l2 = malloc((size_t)n * sizeof(int32_t));
    for (int metric = 0; metric < 4; metric++) {
      for (int64_t i = 0, q = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
          cond[q++] = dense_dist(x.dense + i * x.d, x.dense + j * x.d, x.d, (slr_agglo_metric)metric);
      for (int m = 0; m < 4; m++) {
        if (m == SLR_LINKAGE_WARD && (metric == SLR_AGGLO_COSINE || metric == SLR_AGGLO_JENSEN_SHANNON))
          continue;
        if (slr_agglo_tree_dist(cond, n, 0, x.w, (slr_linkage)m, z)) fail_msg("%s", slr_error_text());
        for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) {
          int64_t k1, k2, k3;
          assert_int_equal(slr_agglo_cut_distance(z, n, ts[k], l1, &k1), 0);
          xs.dense_max = -1;
          assert_int_equal(slr_agglo_cut_sparse(&xs, (slr_linkage)m, (slr_agglo_metric)metric,
                                                ts[k], l2, &k2), 0);
          checked++;
          int same = k1 == k2 && same_partition(l1, l2, n);
          xs.dense_max = 0;
          assert_int_equal(slr_agglo_cut_sparse(&xs, (slr_linkage)m, (slr_agglo_metric)metric,
                                                ts[k], l2, &k3), 0);
          same &= k1 == k3 && same_partition(l1, l2, n);
          if (!same) {
            printf("set %d %s %s t=%g: %lld clusters dense, %lld sparse\n", set,
                   slr_agglo_metric_name((slr_agglo_metric)metric),
                   slr_linkage_name((slr_linkage)m), ts[k], (long long)k1, (long long)k2);
            bad++;
          }
        }
      }
    }
    free(cond);
    free(z);
    free(l1);
    free(l2);
    free_points(&x);
  }
  assert_int_equal(checked, 3 * 14 * 8);
  assert_int_equal(bad, 0);
}

/* a point of weight w equals w unit-weight copies */
static void test_weights_are_copies(void **state) {
  pts x;
  make_points(&x, 30, 10, 5, 1);
  int64_t ne = 0;
  for (int64_t i = 0; i < x.n; i++) ne += x.w[i];
  int64_t *indptr = malloc((size_t)(ne + 1) * sizeof(int64_t)), *owner = malloc((size_t)ne * 8);
  int32_t *indices = malloc((size_t)(ne * x.d) * sizeof(int32_t));
  double *values = malloc((size_t)(ne * x.d) * sizeof(double));
  indptr[0] = 0;
  for (int64_t i = 0, e = 0; i < x.n; i++)
    for (int64_t c = 0; c < x.w[i]; c++, e++) {
      const int64_t len = x.indptr[i + 1] - x.indptr[i];
      memcpy(indices + indptr[e], x.indices + x.indptr[i], (size_t)len * sizeof(int32_t));
      memcpy(values + indptr[e], x.values + x.indptr[i], (size_t)len * sizeof(double));
      indptr[e + 1] = indptr[e] + len;
      owner[e] = i;
    }
  const slr_sparse_points xs = {x.n, x.d, x.indptr, x.indices, x.values, x.w, -1};
  const slr_sparse_points xe = {ne, x.d, indptr, indices, values, NULL, -1};
  int32_t lab[30], *labe = malloc((size_t)ne * sizeof(int32_t));
  for (int metric = 0; metric < 4; metric++)
    for (int m = 0; m < 4; m++) {
      if (m == SLR_LINKAGE_WARD && (metric == SLR_AGGLO_COSINE || metric == SLR_AGGLO_JENSEN_SHANNON))
        continue;
      for (double t = 0.1; t < 1.5; t += 0.2) {
        int64_t k1, k2;
        assert_int_equal(slr_agglo_cut_sparse(&xs, (slr_linkage)m, (slr_agglo_metric)metric, t,
                                              lab, &k1), 0);
        assert_int_equal(slr_agglo_cut_sparse(&xe, (slr_linkage)m, (slr_agglo_metric)metric, t,
                                              labe, &k2), 0);
        assert_int_equal(k1, k2);
        for (int64_t e = 0; e < ne; e++) assert_int_equal(lab[owner[e]], labe[e]);
      }
    }
  free(indptr);
  free(owner);
  free(indices);
  free(values);
  free(labe);
  free_points(&x);
}

static void test_errors(void **state) {
  slr_merge z[2];
  int32_t lab[3];
  double dist[3] = {1, -2, 3};
  assert_int_equal(slr_agglo_tree_dist(dist, 3, 0, NULL, SLR_LINKAGE_SINGLE, z), SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "distance (0, 2)"));
  int64_t w[3] = {1, 0, 2};
  dist[1] = 2;
  assert_int_equal(slr_agglo_tree_dist(dist, 3, 0, w, SLR_LINKAGE_SINGLE, z), SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "weight of point 1"));
  assert_int_equal(slr_agglo_tree_dist(dist, 3, 0, NULL, SLR_LINKAGE_SINGLE, z), 0);
  assert_int_equal(slr_agglo_cut_distance(z, 3, -1, lab, NULL), SLR_ERR);
  /* sparse: a column twice, out of order, out of range, a negative value,
   * an empty row, Ward with cosine */
  int64_t indptr[3] = {0, 2, 3};
  int32_t indices[3] = {1, 1, 0};
  double values[3] = {1, 2, 3};
  slr_sparse_points x = {2, 2, indptr, indices, values, NULL, 0};
  assert_int_equal(slr_agglo_cut_sparse(&x, SLR_LINKAGE_WARD, SLR_AGGLO_EUCLIDEAN, 1, lab, NULL),
                   SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "CSR row 0 has column 1 out of order or twice"));
  indices[0] = 0;
  indices[2] = 2;
  assert_int_equal(slr_agglo_cut_sparse(&x, SLR_LINKAGE_WARD, SLR_AGGLO_EUCLIDEAN, 1, lab, NULL),
                   SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "CSR row 1 has column 2 out of range"));
  indices[2] = 1;
  values[2] = -1;
  assert_int_equal(slr_agglo_cut_sparse(&x, SLR_LINKAGE_WARD, SLR_AGGLO_EUCLIDEAN, 1, lab, NULL),
                   SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "coordinate 1 of point 1 is -1"));
  values[2] = 3;
  assert_int_equal(slr_agglo_cut_sparse(&x, SLR_LINKAGE_WARD, SLR_AGGLO_COSINE, 1, lab, NULL),
                   SLR_ERR_CONFIG);
  assert_non_null(strstr(slr_error_text(), "ward linkage needs a Euclidean distance"));
  /* (1, 2) and (0, 3): Ward height sqrt(2) */
  int64_t k;
  assert_int_equal(slr_agglo_cut_sparse(&x, SLR_LINKAGE_WARD, SLR_AGGLO_EUCLIDEAN, 1.414, lab, &k),
                   0);
  assert_int_equal(k, 2);
  assert_int_equal(slr_agglo_cut_sparse(&x, SLR_LINKAGE_WARD, SLR_AGGLO_EUCLIDEAN, 1.415, lab, &k),
                   0);
  assert_int_equal(k, 1);
  indptr[2] = 2;
  assert_int_equal(slr_agglo_cut_sparse(&x, SLR_LINKAGE_SINGLE, SLR_AGGLO_EUCLIDEAN, 1, lab, NULL),
                   SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "CSR row 1 is empty"));
  slr_linkage m;
  assert_int_equal(slr_linkage_parse("median", &m), SLR_ERR_CONFIG);
  assert_non_null(strstr(slr_error_text(), "\"median\""));
  slr_agglo_metric dm;
  assert_int_equal(slr_agglo_metric_parse("manhattan", &dm), SLR_ERR_CONFIG);
  assert_non_null(strstr(slr_error_text(), "\"manhattan\""));
  /* one point: one cluster */
  x.n = 1;
  assert_int_equal(slr_agglo_cut_sparse(&x, SLR_LINKAGE_WARD, SLR_AGGLO_EUCLIDEAN, 0.5, lab, &k), 0);
  assert_int_equal(k, 1);
  assert_int_equal(lab[0], 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_against_scipy),
      cmocka_unit_test(test_weights_are_copies),
      cmocka_unit_test(test_sparse_vs_dense),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
