// ranks: 1 2 3 4
/* dist: MPI context, row sharding, BLACS grid shape, block-cyclic index
 * helpers against ScaLAPACK's own numroc, and collective error agreement. */
#include <stdlib.h>
#include <string.h>

#include "slr/dist.h"
#include "slr_test.h"

static void test_ctx(void **state) {
  slr_ctx ctx;
  assert_int_equal(slr_ctx_init(&ctx, MPI_COMM_WORLD), 0);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  assert_int_equal(ctx.rank, rank);
  assert_int_equal(ctx.size, size);
  assert_int_equal(ctx.node_size, size); /* one node here */
  assert_int_equal(ctx.node_rank, rank);
  assert_int_equal(ctx.node_count, 1);
  slr_ctx_free(&ctx);
}

static void test_shard(void **state) {
  for (int64_t n = 0; n < 40; n++)
    for (int size = 1; size <= 7; size++) {
      int64_t next = 0, mn = n, mx = 0;
      for (int r = 0; r < size; r++) {
        int64_t r0, cnt;
        slr_shard_rows(n, r, size, &r0, &cnt);
        assert_int_equal(r0, next);
        next += cnt;
        if (cnt < mn) mn = cnt;
        if (cnt > mx) mx = cnt;
      }
      assert_int_equal(next, n);
      assert_true(mx - mn <= 1);
    }
}

static void test_grid_shape(void **state) {
  int p, q;
  int expect[][3] = {{1, 1, 1}, {2, 1, 2}, {3, 1, 3}, {4, 2, 2}, {6, 2, 3},
                     {8, 2, 4}, {12, 3, 4}, {16, 4, 4}, {7, 1, 7}, {36, 6, 6}};
  for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
    slr_grid_shape(expect[i][0], &p, &q);
    assert_int_equal(p, expect[i][1]);
    assert_int_equal(q, expect[i][2]);
  }
}

/* numroc, owner, l2g and g2l agree with ScaLAPACK's numroc_ and with each
 * other, for many sizes, block sizes, process counts and source processes */
static void test_block_cyclic(void **state) {
  for (int n = 0; n <= 57; n += 3)
    for (int nb = 1; nb <= 9; nb += 2)
      for (int np = 1; np <= 5; np++)
        for (int src = 0; src < np; src++) {
          int64_t total = 0;
          for (int ip = 0; ip < np; ip++) {
            int fn = n, fnb = nb, fip = ip, fsrc = src, fnp = np;
            int ref = numroc_(&fn, &fnb, &fip, &fsrc, &fnp);
            int64_t mine = slr_bc_numroc(n, nb, ip, src, np);
            assert_int_equal(mine, ref);
            total += mine;
            for (int64_t il = 0; il < mine; il++) {
              int64_t ig = slr_bc_l2g(il, nb, ip, src, np);
              assert_true(ig >= 0 && ig < n);
              assert_int_equal(slr_bc_owner(ig, nb, src, np), ip);
              assert_int_equal(slr_bc_g2l(ig, nb, np), il);
            }
          }
          assert_int_equal(total, n);
        }
}

static void test_blacs_grid(void **state) {
  slr_grid g;
  assert_int_equal(slr_grid_init(&g, MPI_COMM_WORLD), 0);
  int size, rank;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  assert_int_equal(g.nprow * g.npcol, size);
  assert_true(g.nprow <= g.npcol);
  /* row-major ordering of ranks */
  assert_int_equal(g.myrow * g.npcol + g.mycol, rank);
  slr_grid_free(&g);
}

/* A failure on one rank only is agreed on by all, with its message. */
static void test_agree(void **state) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  slr_error_clear();
  assert_int_equal(slr_agree(MPI_COMM_WORLD, 0), 0);
  int bad = size - 1;
  int rc = rank == bad ? SLR_FAIL(SLR_ERR_INPUT, "file x.jpg is corrupt") : 0;
  rc = slr_agree(MPI_COMM_WORLD, rc);
  assert_int_equal(rc, SLR_ERR_INPUT);
  assert_string_equal(slr_error_text(), "file x.jpg is corrupt");
  char who[32];
  snprintf(who, sizeof who, "[rank %d]", bad);
  assert_non_null(strstr(slr_error_message(), who));
  /* the lowest failing rank wins */
  rc = SLR_FAIL(rank == 0 ? SLR_ERR : SLR_ERR_INPUT, "rank %d failed", rank);
  rc = slr_agree(MPI_COMM_WORLD, rc);
  assert_int_equal(rc, SLR_ERR);
  assert_string_equal(slr_error_text(), "rank 0 failed");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ctx),        cmocka_unit_test(test_shard),
    cmocka_unit_test(test_grid_shape), cmocka_unit_test(test_block_cyclic),
    cmocka_unit_test(test_blacs_grid), cmocka_unit_test(test_agree),
};
SLR_TEST_MAIN_MPI(tests)
