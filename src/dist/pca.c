/* dist/pca: the leading principal axes of row-sharded features. The
 * covariance of a row sample is formed with ScaLAPACK's pssyrk on a 1 x P
 * context (each rank's sample rows are one column block of X^T), moved to
 * the 2-D BLACS grid with psgemr2d and diagonalised there with pssyevd
 * (divide and conquer); with fewer sample rows than dimensions the
 * eigenvectors of the sample's Gram matrix give the same axes at less cost.
 * The same basis from local
 * LAPACK (ssyrk, an all-reduce of the D x D matrix, ssyevr or ssyevd) is
 * kept beside it for comparison. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "slr/dist.h"

/* LAPACK (Fortran conventions) */
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda,
             float *w, float *work, const int *lwork, int *iwork, const int *liwork, int *info);
void ssyevr_(const char *jobz, const char *range, const char *uplo, const int *n, float *a,
             const int *lda, const float *vl, const float *vu, const int *il, const int *iu,
             const float *abstol, int *m, float *w, float *z, const int *ldz, int *isuppz,
             float *work, const int *lwork, int *iwork, const int *liwork, int *info);

const char *slr_pca_solver_name(slr_pca_solver s) {
  switch (s) {
    case SLR_PCA_PSSYEVD: return "pssyevd";
    case SLR_PCA_SYEVR: return "ssyevr";
    case SLR_PCA_SYEVD: return "ssyevd";
  }
  return "?";
}

/* The sample: every s-th global row, s = ceil(n / max_rows). Packs the
 * centred sample rows of this rank into `a` (cap rows of d, zero padded)
 * and returns their count in *m; the mean over the whole sample goes to
 * `mean` on every rank. Collective on comm. */
static int sample_rows(MPI_Comm comm, const float *x, int64_t nrows, int64_t d,
                       int64_t max_rows, float *mean, float **a, int64_t *m, int64_t *mmax,
                       int64_t *mtotal) {
  int64_t n = 0, row0 = 0;
  SLR_MPI(MPI_Allreduce(&nrows, &n, 1, MPI_INT64_T, MPI_SUM, comm));
  SLR_MPI(MPI_Exscan(&nrows, &row0, 1, MPI_INT64_T, MPI_SUM, comm));
  int rank;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  if (rank == 0) row0 = 0;
  int64_t s = max_rows > 0 && n > max_rows ? (n + max_rows - 1) / max_rows : 1;
  int64_t first = (s - row0 % s) % s, cnt = first < nrows ? (nrows - first + s - 1) / s : 0;
  SLR_MPI(MPI_Allreduce(&cnt, mmax, 1, MPI_INT64_T, MPI_MAX, comm));
  SLR_MPI(MPI_Allreduce(&cnt, mtotal, 1, MPI_INT64_T, MPI_SUM, comm));
  int64_t cap = *mmax > 0 ? *mmax : 1;
  double *sum = calloc((size_t)d, sizeof(double));
  float *buf = calloc((size_t)(cap * d), sizeof(float));
  int rc = sum && buf ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "PCA: out of memory (%lld x %lld sample)",
                                     (long long)cap, (long long)d);
  rc = slr_agree(comm, rc);
  if (!rc) {
    for (int64_t q = 0; q < cnt; q++) {
      const float *r = x + (first + q * s) * d;
      for (int64_t j = 0; j < d; j++) sum[j] += r[j];
    }
    int mrc = MPI_Allreduce(MPI_IN_PLACE, sum, (int)d, MPI_DOUBLE, MPI_SUM, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "PCA mean", __FILE__, __LINE__);
  }
  if (!rc) {
    for (int64_t j = 0; j < d; j++) mean[j] = (float)(sum[j] / (double)(*mtotal ? *mtotal : 1));
    for (int64_t q = 0; q < cnt; q++) {
      const float *r = x + (first + q * s) * d;
      for (int64_t j = 0; j < d; j++) buf[q * d + j] = r[j] - mean[j];
    }
  }
  free(sum);
  if (rc) {
    free(buf);
    return rc;
  }
  *a = buf;
  *m = cnt;
  return 0;
}

/* Eigenpairs with LAPACK: C (d x d, upper triangle, column-major) is
 * overwritten; the p leading eigenvectors go to basis (p x d, largest
 * first). Local. */
