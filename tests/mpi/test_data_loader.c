// ranks: 1 2 3
/* data over ranks: on a small synthetic domain written collectively, every
 * rank draws the same global batch; the slices the ranks fill (directly or
 * through the threaded loader) put together equal the whole batch filled by
 * one process, bit for bit; the sequential shards cover every image once;
 * a corrupt image met by one rank only stops every rank with its name. */
#include <stdlib.h>
#include <string.h>

#include "slr/data.h"
#include "slr/dist.h"
#include "slr_test.h"

static char *root;
static slr_dataset ds;
static slr_transform tf;
static int rank, size;

static int setup(void **state) {
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char *tmp = slr_test_tmpdir(1);
  root = malloc(strlen(tmp) + 16);
  sprintf(root, "%s/dom", tmp);
  free(tmp);
  slr_synth_opts o;
  slr_synth_defaults(&o);
  o.ids = 10;
  o.cams = 3;
  o.per_cam = 3;
  o.height = 32;
  o.width = 16;
  o.seed = 3;
  if (slr_synth_write(&o, root, MPI_COMM_WORLD)) return -1;
  slr_domain_cfg c;
  memset(&c, 0, sizeof c);
  c.format = SLR_FMT_MARKET1501;
  slr_strlcpy(c.root, root, sizeof c.root);
  if (slr_dataset_load(&ds, &c, MPI_COMM_WORLD)) return -1;
  slr_data_cfg dc;
  memset(&dc, 0, sizeof dc);
  dc.height = 48;
  dc.width = 24;
  strcpy(dc.interpolation, "bicubic");
  dc.flip_p = 0.5;
  dc.pad = 4;
  dc.erase_p = 0.5;
  return slr_transform_from_config(&tf, &dc);
}

static int teardown(void **state) {
  slr_dataset_free(&ds);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    char *sl = strrchr(root, '/');
    *sl = '\0';
    slr_test_rmtree(root);
  }
  free(root);
  return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

