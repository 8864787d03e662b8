/* Data-parallel training: parameters broadcast from rank 0, gradients
 * averaged over the ranks in buckets of the flat gradient buffer. Buckets
 * are started from the top of the buffer (the last layers, whose gradients
 * are final first) with MPI_Iallreduce while the backward pass goes on. */
#include <stdlib.h>
#include <string.h>

#include "slr/nn.h"

int slr_dp_init(slr_dp *dp, slr_model *m, MPI_Comm comm, int64_t bucket_floats, int overlap) {
  memset(dp, 0, sizeof *dp);
  dp->m = m;
  dp->overlap = overlap;
  dp->bucket = bucket_floats > 0 ? bucket_floats : (int64_t)4 << 20;
  SLR_MPI(MPI_Comm_dup(comm, &dp->comm));
  MPI_Comm_rank(dp->comm, &dp->rank);
  MPI_Comm_size(dp->comm, &dp->size);
  dp->nbuckets = (int)((m->nparams + dp->bucket - 1) / dp->bucket);
  dp->req = malloc(sizeof(MPI_Request) * (size_t)(dp->nbuckets + 1));
  int rc = dp->req ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "out of memory (data-parallel buckets)");
  return slr_agree(comm, rc);
}

void slr_dp_free(slr_dp *dp) {
  if (dp->comm != MPI_COMM_NULL && dp->comm) MPI_Comm_free(&dp->comm);
  free(dp->req);
  memset(dp, 0, sizeof *dp);
}

int slr_dp_broadcast(slr_dp *dp) {
  slr_model *m = dp->m;
  if (dp->size == 1) return 0;
  for (int64_t o = 0; o < m->nparams; o += dp->bucket) {
    int n = (int)(m->nparams - o < dp->bucket ? m->nparams - o : dp->bucket);
    SLR_MPI(MPI_Bcast(m->params + o, n, MPI_FLOAT, 0, dp->comm));
  }
  if (m->nbuffers) SLR_MPI(MPI_Bcast(m->buffers, (int)m->nbuffers, MPI_FLOAT, 0, dp->comm));
  if (m->ncounts) SLR_MPI(MPI_Bcast(m->counts, m->ncounts, MPI_INT64_T, 0, dp->comm));
  return 0;
}

static int start_bucket(slr_dp *dp, int b) {
  int64_t o = (int64_t)b * dp->bucket;
  int n = (int)(dp->m->nparams - o < dp->bucket ? dp->m->nparams - o : dp->bucket);
  SLR_MPI(MPI_Iallreduce(MPI_IN_PLACE, dp->m->grads + o, n, MPI_FLOAT, MPI_SUM, dp->comm,
                         &dp->req[b]));
  return 0;
}

/* every bucket lying wholly at or above ready_from can go */
static int on_ready(void *ctx, int64_t ready_from) {
  slr_dp *dp = ctx;
  while (dp->next > 0 && (int64_t)(dp->next - 1) * dp->bucket >= ready_from) {
    dp->next--;
    SLR_TRY(start_bucket(dp, dp->next));
  }
  /* let the library progress the reductions already started */
  if (dp->next < dp->nbuckets) {
    int flag;
    SLR_MPI(MPI_Testall(dp->nbuckets - dp->next, dp->req + dp->next, &flag, MPI_STATUSES_IGNORE));
  }
  return 0;
}

int slr_dp_backward(slr_dp *dp, const float *dpooled, const float *dneck, const float *dlogits) {
  slr_model *m = dp->m;
  if (dp->size == 1) return slr_model_backward(m, dpooled, dneck, dlogits);
  dp->next = dp->nbuckets;
  for (int b = 0; b < dp->nbuckets; b++) dp->req[b] = MPI_REQUEST_NULL;
  if (dp->overlap) {
    m->grad_ready = on_ready;
    m->grad_ready_ctx = dp;
  }
  int rc = slr_model_backward(m, dpooled, dneck, dlogits);
  m->grad_ready = NULL;
  m->grad_ready_ctx = NULL;
  /* a rank that failed still takes part in the reductions, then all agree */
  while (dp->next > 0) {
    dp->next--;
    int src = start_bucket(dp, dp->next);
    if (!rc) rc = src;
  }
  SLR_MPI(MPI_Waitall(dp->nbuckets, dp->req, MPI_STATUSES_IGNORE));
  rc = slr_agree(dp->comm, rc);
  if (rc) return rc;
  float s = 1.0f / (float)dp->size;
  float *g = m->grads;
  int64_t n = m->nparams;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) g[i] *= s;
  return 0;
}
