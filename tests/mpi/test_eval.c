// ranks: 1 2 3
/* eval: mAP, CMC and mINP of row-sharded query/gallery sets against the
 * NumPy port of eval_market1501 (fixture by tools/ref/eval_fixture.py), for
 * both metrics, several block sizes and uneven shards, on 1, 2 and 3 ranks;
 * input errors agreed over ranks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_set.h"

#define FIXTURE SLR_FIXTURE_DIR "/eval/market_small.h5"

static void expected(const char *metric, double *map, double *minp, double *cmc,
                     int64_t *nvalid) {
  slr_h5 f;
  assert_all(slr_h5_open(&f, MPI_COMM_WORLD, FIXTURE, NULL, 0, SLR_H5_FOREIGN_OK) == 0);
  char name[128];
  void *p;
  int64_t n;
  snprintf(name, sizeof name, "/expected/%s/mAP", metric);
  p = eval_read_all(&f, name, SLR_F64, &n);
  *map = *(double *)p;
  free(p);
  snprintf(name, sizeof name, "/expected/%s/mINP", metric);
  p = eval_read_all(&f, name, SLR_F64, &n);
  *minp = *(double *)p;
  free(p);
  snprintf(name, sizeof name, "/expected/%s/cmc", metric);
  p = eval_read_all(&f, name, SLR_F64, &n);
  assert_all(n == SLR_EVAL_MAX_RANK);
  memcpy(cmc, p, SLR_EVAL_MAX_RANK * sizeof(double));
  free(p);
  snprintf(name, sizeof name, "/expected/%s/num_valid", metric);
  p = eval_read_all(&f, name, SLR_I64, &n);
  *nvalid = *(int64_t *)p;
  free(p);
  slr_h5_close(&f);
}

static int same_as_reference(const slr_eval_result *r, const char *metric) {
  double map, minp, cmc[SLR_EVAL_MAX_RANK];
  int64_t nvalid;
  expected(metric, &map, &minp, cmc, &nvalid);
  int ok = fabs(r->map - map) <= 1e-6 && fabs(r->minp - minp) <= 1e-6 && r->num_valid == nvalid;
  for (int k = 0; k < SLR_EVAL_MAX_RANK; k++) ok = ok && fabs(r->cmc[k] - cmc[k]) <= 1e-6;
  if (!ok)
    printf("%s: mAP %.8f (ref %.8f) mINP %.8f (ref %.8f) R1 %.8f (ref %.8f) valid %lld (ref %lld)\n",
           metric, r->map, map, r->minp, minp, r->cmc[0], cmc[0], (long long)r->num_valid,
           (long long)nvalid);
  return ok;
}

static void test_against_reference(void **state) {
  int rank, size;
  eval_set s;
  int64_t q0, nq, g0, ng;
  eval_set_load_sharded(&s, FIXTURE, &rank, &size, &q0, &nq, &g0, &ng);
  const int64_t blocks[][2] = {{0, 0}, {7, 50}, {1, 1}, {1000, 3}};
  for (int m = 0; m < 2; m++) {
    slr_eval_result first;
    for (int b = 0; b < 4; b++) {
      slr_eval_opts o;
      slr_eval_opts_default(&o);
      o.metric = (slr_metric)m;
      o.query_block = blocks[b][0];
      o.gallery_block = blocks[b][1];
      slr_eval_result r;
      assert_all(eval_set_run(&s, q0, nq, g0, ng, &o, &r) == 0);
      assert_all(same_as_reference(&r, slr_metric_name(o.metric)));
      assert_all(r.num_query == s.nq && r.num_gallery == s.ng);
      /* the block sizes change nothing (the counts are integers) */
      if (b == 0)
        first = r;
      else
        assert_all(r.map == first.map && r.minp == first.minp && r.cmc[0] == first.cmc[0]);
    }
  }
  eval_set_free(&s);
}

/* uneven shards: all queries on the last rank, the gallery split 0 / rest */
static void test_uneven_shards(void **state) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  eval_set s;
  eval_set_load(&s, FIXTURE);
  int64_t nq = rank == size - 1 ? s.nq : 0;
  int64_t cut = s.ng / 3;
  int64_t g0 = rank == 0 ? 0 : cut, ng = size == 1 ? s.ng : rank == 0 ? cut : 0;
  if (size > 1 && rank == size - 1) ng = s.ng - cut;
  slr_eval_opts o;
  slr_eval_opts_default(&o);
  o.query_block = 5;
  slr_eval_result r;
  assert_all(eval_set_run(&s, 0, nq, g0, ng, &o, &r) == 0);
  assert_all(same_as_reference(&r, "euclidean"));
  eval_set_free(&s);
}

