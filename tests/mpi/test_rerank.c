// ranks: 1 2 3
/* eval: k-reciprocal re-ranking at test time against the NumPy reference
 * (fixture by tools/ref/rerank_fixture.py, metrics by tools/ref/rerank_ref.py)
 * for both variants and three parameter sets each, with balanced and uneven shards and several
 * query blocks, on 1, 2 and 3 ranks; lambda = 1 gives the plain
 * evaluation; bad parameters fail on every rank. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_set.h"

#define FIXTURE SLR_FIXTURE_DIR "/eval/rerank_small.h5"

typedef struct {
  const char *name;
  slr_rerank_variant variant;
  slr_metric metric;
  int k1, k2;
  double lambda;
} params;

static const params SETS[] = {
    {"euclidean_20_6_0.3", SLR_RERANK_JACCARD, SLR_METRIC_EUCLIDEAN, 20, 6, 0.3},
    {"cosine_20_6_0.3", SLR_RERANK_JACCARD, SLR_METRIC_COSINE, 20, 6, 0.3},
    {"euclidean_10_1_0.6", SLR_RERANK_JACCARD, SLR_METRIC_EUCLIDEAN, 10, 1, 0.6},
    {"zhong_euclidean_20_6_0.3", SLR_RERANK_ZHONG, SLR_METRIC_EUCLIDEAN, 20, 6, 0.3},
    {"zhong_cosine_20_6_0.3", SLR_RERANK_ZHONG, SLR_METRIC_COSINE, 20, 6, 0.3},
    {"zhong_euclidean_10_1_0.6", SLR_RERANK_ZHONG, SLR_METRIC_EUCLIDEAN, 10, 1, 0.6},
};

static double read_f64(slr_h5 *f, const char *group, const char *what) {
  char name[128];
  int64_t n;
  snprintf(name, sizeof name, "/expected/%s/%s", group, what);
  double *p = eval_read_all(f, name, SLR_F64, &n);
  double v = p[0];
  free(p);
  return v;
}

static int same_as_reference(const slr_eval_result *r, const params *ps) {
  slr_h5 f;
  assert_all(slr_h5_open(&f, MPI_COMM_WORLD, FIXTURE, NULL, 0, SLR_H5_FOREIGN_OK) == 0);
  /* the fixture's parameters are the ones tested */
  int ok = read_f64(&f, ps->name, "k1") == ps->k1 && read_f64(&f, ps->name, "k2") == ps->k2 &&
           read_f64(&f, ps->name, "lambda") == ps->lambda;
  double map = read_f64(&f, ps->name, "mAP"), minp = read_f64(&f, ps->name, "mINP");
  int64_t nvalid = (int64_t)read_f64(&f, ps->name, "num_valid");
  char name[128];
  int64_t n;
  snprintf(name, sizeof name, "/expected/%s/cmc", ps->name);
  double *cmc = eval_read_all(&f, name, SLR_F64, &n);
  slr_h5_close(&f);
  ok = ok && n == SLR_EVAL_MAX_RANK && fabs(r->map - map) <= 1e-6 &&
       fabs(r->minp - minp) <= 1e-6 && r->num_valid == nvalid;
  for (int k = 0; ok && k < SLR_EVAL_MAX_RANK; k++) ok = fabs(r->cmc[k] - cmc[k]) <= 1e-6;
  if (!ok)
    printf("%s: mAP %.8f (ref %.8f) mINP %.8f (ref %.8f) R1 %.8f (ref %.8f) valid %lld (ref %lld)\n",
           ps->name, r->map, map, r->minp, minp, r->cmc[0], cmc[0], (long long)r->num_valid,
           (long long)nvalid);
  free(cmc);
  return ok;
}

static void opts_for(const params *ps, slr_eval_opts *o) {
  slr_eval_opts_default(o);
  o->metric = ps->metric;
  o->rerank = 1;
  o->rerank_variant = ps->variant;
  o->rerank_k1 = ps->k1;
  o->rerank_k2 = ps->k2;
  o->rerank_lambda = ps->lambda;
}

static void test_against_reference(void **state) {
  (void)state;
  int rank, size;
  eval_set s;
  int64_t q0, nq, g0, ng;
  eval_set_load_sharded(&s, FIXTURE, &rank, &size, &q0, &nq, &g0, &ng);
  for (size_t p = 0; p < sizeof SETS / sizeof SETS[0]; p++) {
    slr_eval_opts o;
    opts_for(&SETS[p], &o);
    slr_eval_result r, r2;
    assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &r) == 0);
    assert_all(same_as_reference(&r, &SETS[p]));
    assert_all(r.rerank == 1 && r.rerank_variant == SETS[p].variant &&
               r.rerank_k1 == SETS[p].k1 && r.rerank_k2 == SETS[p].k2 &&
               r.rerank_lambda == SETS[p].lambda);
    /* query blocks of 1 and 7 (the pairs of each block applied once) */
    o.query_block = p % 3 == 0 ? 1 : 7;
    o.gallery_block = 5;
    assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &r2) == 0);
    assert_all(r2.map == r.map && r2.minp == r.minp &&
               memcmp(r2.cmc, r.cmc, sizeof r.cmc) == 0);
  }
  eval_set_free(&s);
}

/* all queries on the last rank, gallery 5 rows on rank 0 and the rest on
 * the others (rank 0 holds no query, the last rank its queries and some
 * gallery) */