static int eig_local(float *c, int d, int p, slr_pca_solver solver, float *basis, float *val) {
  int info = 0, lwork = -1, liwork = -1, iw = 0, m = 0;
  float wq = 0.0f;
  float *w = malloc((size_t)d * sizeof(float));
  float *z = solver == SLR_PCA_SYEVR ? malloc((size_t)d * p * sizeof(float)) : NULL;
  int *isuppz = solver == SLR_PCA_SYEVR ? malloc((size_t)2 * d * sizeof(int)) : NULL;
  if (!w || (solver == SLR_PCA_SYEVR && (!z || !isuppz))) {
    free(w);
    free(z);
    free(isuppz);
    return SLR_FAIL(SLR_ERR_NOMEM, "PCA: out of memory (eigenvectors, d = %d)", d);
  }
  int il = d - p + 1, iu = d;
  float vl = 0.0f, vu = 0.0f, abstol = 0.0f;
  if (solver == SLR_PCA_SYEVR)
    ssyevr_("V", "I", "U", &d, c, &d, &vl, &vu, &il, &iu, &abstol, &m, w, z, &d, isuppz, &wq,
            &lwork, &iw, &liwork, &info);
  else
    ssyevd_("V", "U", &d, c, &d, w, &wq, &lwork, &iw, &liwork, &info);
  lwork = (int)wq + 1;
  liwork = iw + 1;
  float *work = malloc((size_t)lwork * sizeof(float));
  int *iwork = malloc((size_t)liwork * sizeof(int));
  int rc = 0;
  if (!work || !iwork) {
    rc = SLR_FAIL(SLR_ERR_NOMEM, "PCA: out of memory (LAPACK workspace)");
  } else if (solver == SLR_PCA_SYEVR) {
    ssyevr_("V", "I", "U", &d, c, &d, &vl, &vu, &il, &iu, &abstol, &m, w, z, &d, isuppz, work,
            &lwork, iwork, &liwork, &info);
    if (info != 0 || m != p) rc = SLR_FAIL(SLR_ERR, "PCA: ssyevr failed (info %d, %d of %d)", info, m, p);
    for (int q = 0; q < p && !rc; q++) {
      memcpy(basis + (int64_t)q * d, z + (int64_t)(p - 1 - q) * d, (size_t)d * sizeof(float));
      if (val) val[q] = w[p - 1 - q];
    }
  } else {
    ssyevd_("V", "U", &d, c, &d, w, work, &lwork, iwork, &liwork, &info);
    if (info != 0) rc = SLR_FAIL(SLR_ERR, "PCA: ssyevd failed (info %d)", info);
    for (int q = 0; q < p && !rc; q++) {
      memcpy(basis + (int64_t)q * d, c + (int64_t)(d - 1 - q) * d, (size_t)d * sizeof(float));
      if (val) val[q] = w[d - 1 - q];
    }
  }
  free(work);
  free(iwork);
  free(w);
  free(z);
  free(isuppz);
  return rc;
}

/* Covariance and eigenpairs with local LAPACK on the all-reduced matrix;
 * rank 0's basis is broadcast so that every rank holds the same bits.
 * Collective on comm. */
static int pca_lapack(MPI_Comm comm, const float *a, int64_t m, int64_t mtotal, int d, int p,
                      slr_pca_solver solver, float *basis, float *val, slr_pca_stats *st) {
  double t0 = slr_now();
  float *c = calloc((size_t)d * d, sizeof(float));
  int rc = c ? 0 : SLR_FAIL(SLR_ERR_NOMEM, "PCA: out of memory (%d x %d covariance)", d, d);
  rc = slr_agree(comm, rc);
  if (rc) return rc;
  if (m > 0)
    cblas_ssyrk(CblasColMajor, CblasUpper, CblasNoTrans, d, (int)m, 1.0f / (float)mtotal, a, d,
                0.0f, c, d);
  int mrc = MPI_Allreduce(MPI_IN_PLACE, c, d * d, MPI_FLOAT, MPI_SUM, comm);
  if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "PCA covariance all-reduce", __FILE__, __LINE__);
  rc = slr_agree(comm, rc);
  double t1 = slr_now();
  if (!rc) rc = eig_local(c, d, p, solver, basis, val);
  free(c);
  rc = slr_agree(comm, rc);
  if (!rc) {
    mrc = MPI_Bcast(basis, p * d, MPI_FLOAT, 0, comm);
    if (mrc == MPI_SUCCESS && val) mrc = MPI_Bcast(val, p, MPI_FLOAT, 0, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "PCA basis broadcast", __FILE__, __LINE__);
  }
  st->t_cov = t1 - t0;
  st->t_eig = slr_now() - t1;
  return slr_agree(comm, rc);
}

