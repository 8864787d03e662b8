/* data/sampler: the Re-ID identity sampler (P identities x K instances,
 * companions from other cameras first), made a pure function of (seed,
 * epoch, step) so that every rank draws the same global batch and loads its
 * own slice; the sequential sharding used for feature extraction; and the
 * check that decodes every image of a split. */
#include <stdlib.h>
#include <string.h>

#include "slr/data.h"
#include "slr/dist.h"

enum { KEY_PERM = 0x50455231u, KEY_SLOT };

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

int slr_id_sampler_init(slr_id_sampler *s, const int32_t *pids, const int32_t *camids, int64_t n,
                        int P, int K) {
  memset(s, 0, sizeof *s);
  if (P < 1 || K < 1)
    return SLR_FAIL(SLR_ERR, "identity sampler: P = %d and K = %d must be >= 1", P, K);
  s->n = n;
  s->P = P;
  s->K = K;
  int32_t *sorted;
  SLR_ALLOC(sorted, (size_t)(n ? n : 1) * sizeof *sorted);
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++)
    if (pids[i] >= 0) sorted[m++] = pids[i];
  qsort(sorted, (size_t)m, sizeof *sorted, cmp_i32);
  int64_t u = 0;
  for (int64_t i = 0; i < m; i++)
    if (u == 0 || sorted[u - 1] != sorted[i]) sorted[u++] = sorted[i];
  if (u == 0) {
    free(sorted);
    return SLR_FAIL(SLR_ERR, "identity sampler: no sample has an identity (all pids < 0)");
  }
  s->num_pids = (int32_t)u;
  s->pid_ids = sorted;
  s->pid_start = calloc((size_t)u + 1, sizeof *s->pid_start);
  s->members = malloc((size_t)(m ? m : 1) * sizeof *s->members);
  s->cams = malloc((size_t)(n ? n : 1) * sizeof *s->cams);
  if (!s->pid_start || !s->members || !s->cams) {
    slr_id_sampler_free(s);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory in the identity sampler");
  }
  if (n) memcpy(s->cams, camids, (size_t)n * sizeof *s->cams);
  int32_t *group = malloc((size_t)(n ? n : 1) * sizeof *group);
  if (!group) {
    slr_id_sampler_free(s);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory in the identity sampler");
  }
  for (int64_t i = 0; i < n; i++) {
    group[i] = -1;
    if (pids[i] < 0) continue;
    int32_t *f = bsearch(&pids[i], sorted, (size_t)u, sizeof *sorted, cmp_i32);
    group[i] = (int32_t)(f - sorted);
    s->pid_start[group[i] + 1]++;
  }
  for (int64_t g = 0; g < u; g++) s->pid_start[g + 1] += s->pid_start[g];
  int64_t *fill = malloc((size_t)u * sizeof *fill);
  if (!fill) {
    free(group);
    slr_id_sampler_free(s);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory in the identity sampler");
  }
  memcpy(fill, s->pid_start, (size_t)u * sizeof *fill);
  for (int64_t i = 0; i < n; i++)
    if (group[i] >= 0) s->members[fill[group[i]]++] = i;
  free(fill);
  free(group);
  return 0;
}

void slr_id_sampler_free(slr_id_sampler *s) {
  free(s->pid_start);
  free(s->members);
  free(s->cams);
  free(s->pid_ids);
  memset(s, 0, sizeof *s);
}

/* Draw k of the cnt candidates into out: without replacement when cnt >= K
 * (as CC's sampler: `len(select) >= num_instances`), else with replacement. */
static void draw(slr_rng *r, int64_t *cand, int64_t cnt, int k, int K, int64_t *out) {
  if (cnt >= K) {
    for (int j = 0; j < k; j++) {
      int64_t t = j + (int64_t)slr_rng_below(r, (uint64_t)(cnt - j));
      int64_t tmp = cand[j];
      cand[j] = cand[t];
      cand[t] = tmp;
      out[j] = cand[j];
    }
  } else {
    for (int j = 0; j < k; j++) out[j] = cand[slr_rng_below(r, (uint64_t)cnt)];
  }
}

