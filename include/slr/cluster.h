/* cluster: distances and exact k nearest neighbours (ScaLAPACK psgemm on
 * the BLACS grid, in panels), the k-reciprocal Jaccard distance (sparse),
 * DBSCAN on sparse neighbourhoods (distributed), and agglomerative
 * clustering of weighted points for the SLR step. */
#ifndef SLR_CLUSTER_H
#define SLR_CLUSTER_H

#include <mpi.h>
#include <stdint.h>

#include "slr/core.h"
#include "slr/dist.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- distances, k nearest neighbours, k-reciprocal Jaccard, DBSCAN ---------- */

/* ---- agglomerative clustering --------------------------------------------- */

#ifdef __cplusplus
}
#endif
#endif
