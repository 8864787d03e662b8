/* cluster/pseudo_labels: the clustering of one adaptation epoch, kNN ->
 * k-reciprocal Jaccard (only the pairs DBSCAN can use) -> DBSCAN. */
#include <string.h>

#include "neighbours.h"
#include "slr/cluster.h"

void slr_cluster_params_default(slr_cluster_params *p) {
  p->k1 = 30;
  p->k2 = 6;
  p->eps = 0.6;
  p->min_samples = 4;
}

int slr_cluster_labels(MPI_Comm comm, const float *x, int64_t nrows, int64_t n, int64_t d,
                       const slr_cluster_params *p, int32_t *labels,
                       slr_cluster_stats *stats) {
  return slr_cluster_labels_opts(comm, x, nrows, n, d, p, NULL, labels, stats);
}

int slr_cluster_labels_opts(MPI_Comm comm, const float *x, int64_t nrows, int64_t n, int64_t d,
                            const slr_cluster_params *p, const slr_knn_opts *knn_opts,
                            int32_t *labels, slr_cluster_stats *stats) {
  int rc = 0;
  if (p->k1 < 1 || p->k2 < 1 || p->k2 > p->k1)
    rc = SLR_FAIL(SLR_ERR, "clustering: k1 = %d and k2 = %d must satisfy 1 <= k2 <= k1",
                  p->k1, p->k2);
  else if (n < p->k1)
    rc = SLR_FAIL(SLR_ERR, "clustering: %lld samples are fewer than k1 = %d",
                  (long long)n, p->k1);
  else if (!(p->eps > 0.0) || p->min_samples < 1)
    rc = SLR_FAIL(SLR_ERR, "clustering: eps = %g must be > 0 and min_samples = %d >= 1",
                  p->eps, p->min_samples);
  SLR_TRY(slr_agree(comm, rc));
  slr_cluster_stats st;
  memset(&st, 0, sizeof st);
  slr_knn knn;
  slr_sparse jac;
  double t0 = slr_now();
  SLR_TRY(slr_knn_compute(comm, x, nrows, n, d, p->k1, knn_opts, &knn));
  st.knn = knn.stats;
  double t1 = slr_now();
  rc = slr_jaccard_compute(comm, x, d, &knn, p->k1, p->k2, p->eps < 1.0 ? p->eps : 1.0, &jac);
  st.bytes_jaccard = slr_jaccard_bytes_sent();
  slr_knn_free(&knn);
  if (rc) return rc;
  double t2 = slr_now();
  int64_t nnz = jac.indptr[jac.nrows];
  rc = slr_dbscan(comm, &jac, p->eps, p->min_samples, labels, &st.n_clusters);
  slr_sparse_free(&jac);
  if (rc) return rc;
  double t3 = slr_now();
  SLR_MPI(MPI_Allreduce(&nnz, &st.nnz_jaccard, 1, MPI_INT64_T, MPI_SUM, comm));
  for (int64_t i = 0; i < n; i++) st.n_outliers += labels[i] < 0;
  st.t_knn = t1 - t0;
  st.t_jaccard = t2 - t1;
  st.t_dbscan = t3 - t2;
  if (stats) *stats = st;
  return 0;
}