/* ScaLAPACK's workspace query of pssyevd, then the call; all eigenvectors
 * are left in z (block-cyclic like c), the eigenvalues in w (ascending).
 * Collective on the grid. */
static int eig_grid(float *c, const int *desc, int d, float *w, float *z) {
  int one = 1, info = 0, lwork = -1, liwork = -1, iw = 0;
  float wq = 0.0f;
  pssyevd_("V", "U", &d, c, &one, &one, desc, w, z, &one, &one, desc, &wq, &lwork, &iw,
           &liwork, &info);
  /* room above the query's answer (it is known to run short) */
  lwork = (int)(1.5 * wq) + 4 * d + 1024;
  liwork = 2 * iw + 7 * d + 1024;
  float *work = malloc((size_t)lwork * sizeof(float));
  int *iwork = malloc((size_t)liwork * sizeof(int));
  if (!work || !iwork) {
    free(work);
    free(iwork);
    return SLR_FAIL(SLR_ERR_NOMEM, "PCA: out of memory (ScaLAPACK workspace %d)", lwork);
  }
  pssyevd_("V", "U", &d, c, &one, &one, desc, w, z, &one, &one, desc, work, &lwork, iwork,
           &liwork, &info);
  free(work);
  free(iwork);
  if (info != 0) return SLR_FAIL(SLR_ERR, "PCA: pssyevd failed (info %d)", info);
  return 0;
}

/* Covariance with pssyrk on a 1 x P context, moved to the 2-D grid,
 * eigenpairs there; the p leading eigenvectors are summed into a replicated
 * p x d buffer (each entry has one owner). Collective on comm. */
static int pca_grid(MPI_Comm comm, const float *a, int64_t mmax, int64_t mtotal, int d, int p,
                    float *basis, float *val, slr_pca_stats *st) {
  int size, rank;
  SLR_MPI(MPI_Comm_size(comm, &size));
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  double t0 = slr_now();
  slr_grid g;
  int rc = slr_grid_init(&g, comm);
  int ctxt1 = Csys2blacs_handle(comm);
  Cblacs_gridinit(&ctxt1, "Row", 1, size);
  int zero = 0, one = 1, info = 0, nb = d >= 512 ? 64 : (d >= 128 ? 32 : (d >= 8 ? d / 4 : 1));
  int mb = (int)(mmax > 0 ? mmax : 1), kcols = mb * size, lld1 = d;
  int desca[9], descc1[9], descc[9];
  int myrow1 = 0, mycol1 = 0, r1, c1;
  Cblacs_gridinfo(ctxt1, &r1, &c1, &myrow1, &mycol1);
  int nloc1 = numroc_(&d, &nb, &mycol1, &zero, &size);
  int mloc = numroc_(&d, &nb, &g.myrow, &zero, &g.nprow);
  int nloc = numroc_(&d, &nb, &g.mycol, &zero, &g.npcol);
  int lld = mloc > 1 ? mloc : 1;
  float *c1buf = calloc((size_t)d * (nloc1 > 0 ? nloc1 : 1), sizeof(float));
  float *cbuf = calloc((size_t)lld * (nloc > 0 ? nloc : 1), sizeof(float));
  float *zbuf = calloc((size_t)lld * (nloc > 0 ? nloc : 1), sizeof(float));
  float *w = malloc((size_t)d * sizeof(float));
  if (!rc && (!c1buf || !cbuf || !zbuf || !w))
    rc = SLR_FAIL(SLR_ERR_NOMEM, "PCA: out of memory (%d x %d covariance on the grid)", d, d);
  rc = slr_agree(comm, rc);
  if (!rc) {
    descinit_(desca, &d, &kcols, &d, &mb, &zero, &zero, &ctxt1, &lld1, &info);
    if (!info) descinit_(descc1, &d, &d, &d, &nb, &zero, &zero, &ctxt1, &lld1, &info);
    if (!info) descinit_(descc, &d, &d, &nb, &nb, &zero, &zero, &g.ctxt, &lld, &info);
    if (info) rc = SLR_FAIL(SLR_ERR, "PCA: descinit failed (info %d)", info);
  }
  rc = slr_agree(comm, rc);
  if (!rc) {
    float alpha = 1.0f / (float)mtotal, beta = 0.0f;
    pssyrk_("U", "N", &d, &kcols, &alpha, a, &one, &one, desca, &beta, c1buf, &one, &one,
            descc1);
    psgemr2d_(&d, &d, c1buf, &one, &one, descc1, cbuf, &one, &one, descc, &g.ctxt);
  }
  free(c1buf);
  double t1 = slr_now();
  if (!rc) rc = eig_grid(cbuf, descc, d, w, zbuf);
  rc = slr_agree(comm, rc);
  if (!rc) {
    /* eigenvalues ascending: the leading vectors are the last columns */
    int64_t first = d - p, last = d;
    memset(basis, 0, (size_t)p * d * sizeof(float));
    for (int lj = 0; lj < nloc; lj++) {
      int64_t gj = slr_bc_l2g(lj, nb, g.mycol, 0, g.npcol);
      if (gj < first || gj >= last) continue;
      int64_t q = last - 1 - gj;
      for (int li = 0; li < mloc; li++)
        basis[q * d + slr_bc_l2g(li, nb, g.myrow, 0, g.nprow)] = zbuf[li + (int64_t)lj * lld];
    }
    int mrc = MPI_Allreduce(MPI_IN_PLACE, basis, p * d, MPI_FLOAT, MPI_SUM, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "PCA basis gather", __FILE__, __LINE__);
    for (int q = 0; q < p && val; q++) val[q] = w[last - 1 - q];
  }
  free(cbuf);
  free(zbuf);
  free(w);
  Cblacs_gridexit(ctxt1);
  slr_grid_free(&g);
  st->t_cov = t1 - t0;
  st->t_eig = slr_now() - t1;
  return slr_agree(comm, rc);
}

