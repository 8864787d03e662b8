/* cluster/agglomerative: trees and flat cuts against scipy's linkage +
 * fcluster on the expanded points (fixture made by
 * tools/ref/agglomerative_ref.py), through the point form and both
 * distance-matrix forms; input errors. */
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

/* every cut of the case on tree z equals scipy's labels */
static int check_cuts(const agg_case *c, const slr_merge *z, const char *form) {
  int32_t *lab = malloc((size_t)c->n * sizeof(int32_t));
  int bad = 0;
  for (int k = 0; k < c->ncuts; k++) {
    int64_t nc = 0;
    int rc = c->is_dist[k]
                 ? slr_agglo_cut_distance(z, c->n, c->t[k], lab, &nc)
                 : slr_agglo_cut_maxclust(z, c->n, c->w, (int64_t)c->t[k], lab, &nc);
    assert_int_equal(rc, 0);
    int32_t kmax = -1;
    for (int64_t i = 0; i < c->n; i++) {
      if (lab[i] != c->labels[k][i]) {
        printf("%s %s n=%lld %s %g: point %lld label %d, scipy %d\n", form, c->method,
               (long long)c->n, c->is_dist[k] ? "distance" : "maxclust", c->t[k], (long long)i,
               lab[i], c->labels[k][i]);
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
    assert_int_equal(slr_agglo_tree_points(c.x, n, c.d, c.w, m, z), 0);

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
    bad += check_cuts(&c, z, "points");

    /* the distance-matrix forms give the same partitions */
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
    assert_int_equal(slr_agglo_tree_dist(full, n, 1, c.w, m, z), 0);
    bad += check_cuts(&c, z, "full");
    assert_int_equal(slr_agglo_tree_dist(cond, n, 0, c.w, m, z), 0);
    bad += check_cuts(&c, z, "condensed");
    /* and the CSR form (every column stored, in reverse order) */
    int64_t *indptr = malloc((size_t)(n + 1) * sizeof(int64_t));
    int32_t *indices = malloc((size_t)(n * c.d) * sizeof(int32_t));
    double *values = malloc((size_t)(n * c.d) * sizeof(double));
    for (int64_t i = 0; i <= n; i++) indptr[i] = i * c.d;
    for (int64_t i = 0; i < n; i++)
      for (int64_t e = 0; e < c.d; e++) {
        indices[i * c.d + e] = (int32_t)(c.d - 1 - e);
        values[i * c.d + e] = c.x[i * c.d + c.d - 1 - e];
      }
    assert_int_equal(slr_agglo_tree_csr(indptr, indices, values, n, c.d, c.w, m, z), 0);
    bad += check_cuts(&c, z, "csr");
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

/* a point of weight w equals w unit-weight copies (above height 0) */
static void test_weights_are_copies(void **state) {
  const int64_t n = 25, d = 3;
  slr_rng r;
  slr_rng_init(&r, 5, 0, 0);
  double x[25 * 3];
  int64_t w[25], ne = 0;
  for (int64_t i = 0; i < n * d; i++) x[i] = slr_rng_normal(&r);
  for (int64_t i = 0; i < n; i++) ne += w[i] = 1 + (int64_t)slr_rng_below(&r, 3);
  double *xe = malloc((size_t)(ne * d) * sizeof(double));
  int64_t *owner = malloc((size_t)ne * sizeof(int64_t));
  for (int64_t i = 0, e = 0; i < n; i++)
    for (int64_t c = 0; c < w[i]; c++, e++) {
      memcpy(xe + e * d, x + i * d, (size_t)d * sizeof(double));
      owner[e] = i;
    }
  slr_merge *z = malloc((size_t)(ne - 1) * sizeof *z), *ze = malloc((size_t)(ne - 1) * sizeof *z);
  int32_t lab[25], *labe = malloc((size_t)ne * sizeof(int32_t));
  for (int m = 0; m < 4; m++) {
    assert_int_equal(slr_agglo_tree_points(x, n, d, w, (slr_linkage)m, z), 0);
    assert_int_equal(slr_agglo_tree_points(xe, ne, d, NULL, (slr_linkage)m, ze), 0);
    for (int64_t k = 0; k < n - 1; k++)
      assert_true(fabs(z[k].height - ze[ne - n + k].height) <= 1e-9 * ze[ne - n + k].height);
    for (int64_t kmax = 1; kmax <= n; kmax += 3) {
      int64_t k1, k2;
      assert_int_equal(slr_agglo_cut_maxclust(z, n, w, kmax, lab, &k1), 0);
      assert_int_equal(slr_agglo_cut_maxclust(ze, ne, NULL, kmax, labe, &k2), 0);
      assert_int_equal(k1, k2);
      for (int64_t e = 0; e < ne; e++) assert_int_equal(lab[owner[e]], labe[e]);
    }
  }
  free(xe);
  free(owner);
  free(z);
  free(ze);
  free(labe);
}

/* sparse soft-label-like points: the CSR form equals the dense form */
static void test_csr_sparse(void **state) {
  const int64_t n = 300, d = 60;
  slr_rng r;
  slr_rng_init(&r, 9, 0, 0);
  double *x = calloc((size_t)(n * d), sizeof(double));
  int64_t *indptr = malloc((size_t)(n + 1) * sizeof(int64_t)), w[300];
  int32_t *indices = malloc((size_t)(n * d) * sizeof(int32_t));
  double *values = malloc((size_t)(n * d) * sizeof(double));
  indptr[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    w[i] = 1 + (int64_t)slr_rng_below(&r, 4);
    int64_t nz = 1 + (int64_t)slr_rng_below(&r, 4);
    for (int64_t e = 0; e < nz; e++) {
      int64_t col = (int64_t)slr_rng_below(&r, (uint64_t)d);
      x[i * d + col] += e == 0 ? 0.7 : 0.3 * slr_rng_uniform_double(&r);
    }
    int64_t p = indptr[i];
    for (int64_t col = d - 1; col >= 0; col--)
      if (x[i * d + col] != 0) {
        indices[p] = (int32_t)col;
        values[p++] = x[i * d + col];
      }
    indptr[i + 1] = p;
  }
  slr_merge *z1 = malloc((size_t)n * sizeof *z1), *z2 = malloc((size_t)n * sizeof *z2);
  int32_t l1[300], l2[300];
  for (int m = 0; m < 4; m++) {
    assert_int_equal(slr_agglo_tree_points(x, n, d, w, (slr_linkage)m, z1), 0);
    assert_int_equal(slr_agglo_tree_csr(indptr, indices, values, n, d, w, (slr_linkage)m, z2), 0);
    for (int64_t k = 0; k < n - 1; k++)
      assert_true(fabs(z1[k].height - z2[k].height) <= 1e-12 * (1 + z1[k].height));
    for (int64_t kmax = 2; kmax < n; kmax *= 3) {
      int64_t k1, k2;
      assert_int_equal(slr_agglo_cut_maxclust(z1, n, w, kmax, l1, &k1), 0);
      assert_int_equal(slr_agglo_cut_maxclust(z2, n, w, kmax, l2, &k2), 0);
      assert_int_equal(k1, k2);
      assert_memory_equal(l1, l2, sizeof l1);
    }
  }
  free(x);
  free(indptr);
  free(indices);
  free(values);
  free(z1);
  free(z2);
}

static void test_errors(void **state) {
  double x[6] = {0, 1, 2, 3, 4, 5};
  int64_t w[3] = {1, 0, 2};
  slr_merge z[2];
  int32_t lab[3];
  assert_int_equal(slr_agglo_tree_points(x, 3, 2, w, SLR_LINKAGE_AVERAGE, z), SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "weight of point 1"));
  x[3] = NAN;
  assert_int_equal(slr_agglo_tree_points(x, 3, 2, NULL, SLR_LINKAGE_AVERAGE, z), SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "point 1 is not finite"));
  double huge[4] = {1e300, 0, -1e300, 0};
  assert_int_equal(slr_agglo_tree_points(huge, 2, 2, NULL, SLR_LINKAGE_SINGLE, z), SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "points 0 and 1 is not finite"));
  double dist[3] = {1, -2, 3};
  assert_int_equal(slr_agglo_tree_dist(dist, 3, 0, NULL, SLR_LINKAGE_SINGLE, z), SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "distance (0, 2)"));
  dist[1] = 2;
  assert_int_equal(slr_agglo_tree_dist(dist, 3, 0, NULL, SLR_LINKAGE_SINGLE, z), 0);
  assert_int_equal(slr_agglo_cut_distance(z, 3, -1, lab, NULL), SLR_ERR);
  assert_int_equal(slr_agglo_cut_maxclust(z, 3, NULL, 0, lab, NULL), SLR_ERR);
  /* CSR: a column twice in a row, a column out of range */
  int64_t indptr[3] = {0, 2, 3};
  int32_t indices[3] = {1, 1, 0};
  double values[3] = {1, 2, 3};
  assert_int_equal(slr_agglo_tree_csr(indptr, indices, values, 2, 2, NULL, SLR_LINKAGE_WARD, z),
                   SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "CSR row 0 has column 1 twice"));
  indices[1] = 0;
  indices[2] = 2;
  assert_int_equal(slr_agglo_tree_csr(indptr, indices, values, 2, 2, NULL, SLR_LINKAGE_WARD, z),
                   SLR_ERR);
  assert_non_null(strstr(slr_error_text(), "CSR row 1 has column 2 out of range"));
  indices[2] = 1;
  assert_int_equal(slr_agglo_tree_csr(indptr, indices, values, 2, 2, NULL, SLR_LINKAGE_WARD, z), 0);
  /* (2, 1) and (0, 3) */
  assert_true(fabs(z[0].height - sqrt(8)) < 1e-15);
  slr_linkage m;
  assert_int_equal(slr_linkage_parse("median", &m), SLR_ERR_CONFIG);
  assert_non_null(strstr(slr_error_text(), "\"median\""));
  /* one point: one cluster */
  assert_int_equal(slr_agglo_tree_points(x, 1, 2, NULL, SLR_LINKAGE_WARD, z), 0);
  int64_t k;
  assert_int_equal(slr_agglo_cut_distance(z, 1, 0.5, lab, &k), 0);
  assert_int_equal(k, 1);
  assert_int_equal(lab[0], 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_against_scipy),
      cmocka_unit_test(test_weights_are_copies),
      cmocka_unit_test(test_csr_sparse),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
