/* data/loader: worker threads (pthreads) decode and augment the next
 * training batches while the caller trains on the current one. A ring of
 * `depth` batch buffers bounds the memory; each batch is cut into small
 * chunks of samples so that all workers help with the batch needed first.
 * The samples, their order and their random draws are those of the
 * identity sampler and the batcher, so prefetching changes nothing in the
 * result. */
#include <stdlib.h>
#include <string.h>

#include "slr/data.h"

#define CHUNK 8

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };

typedef struct {
  int state;
  int64_t epoch, step;
  int64_t pos0, count;      /* this rank's slice of the global batch */
  int64_t next, done, busy; /* samples handed out, finished, in flight */
  int64_t *idx;             /* (count) */
  float *x;                 /* (count, 3, H, W) */
  int rc;
  char msg[1024];
} slot;

struct slr_loader {
  slr_batcher *b;
  int seq; /* extraction: contiguous batches, test transform */
  int64_t seq_first, seq_count, seq_batch;
  const slr_id_sampler *s;
  uint64_t seed;
  int rank, size, workers, depth;
  int64_t global, max_count;
  size_t per;     /* floats per sample */
  int64_t *batch; /* (global) scratch for the sampler */
  slot *slots;
  int head;   /* slot of the batch handed out next */
  int handed; /* the head slot was handed out and is still in use */
  int64_t sched_epoch, sched_step, steps_per_epoch; /* next batch to schedule */
  int started;
  pthread_mutex_t mu;
  pthread_cond_t work, ready;
  int stop;
  pthread_t *threads;
  int nthreads;
};

/* Give the free slot k the next scheduled batch. Called with mu held. */
static void schedule(slr_loader *l, int k) {
  slot *sl = &l->slots[k];
  sl->epoch = l->sched_epoch;
  sl->step = l->sched_step;
  if (l->seq) {
    int64_t a = sl->step * l->seq_batch, b = a + l->seq_batch;
    if (b > l->seq_count) b = l->seq_count;
    sl->pos0 = 0;
    sl->count = b > a ? b - a : 0;
    for (int64_t i = 0; i < sl->count; i++) sl->idx[i] = l->seq_first + a + i;
  } else {
    slr_id_sampler_batch(l->s, l->seed, sl->epoch, sl->step, l->batch);
    slr_shard_rows(l->global, l->rank, l->size, &sl->pos0, &sl->count);
    memcpy(sl->idx, l->batch + sl->pos0, (size_t)sl->count * sizeof *sl->idx);
  }
  sl->next = sl->done = sl->busy = 0;
  sl->rc = 0;
  sl->msg[0] = '\0';
  /* a rank may have no sample of a small global batch */
  sl->state = sl->count > 0 ? SLOT_FILLING : SLOT_READY;
  if (++l->sched_step >= l->steps_per_epoch) {
    l->sched_step = 0;
    l->sched_epoch++;
  }
}

/* Fill samples [a, b) of slot k. Called without mu. */
static int fill_chunk(slr_loader *l, slot *sl, int64_t a, int64_t b) {
  return slr_batcher_fill(l->b, sl->idx + a, b - a, !l->seq, l->seed, sl->epoch, sl->step,
                          sl->pos0 + a, sl->x + (size_t)a * l->per);
}

/* Account for a finished chunk. Called with mu held. */
static void finish_chunk(slr_loader *l, slot *sl, int64_t n, int rc) {
  sl->done += n;
  sl->busy -= n;
  if (rc && !sl->rc) {
    sl->rc = rc;
    snprintf(sl->msg, sizeof sl->msg, "%s", slr_error_message());
    sl->next = sl->count; /* hand out no more of this batch */
    sl->done = sl->count - sl->busy;
  }
  if (sl->done >= sl->count && sl->busy == 0) sl->state = SLOT_READY;
  /* also wakes a restart waiting for the chunks in flight */
  pthread_cond_broadcast(&l->ready);
}

/* The first slot in ring order with samples left to hand out, or -1. */
static int find_work(slr_loader *l) {
  for (int d = 0; d < l->depth; d++) {
    int k = (l->head + d) % l->depth;
    slot *sl = &l->slots[k];
    if (sl->state == SLOT_FILLING && sl->next < sl->count && !(d == 0 && l->handed)) return k;
  }
  return -1;
}

