/* dist: the MPI context, row sharding, the BLACS 2-D process grid and
 * block-cyclic index helpers, and the ScaLAPACK/BLACS prototypes (Debian
 * ships no C header for them). */
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

#ifdef __cplusplus
}
#endif
#endif
