/* The BLACS 2-D process grid (as square as the rank count allows) and the
 * block-cyclic index arithmetic of ScaLAPACK, 0-based. */
#include "slr/dist.h"

#include <string.h>

void slr_grid_shape(int size, int *nprow, int *npcol) {
  int p = 1;
  for (int d = 1; (int64_t)d * d <= size; d++)
    if (size % d == 0) p = d;
  *nprow = p;
  *npcol = size / p;
}

int slr_grid_init(slr_grid *g, MPI_Comm comm) {
  memset(g, 0, sizeof *g);
  int size;
  SLR_MPI(MPI_Comm_size(comm, &size));
  slr_grid_shape(size, &g->nprow, &g->npcol);
  g->sys_handle = Csys2blacs_handle(comm);
  g->ctxt = g->sys_handle;
  Cblacs_gridinit(&g->ctxt, "Row", g->nprow, g->npcol);
  int r, c;
  Cblacs_gridinfo(g->ctxt, &r, &c, &g->myrow, &g->mycol);
  if (r != g->nprow || c != g->npcol || g->myrow < 0)
    return SLR_FAIL(SLR_ERR, "BLACS grid %dx%d could not be created", g->nprow, g->npcol);
  return 0;
}

void slr_grid_free(slr_grid *g) {
  if (g->nprow > 0) {
    Cblacs_gridexit(g->ctxt);
    Cfree_blacs_system_handle(g->sys_handle);
  }
  memset(g, 0, sizeof *g);
}

int64_t slr_bc_numroc(int64_t n, int64_t nb, int iproc, int isrc, int nprocs) {
  int mydist = (nprocs + iproc - isrc) % nprocs;
  int64_t nblocks = n / nb;
  int64_t num = (nblocks / nprocs) * nb;
  int64_t extrablks = nblocks % nprocs;
  if (mydist < extrablks)
    num += nb;
  else if (mydist == extrablks)
    num += n % nb;
  return num;
}

int slr_bc_owner(int64_t ig, int64_t nb, int isrc, int nprocs) {
  return (int)((isrc + ig / nb) % nprocs);
}

int64_t slr_bc_g2l(int64_t ig, int64_t nb, int nprocs) {
  return (ig / (nb * nprocs)) * nb + ig % nb;
}

int64_t slr_bc_l2g(int64_t il, int64_t nb, int iproc, int isrc, int nprocs) {
  int mydist = (nprocs + iproc - isrc) % nprocs;
  return (il / nb) * nb * nprocs + (int64_t)mydist * nb + il % nb;
}
