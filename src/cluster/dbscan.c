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

/* Core flags of my rows: at least min_samples neighbours (d <= eps), the
 * row itself counted. Local. */
static void core_flags(const slr_sparse *dist, float epsf, int min_samples, uint8_t *mycore) {
  for (int64_t r = 0; r < dist->nrows; r++) {
    int64_t c = 1;
    for (int64_t e = dist->indptr[r]; e < dist->indptr[r + 1]; e++)
      c += dist->indices[e] != (int32_t)(dist->row0 + r) && dist->values[e] <= epsf;
    mycore[r] = c >= min_samples;
  }
}

/* Union-find over my core-core edges (parent: n entries). Local. */
static void local_forest(const slr_sparse *dist, float epsf, const uint8_t *core,
                         const uint8_t *mycore, int32_t *parent) {
  for (int64_t x = 0; x < dist->n; x++) parent[x] = (int32_t)x;
  for (int64_t r = 0; r < dist->nrows; r++) {
    if (!mycore[r]) continue;
    int32_t i = (int32_t)(dist->row0 + r);
    for (int64_t e = dist->indptr[r]; e < dist->indptr[r + 1]; e++) {
      int32_t j = dist->indices[e];
      if (j != i && core[j] && dist->values[e] <= epsf) uf_union(parent, i, j);
    }
  }
}

/* Merge the forests up a binary tree of ranks, then broadcast rank 0's
 * flattened forest (other: n entries of scratch). Collective on comm. */
static int merge_forests(MPI_Comm comm, int32_t *parent, int32_t *other, int64_t n) {
  int rank, size, rc = 0;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  SLR_MPI(MPI_Comm_size(comm, &size));
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
  SLR_TRY(slr_agree(comm, rc));
  if (rank == 0)
    for (int64_t x = 0; x < n; x++) parent[x] = uf_find(parent, (int32_t)x);
  if (size > 1) {
    int mrc = MPI_Bcast(parent, (int)n, MPI_INT32_T, 0, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Bcast (components)", __FILE__, __LINE__);
  }
  return slr_agree(comm, rc);
}

/* Clusters numbered in the order of their lowest-index core point (the
 * root), -1 for the others; returns the count. Local. */
static int32_t number_clusters(const uint8_t *core, const int32_t *parent, int64_t n,
                               int32_t *labels) {
  int32_t next = 0;
  for (int64_t x = 0; x < n; x++) {
    if (!core[x])
      labels[x] = -1;
    else if (parent[x] == (int32_t)x)
      labels[x] = next++;
    else
      labels[x] = labels[parent[x]];
  }
  return next;
}

/* Labels of my rows: a border point takes the lowest-numbered cluster
 * among its core neighbours. Local. */
static void border_labels(const slr_sparse *dist, float epsf, const uint8_t *core,
                          const int32_t *labels, int32_t *mylab) {
  for (int64_t r = 0; r < dist->nrows; r++) {
    int64_t i = dist->row0 + r;
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
}

/* The argument checks and the layout. Collective on comm. */
static int dbscan_check(MPI_Comm comm, const slr_sparse *dist, double eps, int min_samples,
                        int64_t **off) {
  int rank, rc = 0;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  if (!(eps > 0.0))
    rc = SLR_FAIL(SLR_ERR, "DBSCAN: eps = %g must be > 0", eps);
  else if (min_samples < 1)
    rc = SLR_FAIL(SLR_ERR, "DBSCAN: min_samples = %d must be >= 1", min_samples);
  SLR_TRY(slr_agree(comm, rc));
  SLR_TRY(slr_block_layout(comm, dist->nrows, dist->n, off));
  if ((*off)[rank] != dist->row0) rc = SLR_FAIL(SLR_ERR, "DBSCAN: rows do not match the row blocks");
  rc = slr_agree(comm, rc);
  if (rc) {
    free(*off);
    *off = NULL;
  }
  return rc;
}

int slr_dbscan(MPI_Comm comm, const slr_sparse *dist, double eps, int min_samples,
               int32_t *labels, int64_t *n_clusters) {
  int size;
  SLR_MPI(MPI_Comm_size(comm, &size));
  int64_t n = dist->n, nrows = dist->nrows, *off = NULL;
  SLR_TRY(dbscan_check(comm, dist, eps, min_samples, &off));
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
  uint8_t *core = malloc((size_t)n + 1), *mycore = malloc((size_t)nrows + 1);
  int32_t *parent = malloc((size_t)n * sizeof(int32_t) + 1);
  int32_t *other = size > 1 ? malloc((size_t)n * sizeof(int32_t) + 1) : NULL;
  int32_t *mylab = malloc((size_t)nrows * sizeof(int32_t) + 1);
  int *cnt = malloc((size_t)size * sizeof(int)), *dsp = malloc((size_t)size * sizeof(int));
  int rc = 0;
  if (!core || !mycore || !parent || (size > 1 && !other) || !mylab || !cnt || !dsp)
    rc = SLR_FAIL(SLR_ERR_NOMEM, "DBSCAN: out of memory (n = %lld)", (long long)n);
  rc = slr_agree(comm, rc);
  for (int q = 0; q < size && !rc; q++) {
    cnt[q] = (int)(off[q + 1] - off[q]);
    dsp[q] = (int)off[q];
  }
  if (!rc) {
    core_flags(dist, epsf, min_samples, mycore);
    int mrc = MPI_Allgatherv(mycore, (int)nrows, MPI_UINT8_T, core, cnt, dsp, MPI_UINT8_T, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgatherv (core flags)", __FILE__, __LINE__);
    rc = slr_agree(comm, rc);
  }
  if (!rc) {
    local_forest(dist, epsf, core, mycore, parent);
    rc = merge_forests(comm, parent, other, n);
  }
  int32_t next = 0;
  if (!rc) {
    next = number_clusters(core, parent, n, labels);
    border_labels(dist, epsf, core, labels, mylab);
    int mrc = MPI_Allgatherv(mylab, (int)nrows, MPI_INT32_T, labels, cnt, dsp, MPI_INT32_T, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "MPI_Allgatherv (labels)", __FILE__, __LINE__);
    rc = slr_agree(comm, rc);
  }
  if (!rc && n_clusters) *n_clusters = next;
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