static void test_uneven_shards(void **state) {
  (void)state;
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  eval_set s;
  eval_set_load(&s, FIXTURE);
  int64_t q0 = 0, nq = rank == size - 1 ? s.nq : 0, g0, ng;
  if (size == 1) {
    g0 = 0;
    ng = s.ng;
  } else if (rank == 0) {
    g0 = 0;
    ng = 5;
  } else {
    slr_shard_rows(s.ng - 5, rank - 1, size - 1, &g0, &ng);
    g0 += 5;
  }
  for (size_t p = 0; p < sizeof SETS / sizeof SETS[0]; p++) {
    slr_eval_opts o;
    opts_for(&SETS[p], &o);
    slr_eval_result r;
    assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &r) == 0);
    assert_all(same_as_reference(&r, &SETS[p]));
  }
  eval_set_free(&s);
}

/* lambda = 1 keeps the original distance: the plain evaluation's metrics;
 * re-ranking changes the result at lambda = 0.3 */
static void test_lambda_one(void **state) {
  (void)state;
  int rank, size;
  eval_set s;
  int64_t q0, nq, g0, ng;
  eval_set_load_sharded(&s, FIXTURE, &rank, &size, &q0, &nq, &g0, &ng);
  for (int m = 0; m < 2; m++) {
    slr_eval_opts o;
    slr_eval_opts_default(&o);
    o.metric = (slr_metric)m;
    slr_eval_result plain, one, rr;
    assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &plain) == 0);
    assert_all(plain.rerank == 0);
    o.rerank = 1;
    o.rerank_lambda = 1.0;
    assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &one) == 0);
    assert_all(one.map == plain.map && one.minp == plain.minp &&
               memcmp(one.cmc, plain.cmc, sizeof one.cmc) == 0);
    /* the second variant divides each query's distances by their largest
     * (and squares them for cosine): the same order */
    o.rerank_variant = SLR_RERANK_ZHONG;
    assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &one) == 0);
    assert_all(one.map == plain.map && one.minp == plain.minp &&
               memcmp(one.cmc, plain.cmc, sizeof one.cmc) == 0);
    o.rerank_variant = SLR_RERANK_JACCARD;
    o.rerank_lambda = 0.3;
    assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &rr) == 0);
    assert_all(fabs(rr.map - plain.map) > 1e-3);
  }
  eval_set_free(&s);
}

static void test_errors(void **state) {
  (void)state;
  int rank, size;
  eval_set s;
  int64_t q0, nq, g0, ng;
  eval_set_load_sharded(&s, FIXTURE, &rank, &size, &q0, &nq, &g0, &ng);
  slr_eval_opts o;
  slr_eval_result r;
  const struct {
    slr_rerank_variant v;
    int k1, k2;
    double lambda;
    const char *msg;
  } bad[] = {
      {SLR_RERANK_JACCARD, (int)(s.nq + s.ng) + 1, 6, 0.3, "k1 = "},
      {SLR_RERANK_ZHONG, (int)(s.nq + s.ng), 6, 0.3, "(the query + gallery items - 1)"},
      {SLR_RERANK_JACCARD, 0, 1, 0.3, "k1 = 0"},
      {SLR_RERANK_ZHONG, 10, 11, 0.3, "k2 = 11"},
      {SLR_RERANK_JACCARD, 20, 0, 0.3, "k2 = 0"},
      {SLR_RERANK_JACCARD, 20, 6, 1.5, "lambda = 1.5"},
      {SLR_RERANK_ZHONG, 20, 6, NAN, "lambda = nan"},
  };
  for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
    slr_eval_opts_default(&o);
    o.rerank = 1;
    o.rerank_variant = bad[b].v;
    o.rerank_k1 = bad[b].k1;
    o.rerank_k2 = bad[b].k2;
    o.rerank_lambda = bad[b].lambda;
    assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &r) != 0);
    int has = strstr(slr_error_text(), bad[b].msg) != NULL;
    if (!has) printf("expected '%s' in: %s\n", bad[b].msg, slr_error_text());
    assert_all(has);
  }
  /* k1 = all items is allowed */
  slr_eval_opts_default(&o);
  o.rerank = 1;
  o.rerank_k1 = (int)(s.nq + s.ng);
  assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &r) == 0);
  o.rerank_variant = SLR_RERANK_ZHONG;
  o.rerank_k1 = (int)(s.nq + s.ng) - 1;
  assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &r) == 0);

  /* JSON names the parameters */
  char buf[2048];
  slr_eval_opts_default(&o);
  o.rerank = 1;
  assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &r) == 0);
  assert_all(slr_eval_format_json(&r, o.metric, buf, sizeof buf) == 0);
  assert_all(strstr(buf, "\"rerank\": {\"variant\": \"jaccard\", \"k1\": 20, \"k2\": 6, "
                         "\"lambda\": 0.3}") != NULL);
  o.rerank = 0;
  assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &r) == 0);
  assert_all(slr_eval_format_json(&r, o.metric, buf, sizeof buf) == 0);
  assert_all(strstr(buf, "\"rerank\": false") != NULL);
  eval_set_free(&s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_against_reference),
    cmocka_unit_test(test_uneven_shards),
    cmocka_unit_test(test_lambda_one),
    cmocka_unit_test(test_errors),
};
SLR_TEST_MAIN_MPI(tests)
