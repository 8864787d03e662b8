/* dist: the MPI context, row sharding, the BLACS 2-D process grid and
 * block-cyclic index helpers, the principal axes of row-sharded features
 * (ScaLAPACK on the grid), and the ScaLAPACK/BLACS prototypes (Debian ships
 * no C header for them). */
#ifndef SLR_DIST_H
#define SLR_DIST_H

#include <mpi.h>
#include <stdint.h>

#include "slr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  MPI_Comm world;   /* a duplicate of the communicator given to init */
  int rank, size;   /* in world */
  MPI_Comm node;    /* ranks sharing this node */
  int node_rank, node_size;
  int node_count;   /* number of nodes */
} slr_ctx;

/* Collective on comm. */
int slr_ctx_init(slr_ctx *ctx, MPI_Comm comm);
/* Collective on ctx->world. */
void slr_ctx_free(slr_ctx *ctx);

/* Contiguous, balanced row sharding of n rows over `size` ranks: the first
 * n % size ranks get one row more. A rank may own zero rows. Local. */
void slr_shard_rows(int64_t n, int rank, int size, int64_t *row0, int64_t *count);

/* ---- BLACS grid ------------------------------------------------------------- */

typedef struct {
  int ctxt;           /* BLACS context handle */
  int sys_handle;     /* BLACS handle of the MPI communicator */
  int nprow, npcol;   /* grid shape, nprow <= npcol */
  int myrow, mycol;
} slr_grid;

/* The most square shape p x q = size with p <= q. Local. */
void slr_grid_shape(int size, int *nprow, int *npcol);
/* A row-major BLACS grid over all ranks of comm. Collective on comm. */
int slr_grid_init(slr_grid *g, MPI_Comm comm);
/* Collective on the grid. */
void slr_grid_free(slr_grid *g);

/* ---- block-cyclic index helpers (0-based, as ScaLAPACK's 1-based tools) ----- */

/* Number of rows/cols of an n-long dimension owned by process coordinate
 * `iproc` with block size nb, first block on `isrc`, over nprocs. Local. */
int64_t slr_bc_numroc(int64_t n, int64_t nb, int iproc, int isrc, int nprocs);
/* Process coordinate that owns global index ig. Local. */
int slr_bc_owner(int64_t ig, int64_t nb, int isrc, int nprocs);
/* Local index of global index ig on its owner. Local. */
int64_t slr_bc_g2l(int64_t ig, int64_t nb, int nprocs);
/* Global index of local index il on process coordinate iproc. Local. */
int64_t slr_bc_l2g(int64_t il, int64_t nb, int iproc, int isrc, int nprocs);

/* ---- principal axes of row-sharded features -------------------------------- */

/* How the eigenpairs of the covariance are found: ScaLAPACK's pssyevd
 * (divide and conquer) on the BLACS grid, or local LAPACK on every rank
 * after an all-reduce of the d x d matrix (ssyevr: only the p wanted
 * pairs; ssyevd: all). (pssyevr with a range of indices stops on an illegal
 * workspace size inside psormtr with ScaLAPACK 2.2.1, so it is not used.) */
typedef enum {
  SLR_PCA_PSSYEVD = 0,
  SLR_PCA_SYEVR,
  SLR_PCA_SYEVD,
} slr_pca_solver;

/* Local. */
const char *slr_pca_solver_name(slr_pca_solver s);

typedef struct {
  slr_pca_solver solver;  /* default SLR_PCA_PSSYEVD */
  int64_t max_rows;       /* sample at most about this many rows, every s-th global row
                             with s = ceil(n / max_rows); 0 = all rows */
} slr_pca_opts;

typedef struct {
  int64_t rows;                  /* rows in the sample */
  double t_cov, t_eig, t_total;  /* seconds: covariance (and its move to the grid),
                                    eigenpairs (and the gather of the basis), all */
} slr_pca_stats;

/* The p leading principal axes of the rows of all ranks (this rank's block
 * x: nrows x d, row-major, contiguous blocks in rank order). mean (d)
 * receives the mean of the sample rows, basis (p x d, row-major) the unit
 * eigenvectors of their covariance (1/m) sum (x - mean)(x - mean)^T, largest
 * eigenvalue first, eigval (p, may be NULL) the eigenvalues; all replicated
 * on every rank. With the ScaLAPACK solvers the covariance is formed by
 * pssyrk over a 1 x P context in which each rank's sample rows are one
 * column block of X^T, redistributed to the 2-D grid (psgemr2d, blocks of 64,
 * 32 below d = 512) and diagonalised there (pssyevd); memory per rank: the
 * sample rows plus about 3 d^2 / P floats. When the sample has fewer rows m
 * than d (padded to equal blocks per rank), the m x m Gram matrix of the
 * centred sample is formed instead (psgemm) and diagonalised on the grid,
 * and the axes are the sample rows combined by its eigenvectors (the same
 * axes and eigenvalues, m^3 instead of d^3 work). The local solvers need
 * 2 d^2 floats per rank.
 * The sign of each vector is the solver's. opts may be NULL. Collective on
 * comm. */
int slr_pca_basis(MPI_Comm comm, const float *x, int64_t nrows, int64_t d, int p,
                  const slr_pca_opts *opts, float *mean, float *basis, float *eigval,
                  slr_pca_stats *stats);

/* ---- ScaLAPACK / BLACS (Fortran conventions: pointers, column-major) -------- */

void Cblacs_pinfo(int *mypnum, int *nprocs);
void Cblacs_get(int ctxt, int what, int *val);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
            const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld,
               int *info);
void psgemm_(const char *transa, const char *transb, const int *m, const int *n,
             const int *k, const float *alpha, const float *a, const int *ia,
             const int *ja, const int *desca, const float *b, const int *ib,
             const int *jb, const int *descb, const float *beta, float *c,
             const int *ic, const int *jc, const int *descc);
void pssyrk_(const char *uplo, const char *trans, const int *n, const int *k,
             const float *alpha, const float *a, const int *ia, const int *ja,
             const int *desca, const float *beta, float *c, const int *ic,
             const int *jc, const int *descc);
void psgemr2d_(const int *m, const int *n, const float *a, const int *ia, const int *ja,
               const int *desca, float *b, const int *ib, const int *jb, const int *descb,
               const int *ictxt);
void pssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *ia,
              const int *ja, const int *desca, float *w, float *z, const int *iz,
              const int *jz, const int *descz, float *work, const int *lwork, int *iwork,
              const int *liwork, int *info);
void pssyevr_(const char *jobz, const char *range, const char *uplo, const int *n, float *a,
              const int *ia, const int *ja, const int *desca, const float *vl,
              const float *vu, const int *il, const int *iu, int *m, int *nz, float *w,
              float *z, const int *iz, const int *jz, const int *descz, float *work,
              const int *lwork, int *iwork, const int *liwork, int *info);

#ifdef __cplusplus
}
#endif
#endif
