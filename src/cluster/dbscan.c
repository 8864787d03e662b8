/* cluster/dbscan: DBSCAN on a sparse, row-sharded, symmetric distance
 * matrix with scikit-learn's labels (metric='precomputed' on the dense
 * matrix, missing entries = 1). Core flags from the rank-local
 * neighbourhoods, a union-find over core-core edges per rank, the forests
 * merged up a binary tree of ranks and the result broadcast, clusters
 * numbered by their lowest-index core point, border points given the
 * lowest-numbered cluster among their core neighbours. */
#include <stdlib.h>
#include <string.h>

#include "neighbours.h"
#include "slr/cluster.h"

static int32_t uf_find(int32_t *parent, int32_t x) {
  int32_t r = x;
  while (parent[r] != r) r = parent[r];
  while (parent[x] != r) {
    int32_t next = parent[x];
    parent[x] = r;
    x = next;
  }
  return r;
}

/* union keeping the lower index as the root */
static void uf_union(int32_t *parent, int32_t a, int32_t b) {
  int32_t ra = uf_find(parent, a), rb = uf_find(parent, b);
  if (ra < rb)
    parent[rb] = ra;
  else if (rb < ra)
    parent[ra] = rb;
}

int slr_dbscan(MPI_Comm comm, const slr_sparse *dist, double eps, int min_samples,
               int32_t *labels, int64_t *n_clusters) {
  int rank, size;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  SLR_MPI(MPI_Comm_size(comm, &size));
  int64_t n = dist->n, nrows = dist->nrows, row0 = dist->row0;
  int rc = 0;
  if (!(eps > 0.0))
    rc = SLR_FAIL(SLR_ERR, "DBSCAN: eps = %g must be > 0", eps);
  else if (min_samples < 1)
    rc = SLR_FAIL(SLR_ERR, "DBSCAN: min_samples = %d must be >= 1", min_samples);
  SLR_TRY(slr_agree(comm, rc));
  int64_t *off = NULL;
  SLR_TRY(slr_block_layout(comm, nrows, n, &off));
  if (off[rank] != row0) rc = SLR_FAIL(SLR_ERR, "DBSCAN: rows do not match the row blocks");
  rc = slr_agree(comm, rc);
  if (rc) {
    free(off);
    return rc;
  }

  /* eps >= 1: every pair (distance <= 1) is a neighbour */
  if (eps >= 1.0) {
    int32_t v = n >= min_samples ? 0 : -1;
    for (int64_t i = 0; i < n; i++) labels[i] = v;
    if (n_clusters) *n_clusters = v == 0 && n > 0 ? 1 : 0;
    free(off);
    return 0;
  }
  /* d <= eps as NumPy compares a float32 matrix with a Python float: in float32 */
  const float epsf = (float)eps;

  uint8_t *core = malloc((size_t)n + 1);
  uint8_t *mycore = malloc((size_t)nrows + 1);
  int32_t *parent = malloc((size_t)n * sizeof(int32_t) + 1);
  int32_t *other = size > 1 ? malloc((size_t)n * sizeof(int32_t) + 1) : NULL;
  int32_t *mylab = malloc((size_t)nrows * sizeof(int32_t) + 1);
  int *cnt = malloc((size_t)size * sizeof(int)), *dsp = malloc((size_t)size * sizeof(int));
  if (!core || !mycore || !parent || (size > 1 && !other) || !mylab || !cnt || !dsp)
    rc = SLR_FAIL(SLR_ERR_NOMEM, "DBSCAN: out of memory (n = %lld)", (long long)n);
  rc = slr_agree(comm, rc);
  if (rc) goto done;
  for (int q = 0; q < size; q++) {
    cnt[q] = (int)(off[q + 1] - off[q]);
    dsp[q] = (int)off[q];
  }

  /* core flags of my rows, shared */
  for (int64_t r = 0; r < nrows; r++) {
    int64_t c = 1;
    for (int64_t e = dist->indptr[r]; e < dist->indptr[r + 1]; e++)
      c += dist->indices[e] != (int32_t)(row0 + r) && dist->values[e] <= epsf;
    mycore[r] = c >= min_samples;
  }
  {
    int mrc = MPI_Allgatherv(mycore, (int)nrows, MPI_UINT8_T, core, cnt, dsp, MPI_UINT8_T, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgatherv (core flags)", __FILE__, __LINE__);
  }
  rc = slr_agree(comm, rc);
  if (rc) goto done;

  /* union-find over my core-core edges */
  for (int64_t x = 0; x < n; x++) parent[x] = (int32_t)x;
  for (int64_t r = 0; r < nrows; r++) {
    if (!mycore[r]) continue;
    int32_t i = (int32_t)(row0 + r);
    for (int64_t e = dist->indptr[r]; e < dist->indptr[r + 1]; e++) {
      int32_t j = dist->indices[e];
      if (j != i && core[j] && dist->values[e] <= epsf) uf_union(parent, i, j);
    }
  }

  /* merge the forests up a binary tree of ranks, then broadcast */
  for (int step = 1; step < size && !rc; step *= 2) {
    if (rank % (2 * step) == step) {
      for (int64_t x = 0; x < n; x++) parent[x] = uf_find(parent, (int32_t)x);
      int mrc = MPI_Send(parent, (int)n, MPI_INT32_T, rank - step, 500, comm);
      if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Send (forest)", __FILE__, __LINE__);
    } else if (rank % (2 * step) == 0 && rank + step < size) {
      int mrc = MPI_Recv(other, (int)n, MPI_INT32_T, rank + step, 500, comm, MPI_STATUS_IGNORE);
      if (mrc != MPI_SUCCESS) {
        rc = slr_error_mpi(mrc, "MPI_Recv (forest)", __FILE__, __LINE__);
        break;
      }
      for (int64_t x = 0; x < n; x++)
        if (other[x] != (int32_t)x) uf_union(parent, (int32_t)x, other[x]);
    }
  }
  rc = slr_agree(comm, rc);
  if (rc) goto done;
  if (rank == 0)
    for (int64_t x = 0; x < n; x++) parent[x] = uf_find(parent, (int32_t)x);
  if (size > 1) {
    int mrc = MPI_Bcast(parent, (int)n, MPI_INT32_T, 0, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Bcast (components)", __FILE__, __LINE__);
    rc = slr_agree(comm, rc);
    if (rc) goto done;
  }

  /* clusters in the order of their lowest-index core point (the root) */
  int32_t next = 0;
  for (int64_t x = 0; x < n; x++) {
    if (!core[x])
      labels[x] = -1;
    else if (parent[x] == (int32_t)x)
      labels[x] = next++;
    else
      labels[x] = labels[parent[x]];
  }
  /* border points of my rows: the lowest-numbered cluster among core neighbours */
  for (int64_t r = 0; r < nrows; r++) {
    int64_t i = row0 + r;
    if (core[i]) {
      mylab[r] = labels[i];
      continue;
    }
    int32_t best = -1;
    for (int64_t e = dist->indptr[r]; e < dist->indptr[r + 1]; e++) {
      int32_t j = dist->indices[e];
      if (j != (int32_t)i && core[j] && dist->values[e] <= epsf && (best < 0 || labels[j] < best))
        best = labels[j];
    }
    mylab[r] = best;
  }
  {
    int mrc = MPI_Allgatherv(mylab, (int)nrows, MPI_INT32_T, labels, cnt, dsp, MPI_INT32_T, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgatherv (labels)", __FILE__, __LINE__);
  }
  rc = slr_agree(comm, rc);
  if (!rc && n_clusters) *n_clusters = next;

done:
  free(off);
  free(core);
  free(mycore);
  free(parent);
  free(other);
  free(mylab);
  free(cnt);
  free(dsp);
  return rc;
}