static void *worker(void *arg) {
  slr_loader *l = arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    int k;
    while (!l->stop && (k = find_work(l)) < 0) pthread_cond_wait(&l->work, &l->mu);
    if (l->stop) break;
    slot *sl = &l->slots[k];
    int64_t a = sl->next, b = a + CHUNK < sl->count ? a + CHUNK : sl->count;
    sl->next = b;
    sl->busy += b - a;
    pthread_mutex_unlock(&l->mu);
    int rc = fill_chunk(l, sl, a, b);
    pthread_mutex_lock(&l->mu);
    finish_chunk(l, sl, b - a, rc);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* The part common to both kinds: buffers and threads. */
static int loader_start(slr_loader *l, int workers, int depth);

int slr_loader_create(slr_loader **out, slr_batcher *b, const slr_id_sampler *s, uint64_t seed,
                      int rank, int size, int workers, int depth) {
  *out = NULL;
  slr_loader *l = calloc(1, sizeof *l);
  if (!l) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the loader");
  l->b = b;
  l->s = s;
  l->seed = seed;
  l->rank = rank;
  l->size = size;
  l->global = (int64_t)s->P * s->K;
  int64_t p0;
  slr_shard_rows(l->global, 0, size, &p0, &l->max_count); /* rank 0 has the largest slice */
  SLR_TRY(loader_start(l, workers, depth));
  *out = l;
  return 0;
}

int slr_loader_create_seq(slr_loader **out, slr_batcher *b, int64_t first, int64_t count,
                          int64_t batch, int workers, int depth) {
  *out = NULL;
  if (batch < 1) return SLR_FAIL(SLR_ERR, "loader: batch size %lld < 1", (long long)batch);
  slr_loader *l = calloc(1, sizeof *l);
  if (!l) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the loader");
  l->b = b;
  l->seq = 1;
  l->seq_first = first;
  l->seq_count = count;
  l->seq_batch = batch;
  l->size = 1;
  l->global = batch;
  l->max_count = batch;
  SLR_TRY(loader_start(l, workers, depth));
  *out = l;
  return 0;
}

int64_t slr_loader_steps(const slr_loader *l) {
  return l->seq ? (l->seq_count + l->seq_batch - 1) / l->seq_batch : 0;
}

static int loader_start(slr_loader *l, int workers, int depth) {
  slr_batcher *b = l->b;
  l->workers = workers < 0 ? 0 : workers;
  l->depth = depth < 1 ? 1 : depth;
  if (l->workers > 0 && l->depth < 2) l->depth = 2;
  l->per = (size_t)3 * (size_t)b->tf.height * (size_t)b->tf.width;
  l->batch = malloc((size_t)(l->global ? l->global : 1) * sizeof *l->batch);
  l->slots = calloc((size_t)l->depth, sizeof *l->slots);
  int ok = l->batch && l->slots;
  for (int k = 0; ok && k < l->depth; k++) {
    l->slots[k].idx = malloc((size_t)(l->max_count ? l->max_count : 1) * sizeof(int64_t));
    l->slots[k].x = malloc((size_t)(l->max_count ? l->max_count : 1) * l->per * sizeof(float));
    ok = l->slots[k].idx && l->slots[k].x;
  }
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->work, NULL);
  pthread_cond_init(&l->ready, NULL);
  if (!ok) {
    slr_loader_free(l);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for %d batch buffers of the loader", depth);
  }
  l->threads = calloc((size_t)(l->workers ? l->workers : 1), sizeof *l->threads);
  for (int t = 0; t < l->workers && l->threads; t++) {
    if (pthread_create(&l->threads[t], NULL, worker, l) != 0) break;
    l->nthreads++;
  }
  if (l->nthreads < l->workers) {
    slr_loader_free(l);
    return SLR_FAIL(SLR_ERR, "cannot start %d loader threads", workers);
  }
  return 0;
}

/* Drop every scheduled batch and restart the schedule at (epoch, step).
 * Called with mu held; waits for the chunks in flight. */
static void restart(slr_loader *l, int64_t epoch, int64_t step) {
  for (int k = 0; k < l->depth; k++) l->slots[k].next = l->slots[k].count;
  for (;;) {
    int busy = 0;
    for (int k = 0; k < l->depth; k++) busy |= l->slots[k].busy > 0;
    if (!busy) break;
    pthread_cond_wait(&l->ready, &l->mu);
  }
  for (int k = 0; k < l->depth; k++) l->slots[k].state = SLOT_FREE;
  l->head = 0;
  l->handed = 0;
  l->sched_epoch = epoch;
  l->sched_step = step;
  l->started = 1;
}

int slr_loader_next(slr_loader *l, int64_t epoch, int64_t step, int64_t steps_per_epoch,
                    const float **x, const int64_t **idx, int64_t *count) {
  if (steps_per_epoch < 1 || step < 0 || step >= steps_per_epoch)
    return SLR_FAIL(SLR_ERR, "loader: step %lld outside [0, %lld)", (long long)step,
                    (long long)steps_per_epoch);
  pthread_mutex_lock(&l->mu);
  l->steps_per_epoch = steps_per_epoch;
  /* the batch handed out last time is free again */
  if (l->handed) {
    l->slots[l->head].state = SLOT_FREE;
    l->head = (l->head + 1) % l->depth;
    l->handed = 0;
  }
  slot *h = &l->slots[l->head];
  int match;
  if (!l->started)
    match = 0;
  else if (h->state == SLOT_FREE)
    match = l->sched_epoch == epoch && l->sched_step == step;
  else
    match = h->epoch == epoch && h->step == step;
  if (!match) restart(l, epoch, step);
  for (int d = 0; d < l->depth; d++) {
    int k = (l->head + d) % l->depth;
    /* an extraction loader stops at the end of its images */
    if (l->slots[k].state == SLOT_FREE && !(l->seq && l->sched_epoch > epoch)) schedule(l, k);
  }
  h = &l->slots[l->head];
  if (l->nthreads == 0) {
    /* no threads: fill the batch here */
    pthread_mutex_unlock(&l->mu);
    int rc = fill_chunk(l, h, 0, h->count);
    pthread_mutex_lock(&l->mu);
    h->busy += h->count;
    finish_chunk(l, h, h->count, rc);
  } else {
    pthread_cond_broadcast(&l->work);
    while (h->state != SLOT_READY) pthread_cond_wait(&l->ready, &l->mu);
  }
  l->handed = 1;
  int rc = h->rc;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", h->msg);
  *x = h->x;
  *idx = h->idx;
  *count = h->count;
  pthread_mutex_unlock(&l->mu);
  if (rc) return slr_error_set(rc, NULL, 0, "%s", msg);
  return 0;
}

void slr_loader_free(slr_loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->work);
  pthread_mutex_unlock(&l->mu);
  for (int t = 0; t < l->nthreads; t++) pthread_join(l->threads[t], NULL);
  for (int k = 0; l->slots && k < l->depth; k++) {
    free(l->slots[k].idx);
    free(l->slots[k].x);
  }
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->work);
  pthread_cond_destroy(&l->ready);
  free(l->slots);
  free(l->batch);
  free(l->threads);
  free(l);
}