/* exact ties (one-hot features give exact dot products): equal distances
 * are ordered by gallery index. Query pid 1 cam 1 = e0; gallery:
 * g0 pid 2 e0, g1 pid 1 cam 2 e0, g2 pid 1 cam 2 e1, g3 pid 3 e0, g4 pid 1
 * cam 1 e0 (junk). Order: g0 g1 g3 g2 -> hits at positions 2 and 4:
 * AP = (1/2 + 2/4) / 2 = 0.5, mINP = 2/4, CMC = 0, 1, 1, ... */
static void test_ties_by_gallery_index(void **state) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  float qf[4] = {1, 0, 0, 0};
  int64_t qp[1] = {1}, qc[1] = {1};
  float gf[5 * 4] = {1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
  int64_t gp[5] = {2, 1, 1, 3, 1}, gc[5] = {1, 2, 2, 1, 1};
  int64_t g0, ng;
  slr_shard_rows(5, rank, size, &g0, &ng);
  for (int m = 0; m < 2; m++) {
    slr_eval_opts o;
    slr_eval_opts_default(&o);
    o.metric = (slr_metric)m;
    slr_eval_result r;
    assert_all(slr_eval_market1501(MPI_COMM_WORLD, 4, qf, qp, qc, rank == 0 ? 1 : 0, gf + g0 * 4,
                                   gp + g0, gc + g0, ng, &o, &r) == 0);
    assert_all(r.num_valid == 1 && r.num_query == 1 && r.num_gallery == 5);
    assert_all(fabs(r.map - 0.5) < 1e-12 && fabs(r.minp - 0.5) < 1e-12);
    assert_all(r.cmc[0] == 0 && r.cmc[1] == 1 && r.cmc[49] == 1);
  }
}

static void test_errors(void **state) {
  int rank, size;
  eval_set s;
  int64_t q0, nq, g0, ng;
  eval_set_load_sharded(&s, FIXTURE, &rank, &size, &q0, &nq, &g0, &ng);
  slr_eval_result r;

  /* a NaN on the last rank's gallery rows only: every rank fails */
  if (rank == size - 1) s.gf[(g0 + ng - 1) * s.dim + 3] = NAN;
  int rc = eval_set_run(&s, q0, nq, g0, ng, NULL, &r);
  assert_all(rc == SLR_ERR_INPUT);
  char want[96];
  snprintf(want, sizeof want, "gallery feature row %lld has a non-finite", (long long)(s.ng - 1));
  if (rank == 0) assert_non_null(strstr(slr_error_text(), want));
  if (rank == size - 1) s.gf[(g0 + ng - 1) * s.dim + 3] = 0;

  /* no query rows anywhere */
  assert_all(eval_set_run(&s, 0, 0, g0, ng, NULL, &r) == SLR_ERR_INPUT);
  assert_all(strstr(slr_error_text(), "query set is empty") != NULL);

  /* no query has a match: shift every gallery pid out of range */
  for (int64_t j = 0; j < s.ng; j++) s.gp[j] += 100000;
  assert_all(eval_set_run(&s, q0, nq, g0, ng, NULL, &r) == SLR_ERR_INPUT);
  assert_all(strstr(slr_error_text(), "has a match in the gallery") != NULL);
  eval_set_free(&s);

  /* the JSON text needs its room */
  char small[200], big[2048];
  memset(&r, 0, sizeof r);
  r.cmc[49] = 1;
  assert_all(slr_eval_format_json(&r, SLR_METRIC_COSINE, small, sizeof small) == SLR_ERR);
  assert_all(slr_eval_format_json(&r, SLR_METRIC_COSINE, big, sizeof big) == 0);
  assert_all(strstr(big, "\"metric\": \"cosine\"") != NULL && strstr(big, ", 1]\n}\n") != NULL);

  slr_metric m;
  assert_all(slr_metric_parse("manhattan", &m) == SLR_ERR_USAGE);
  assert_all(strstr(slr_error_text(), "\"manhattan\"") != NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_against_reference),
    cmocka_unit_test(test_uneven_shards),
    cmocka_unit_test(test_ties_by_gallery_index),
    cmocka_unit_test(test_errors),
};
SLR_TEST_MAIN_MPI(tests)