/* rank 0 read the folders; every rank holds the same arrays */
static void test_same_dataset(void **state) {
  uint64_t h = 1469598103934665603ull;
  for (int k = 0; k < SLR_NSPLITS; k++) {
    const slr_split *s = &ds.split[k];
    h = fnv(h, &s->n, sizeof s->n);
    h = fnv(h, &s->num_pids, sizeof s->num_pids);
    for (int64_t i = 0; i < s->n; i++) {
      h = fnv(h, s->paths[i], strlen(s->paths[i]) + 1);
      h = fnv(h, &s->pids[i], sizeof s->pids[i]);
      h = fnv(h, &s->camids[i], sizeof s->camids[i]);
    }
  }
  uint64_t h0 = h;
  MPI_Bcast(&h0, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  assert_all(h == h0);
  assert_all(ds.split[SLR_QUERY].n == 10 && ds.split[SLR_GALLERY].n == 35);
  assert_all(strcmp(ds.name, "Market-1501") == 0);
}

static void test_same_global_batch(void **state) {
  const slr_split *tr = &ds.split[SLR_TRAIN];
  assert_all(tr->n == 5 * 3 * 3 && tr->num_pids == 5);
  slr_id_sampler s;
  assert_all(slr_id_sampler_init(&s, tr->pids, tr->camids, tr->n, 3, 4) == 0);
  const int G = 12;
  const size_t per = (size_t)3 * tf.height * tf.width;
  slr_batcher b;
  assert_all(slr_batcher_init(&b, tr, &tf, 1, 0) == 0);
  slr_loader *l = NULL;
  assert_all(slr_loader_create(&l, &b, &s, 9, rank, size, 2, 3) == 0);
  float *mine = malloc((size_t)G * per * sizeof(float));
  float *all = malloc((size_t)G * per * sizeof(float));
  float *ref = malloc((size_t)G * per * sizeof(float));
  int counts[8], displs[8];
  for (int r = 0; r < size; r++) {
    int64_t p0, c;
    slr_shard_rows(G, r, size, &p0, &c);
    counts[r] = (int)(c * (int64_t)per);
    displs[r] = (int)(p0 * (int64_t)per);
  }
  for (int64_t epoch = 0; epoch < 2; epoch++)
    for (int64_t step = 0; step < 4; step++) {
      int64_t batch[12], root_batch[12];
      slr_id_sampler_batch(&s, 9, epoch, step, batch);
      memcpy(root_batch, batch, sizeof batch);
      MPI_Bcast(root_batch, 12, MPI_INT64_T, 0, MPI_COMM_WORLD);
      assert_all(memcmp(batch, root_batch, sizeof batch) == 0);
      /* this rank's slice, filled directly */
      int64_t p0, c;
      slr_shard_rows(G, rank, size, &p0, &c);
      assert_all(slr_agree(MPI_COMM_WORLD,
                           slr_batcher_fill(&b, batch + p0, c, 1, 9, epoch, step, p0, mine)) == 0);
      MPI_Allgatherv(mine, counts[rank], MPI_FLOAT, all, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
      /* the whole batch filled by this process alone */
      assert_all(slr_batcher_fill(&b, batch, G, 1, 9, epoch, step, 0, ref) == 0);
      assert_all(memcmp(all, ref, (size_t)G * per * sizeof(float)) == 0);
      /* through the loader threads: the same slice */
      const float *x;
      const int64_t *idx;
      int64_t n;
      assert_all(slr_loader_next(l, epoch, step, 4, &x, &idx, &n) == 0);
      assert_all(n == c && memcmp(idx, batch + p0, (size_t)c * sizeof *idx) == 0);
      assert_all(memcmp(x, ref + (size_t)p0 * per, (size_t)c * per * sizeof(float)) == 0);
    }
  /* a jump (resume) restarts the prefetch at the requested batch */
  const float *x;
  const int64_t *idx;
  int64_t n;
  assert_all(slr_loader_next(l, 5, 2, 4, &x, &idx, &n) == 0);
  int64_t batch[12], p0, c;
  slr_id_sampler_batch(&s, 9, 5, 2, batch);
  slr_shard_rows(G, rank, size, &p0, &c);
  assert_all(n == c && memcmp(idx, batch + p0, (size_t)c * sizeof *idx) == 0);
  assert_all(slr_batcher_fill(&b, batch, G, 1, 9, 5, 2, 0, ref) == 0);
  assert_all(memcmp(x, ref + (size_t)p0 * per, (size_t)c * per * sizeof(float)) == 0);
  slr_loader_free(l);
  slr_batcher_free(&b);
  slr_id_sampler_free(&s);
  free(mine);
  free(all);
  free(ref);
}

/* a global batch of one sample: the other ranks get empty slices */
static void test_tiny_batch(void **state) {
  const slr_split *tr = &ds.split[SLR_TRAIN];
  slr_id_sampler s;
  assert_all(slr_id_sampler_init(&s, tr->pids, tr->camids, tr->n, 1, 1) == 0);
  slr_batcher b;
  assert_all(slr_batcher_init(&b, tr, &tf, 0, 0) == 0);
  for (int workers = 0; workers <= 2; workers += 2) {
    slr_loader *l;
    assert_all(slr_loader_create(&l, &b, &s, 4, rank, size, workers, 3) == 0);
    for (int64_t step = 0; step < 5; step++) {
      const float *x;
      const int64_t *idx;
      int64_t n;
      assert_all(slr_loader_next(l, 0, step, 5, &x, &idx, &n) == 0);
      assert_all(n == (rank == 0 ? 1 : 0));
    }
    slr_loader_free(l);
  }
  slr_batcher_free(&b);
  slr_id_sampler_free(&s);
}

static void test_seq_shards(void **state) {
  const slr_split *g = &ds.split[SLR_GALLERY];
  int64_t first, count, total = 0, next;
  slr_shard_rows(g->n, rank, size, &first, &count);
  MPI_Allreduce(&count, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  assert_all(total == g->n);
  /* contiguous: rank r starts where rank r-1 ends */
  int64_t end = first + count;
  MPI_Exscan(&end, &next, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0) next = 0;
  assert_all(next == first);
}

static void test_extraction_loader(void **state) {
  const slr_split *g = &ds.split[SLR_GALLERY];
  const size_t per = (size_t)3 * tf.height * tf.width;
  slr_batcher b;
  assert_all(slr_batcher_init(&b, g, &tf, 0, 0) == 0);
  int64_t first, count;
  slr_shard_rows(g->n, rank, size, &first, &count);
  for (int workers = 0; workers <= 2; workers += 2) {
    slr_loader *l;
    assert_all(slr_loader_create_seq(&l, &b, first, count, 5, workers, 3) == 0);
    int64_t steps = slr_loader_steps(l), seen = 0;
    assert_all(steps == (count + 4) / 5);
    float *ref = malloc(5 * per * sizeof(float));
    for (int64_t i = 0; i < steps; i++) {
      const float *x;
      const int64_t *idx;
      int64_t n;
      assert_all(slr_loader_next(l, 0, i, steps, &x, &idx, &n) == 0);
      int ok = n >= 1 && n <= 5;
      for (int64_t k = 0; k < n; k++) ok &= idx[k] == first + seen + k;
      assert_all(ok);
      assert_all(slr_batcher_fill(&b, idx, n, 0, 0, 0, 0, 0, ref) == 0);
      assert_all(memcmp(x, ref, (size_t)n * per * sizeof(float)) == 0);
      seen += n;
    }
    assert_all(seen == count);
    free(ref);
    slr_loader_free(l);
  }
  slr_batcher_free(&b);
}

static void test_bad_file_one_rank(void **state) {
  const slr_split *g = &ds.split[SLR_GALLERY];
  const char *bad = g->paths[g->n - 1]; /* in the last rank's shard */
  if (rank == 0) slr_test_write(bad, "garbage");
  MPI_Barrier(MPI_COMM_WORLD);
  int64_t nbad = -1;
  int rc = slr_split_check(g, 0, MPI_COMM_WORLD, &nbad);
  assert_all(rc == SLR_ERR_INPUT);
  if (rank == 0) assert_non_null(strstr(slr_error_message(), bad));
  assert_all(slr_split_check(g, 1, MPI_COMM_WORLD, &nbad) == 0 && nbad == 1);
  /* the batcher: only the last rank loads the bad file */
  slr_batcher b;
  assert_all(slr_batcher_init(&b, g, &tf, 0, 0) == 0);
  float *x = malloc((size_t)3 * tf.height * tf.width * sizeof(float));
  int64_t i = rank == size - 1 ? g->n - 1 : 0;
  rc = slr_agree(MPI_COMM_WORLD, slr_batcher_fill(&b, &i, 1, 0, 1, 0, 0, 0, x));
  assert_all(rc == SLR_ERR_INPUT);
  if (rank == 0) assert_non_null(strstr(slr_error_message(), bad));
  /* through the extraction loader's threads: the error and its message
   * reach the caller at the batch that holds the file */
  int64_t first, count;
  slr_shard_rows(g->n, rank, size, &first, &count);
  slr_loader *l;
  assert_all(slr_loader_create_seq(&l, &b, first, count, 4, 2, 3) == 0);
  int64_t steps = slr_loader_steps(l), failed_at = -1;
  for (int64_t st = 0; st < steps; st++) {
    const float *bx;
    const int64_t *idx;
    int64_t n;
    int r = slr_loader_next(l, 0, st, steps, &bx, &idx, &n);
    if (r && failed_at < 0) {
      failed_at = st;
      assert_int_equal(r, SLR_ERR_INPUT);
      assert_non_null(strstr(slr_error_message(), bad));
    }
  }
  slr_loader_free(l);
  assert_all(failed_at == (rank == size - 1 ? steps - 1 : -1));
  slr_batcher_free(&b);
  /* with skip_corrupt: a zero (mean) sample and a count */
  assert_all(slr_batcher_init(&b, g, &tf, 0, 1) == 0);
  rc = slr_agree(MPI_COMM_WORLD, slr_batcher_fill(&b, &i, 1, 0, 1, 0, 0, 0, x));
  assert_all(rc == 0 && b.corrupt == (rank == size - 1 ? 1 : 0));
  if (rank == size - 1) {
    float mx = 0;
    for (int k = 0; k < 3 * tf.height * tf.width; k++)
      mx = x[k] > mx ? x[k] : -x[k] > mx ? -x[k] : mx;
    assert_true(mx == 0.0f);
  }
  assert_all(slr_batcher_report(&b, MPI_COMM_WORLD) == 0);
  slr_batcher_free(&b);
  free(x);
}

static void test_setup(void **state) { assert_all(setup(NULL) == 0); }
static void test_teardown(void **state) { teardown(NULL); }

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_setup),
    cmocka_unit_test(test_same_dataset),
    cmocka_unit_test(test_same_global_batch),
    cmocka_unit_test(test_tiny_batch),
    cmocka_unit_test(test_seq_shards),
    cmocka_unit_test(test_extraction_loader),
    cmocka_unit_test(test_bad_file_one_rank),
    cmocka_unit_test(test_teardown),
};

SLR_TEST_MAIN_MPI(tests)