void slr_id_sampler_batch(const slr_id_sampler *s, uint64_t seed, int64_t epoch, int64_t step,
                          int64_t *out) {
  const int P = s->P, K = s->K;
  const int64_t np = s->num_pids;
  int64_t maxg = 0;
  for (int64_t g = 0; g < np; g++) {
    int64_t c = s->pid_start[g + 1] - s->pid_start[g];
    if (c > maxg) maxg = c;
  }
  int32_t *perm = malloc((size_t)np * sizeof *perm);
  int64_t *cand = malloc((size_t)maxg * sizeof *cand);
  int64_t perm_pass = -1;
  for (int j = 0; j < P; j++) {
    /* the identity of slot j: position step * P + j of the epoch's
     * sequence of random permutations of all identities */
    int64_t g = step * P + j, pass = g / np, at = g % np;
    if (pass != perm_pass && perm) {
      slr_rng pr;
      slr_rng_init(&pr, seed, slr_rng_stream_id(KEY_PERM, (uint64_t)epoch, (uint64_t)pass, 0), 0);
      for (int64_t i = 0; i < np; i++) perm[i] = (int32_t)i;
      for (int64_t i = np - 1; i > 0; i--) {
        int64_t t = (int64_t)slr_rng_below(&pr, (uint64_t)(i + 1));
        int32_t tmp = perm[i];
        perm[i] = perm[t];
        perm[t] = tmp;
      }
      perm_pass = pass;
    }
    int64_t grp = perm ? perm[at] : at;
    slr_rng r;
    slr_rng_init(&r, seed,
                 slr_rng_stream_id(KEY_SLOT, (uint64_t)epoch, (uint64_t)step, (uint64_t)j), 0);
    const int64_t *mem = s->members + s->pid_start[grp];
    int64_t cnt = s->pid_start[grp + 1] - s->pid_start[grp];
    int64_t *dst = out + (int64_t)j * K;
    int64_t anchor = mem[slr_rng_below(&r, (uint64_t)cnt)];
    dst[0] = anchor;
    if (K == 1) continue;
    int64_t nc = 0;
    if (cand) {
      for (int64_t i = 0; i < cnt; i++)
        if (s->cams[mem[i]] != s->cams[anchor]) cand[nc++] = mem[i];
      if (nc == 0)
        for (int64_t i = 0; i < cnt; i++)
          if (mem[i] != anchor) cand[nc++] = mem[i];
    }
    if (nc == 0)
      for (int k = 1; k < K; k++) dst[k] = anchor;
    else
      draw(&r, cand, nc, K - 1, K, dst + 1);
  }
  free(perm);
  free(cand);
}

int slr_split_check(const slr_split *s, int skip_corrupt, MPI_Comm comm, int64_t *bad) {
  int rank, size;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  SLR_MPI(MPI_Comm_size(comm, &size));
  int64_t first, count;
  slr_shard_rows(s->n, rank, size, &first, &count);
  long long local = 0, total = 0;
  int rc = 0;
  for (int64_t i = first; i < first + count && !rc; i++) {
    slr_image im;
    rc = slr_image_read(s->paths[i], &im);
    slr_image_free(&im);
    if (rc == SLR_ERR_INPUT && skip_corrupt) {
      slr_log_rank(SLR_LOG_WARN, "skipping %s (data.skip_corrupt)", slr_error_text());
      slr_error_clear();
      local++;
      rc = 0;
    }
  }
  SLR_TRY(slr_agree(comm, rc));
  SLR_MPI(MPI_Allreduce(&local, &total, 1, MPI_LONG_LONG, MPI_SUM, comm));
  *bad = (int64_t)total;
  return 0;
}
