/* data sampler: P x K batch composition, companions from other cameras
 * first, without replacement when there are enough, repeats for identities
 * with too few images, outliers (pid < 0) never drawn, every identity once
 * per pass, determinism for a seed, and the sequential sharding. */
#include <stdlib.h>
#include <string.h>

#include "slr/data.h"
#include "slr_test.h"

/* 12 identities (pids 100..111, not contiguous on purpose):
 *   pid 100: one image
 *   pid 101: three images, all camera 0
 *   pid 102..111: 2 + (pid % 5) images per camera over 3 cameras
 * and outliers (pid -1) in between. */
static int64_t make(int32_t *pids, int32_t *cams) {
  int64_t n = 0;
  pids[n] = 100, cams[n++] = 2;
  for (int i = 0; i < 3; i++) pids[n] = -1, cams[n++] = 1;
  for (int i = 0; i < 3; i++) pids[n] = 101, cams[n++] = 0;
  for (int p = 102; p < 112; p++)
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < 2 + p % 5; i++) {
        pids[n] = p, cams[n++] = c;
        if (i == 0) pids[n] = -1, cams[n++] = c;
      }
  return n;
}

static void test_composition(void **state) {
  int32_t pids[512], cams[512];
  int64_t n = make(pids, cams);
  slr_id_sampler s;
  const int P = 4, K = 4;
  assert_int_equal(slr_id_sampler_init(&s, pids, cams, n, P, K), 0);
  assert_int_equal(s.num_pids, 12);
  int seen_single = 0, seen_onecam = 0;
  for (int64_t epoch = 0; epoch < 3; epoch++) {
    int count[12] = {0};
    for (int64_t step = 0; step < 3; step++) {
      int64_t b[16];
      slr_id_sampler_batch(&s, 42, epoch, step, b);
      for (int j = 0; j < P; j++) {
        const int64_t *g = b + j * K;
        int32_t pid = pids[g[0]];
        assert_true(pid >= 100);
        count[pid - 100]++;
        for (int k = 1; k < K; k++) assert_int_equal(pids[g[k]], pid);
        if (pid == 100) {
          /* a single image: repeated */
          seen_single = 1;
          for (int k = 1; k < K; k++) assert_int_equal(g[k], g[0]);
        } else if (pid == 101) {
          /* one camera: the other images of the identity, never the anchor */
          seen_onecam = 1;
          for (int k = 1; k < K; k++) assert_true(g[k] != g[0]);
        } else {
          /* companions from other cameras, distinct (>= K candidates) */
          for (int k = 1; k < K; k++) {
            assert_true(cams[g[k]] != cams[g[0]]);
            for (int m = 1; m < k; m++) assert_true(g[m] != g[k]);
          }
        }
      }
    }
    /* 3 steps x 4 identities = one pass: every identity exactly once */
    for (int i = 0; i < 12; i++) assert_int_equal(count[i], 1);
  }
  assert_true(seen_single && seen_onecam);
  slr_id_sampler_free(&s);
}

static void test_determinism(void **state) {
  int32_t pids[512], cams[512];
  int64_t n = make(pids, cams);
  slr_id_sampler s;
  assert_int_equal(slr_id_sampler_init(&s, pids, cams, n, 4, 4), 0);
  int64_t a[16], b[16];
  slr_id_sampler_batch(&s, 7, 2, 5, a);
  slr_id_sampler_batch(&s, 7, 2, 5, b);
  assert_memory_equal(a, b, sizeof a);
  int same_seed = 0, same_epoch = 0;
  for (int t = 0; t < 10; t++) {
    slr_id_sampler_batch(&s, 8 + t, 2, 5, b);
    same_seed += memcmp(a, b, sizeof a) == 0;
    slr_id_sampler_batch(&s, 7, 3 + t, 5, b);
    same_epoch += memcmp(a, b, sizeof a) == 0;
  }
  assert_true(same_seed == 0 && same_epoch == 0);
  slr_id_sampler_free(&s);
}

static void test_replacement(void **state) {
  /* two images per camera over two cameras, K = 4: three companions from
   * the two other-camera images, so drawn with replacement */
  int32_t pids[] = {0, 0, 0, 0, 1, 1, 1, 1};
  int32_t cams[] = {0, 0, 1, 1, 0, 0, 1, 1};
  slr_id_sampler s;
  assert_int_equal(slr_id_sampler_init(&s, pids, cams, 8, 2, 4), 0);
  for (int64_t step = 0; step < 20; step++) {
    int64_t b[8];
    slr_id_sampler_batch(&s, 1, 0, step, b);
    for (int j = 0; j < 2; j++)
      for (int k = 1; k < 4; k++) {
        assert_int_equal(pids[b[j * 4 + k]], pids[b[j * 4]]);
        assert_true(cams[b[j * 4 + k]] != cams[b[j * 4]]);
      }
  }
  slr_id_sampler_free(&s);
  /* all outliers: an error */
  int32_t none[] = {-1, -1};
  assert_int_equal(slr_id_sampler_init(&s, none, cams, 2, 2, 4), SLR_ERR);
}

static void test_seq_shard(void **state) {
  for (int size = 1; size <= 5; size++) {
    int64_t next = 0;
    for (int r = 0; r < size; r++) {
      int64_t first, count;
      slr_shard_rows(103, r, size, &first, &count);
      assert_int_equal(first, next);
      next += count;
    }
    assert_int_equal(next, 103);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_composition),
      cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_replacement),
      cmocka_unit_test(test_seq_shard),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