/* The dual form when the sample has fewer rows m than dimensions: the
 * eigenvectors v of the m x m Gram matrix K = A^T A / m (psgemm on the
 * 1 x P context, pssyevd on the grid) give the axes u = A v / |A v|, with
 * the same eigenvalues. Collective on comm. */
static int pca_grid_dual(MPI_Comm comm, const float *a, int64_t mmax, int64_t mtotal, int d,
                         int p, float *basis, float *val, slr_pca_stats *st) {
  int size, rank;
  SLR_MPI(MPI_Comm_size(comm, &size));
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  double t0 = slr_now();
  slr_grid g;
  int rc = slr_grid_init(&g, comm);
  int ctxt1 = Csys2blacs_handle(comm);
  Cblacs_gridinit(&ctxt1, "Row", 1, size);
  int mb = (int)(mmax > 0 ? mmax : 1), m = mb * size, lld1 = d;
  /* blocks of 32, smaller for a small matrix (pssyevd returned unsorted
   * eigenvalues on one rank when the whole matrix was one block) */
  int zero = 0, one = 1, info = 0, nb = m >= 128 ? 32 : (m >= 8 ? m / 4 : 1);
  int desca[9], desck1[9], desck[9];
  int nloc1 = mb;
  int mloc = numroc_(&m, &nb, &g.myrow, &zero, &g.nprow);
  int nloc = numroc_(&m, &nb, &g.mycol, &zero, &g.npcol);
  int lld = mloc > 1 ? mloc : 1;
  float *k1 = calloc((size_t)m * (nloc1 > 0 ? nloc1 : 1), sizeof(float));
  float *kb = calloc((size_t)lld * (nloc > 0 ? nloc : 1), sizeof(float));
  float *zb = calloc((size_t)lld * (nloc > 0 ? nloc : 1), sizeof(float));
  float *w = malloc((size_t)m * sizeof(float));
  float *v = calloc((size_t)p * m, sizeof(float));
  if (!rc && (!k1 || !kb || !zb || !w || !v))
    rc = SLR_FAIL(SLR_ERR_NOMEM, "PCA: out of memory (%d x %d Gram matrix on the grid)", m, m);
  rc = slr_agree(comm, rc);
  if (!rc) {
    descinit_(desca, &d, &m, &d, &mb, &zero, &zero, &ctxt1, &lld1, &info);
    if (!info) descinit_(desck1, &m, &m, &mb, &mb, &zero, &zero, &ctxt1, &m, &info);
    if (!info) descinit_(desck, &m, &m, &nb, &nb, &zero, &zero, &g.ctxt, &lld, &info);
    if (info) rc = SLR_FAIL(SLR_ERR, "PCA: descinit failed (info %d)", info);
  }
  rc = slr_agree(comm, rc);
  if (!rc) {
    float alpha = 1.0f / (float)mtotal, beta = 0.0f;
    psgemm_("T", "N", &m, &m, &d, &alpha, a, &one, &one, desca, a, &one, &one, desca, &beta, k1,
            &one, &one, desck1);
    psgemr2d_(&m, &m, k1, &one, &one, desck1, kb, &one, &one, desck, &g.ctxt);
  }
  free(k1);
  double t1 = slr_now();
  if (!rc) rc = eig_grid(kb, desck, m, w, zb);
  rc = slr_agree(comm, rc);
  if (!rc) {
    for (int lj = 0; lj < nloc; lj++) {
      int64_t gj = slr_bc_l2g(lj, nb, g.mycol, 0, g.npcol);
      if (gj < m - p) continue;
      for (int li = 0; li < mloc; li++)
        v[(m - 1 - gj) * m + slr_bc_l2g(li, nb, g.myrow, 0, g.nprow)] = zb[li + (int64_t)lj * lld];
    }
    int mrc = MPI_Allreduce(MPI_IN_PLACE, v, p * m, MPI_FLOAT, MPI_SUM, comm);
    /* u = A v: this rank's columns of A are the samples rank * mb .. */
    memset(basis, 0, (size_t)p * d * sizeof(float));
    if (mrc == MPI_SUCCESS)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p, d, mb, 1.0f, v + rank * mb, m,
                  a, d, 0.0f, basis, d);
    if (mrc == MPI_SUCCESS)
      mrc = MPI_Allreduce(MPI_IN_PLACE, basis, p * d, MPI_FLOAT, MPI_SUM, comm);
    if (mrc != MPI_SUCCESS) rc = slr_error_mpi(mrc, "PCA basis gather", __FILE__, __LINE__);
    for (int q = 0; q < p && !rc; q++) {
      double nrm = 0.0;
      for (int j = 0; j < d; j++) nrm += (double)basis[q * d + j] * basis[q * d + j];
      nrm = nrm > 0.0 ? 1.0 / sqrt(nrm) : 0.0;
      for (int j = 0; j < d; j++) basis[q * d + j] = (float)(basis[q * d + j] * nrm);
      if (val) val[q] = w[m - 1 - q];
    }
  }
  free(kb);
  free(zb);
  free(w);
  free(v);
  Cblacs_gridexit(ctxt1);
  slr_grid_free(&g);
  st->t_cov = t1 - t0;
  st->t_eig = slr_now() - t1;
  return slr_agree(comm, rc);
}

int slr_pca_basis(MPI_Comm comm, const float *x, int64_t nrows, int64_t d, int p,
                  const slr_pca_opts *opts, float *mean, float *basis, float *eigval,
                  slr_pca_stats *stats) {
  slr_pca_stats st = {0};
  double t0 = slr_now();
  int rc = 0;
  if (d < 1 || d > 46340 || p < 1 || p > d)
    rc = SLR_FAIL(SLR_ERR, "PCA: p = %d components of d = %lld dimensions (need 1 <= p <= d "
                  "<= 46340)", p, (long long)d);
  slr_pca_solver solver = opts ? opts->solver : SLR_PCA_PSSYEVD;
  int64_t max_rows = opts ? opts->max_rows : 0;
  int size;
  SLR_MPI(MPI_Comm_size(comm, &size));
  SLR_TRY(slr_agree(comm, rc));
  float *a = NULL;
  int64_t m = 0, mmax = 0, mtotal = 0;
  SLR_TRY(sample_rows(comm, x, nrows, d, max_rows, mean, &a, &m, &mmax, &mtotal));
  if (mtotal < 1) {
    free(a);
    return slr_agree(comm, SLR_FAIL(SLR_ERR, "PCA: no rows"));
  }
  st.rows = mtotal;
  if (solver == SLR_PCA_SYEVR || solver == SLR_PCA_SYEVD)
    rc = pca_lapack(comm, a, m, mtotal, (int)d, p, solver, basis, eigval, &st);
  else if (mmax * size < d && p <= mtotal)
    rc = pca_grid_dual(comm, a, mmax, mtotal, (int)d, p, basis, eigval, &st);
  else
    rc = pca_grid(comm, a, mmax, mtotal, (int)d, p, basis, eigval, &st);
  free(a);
  st.t_total = slr_now() - t0;
  if (stats) *stats = st;
  return rc;
}
