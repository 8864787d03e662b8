/* The MPI context: a private duplicate of the communicator, the node-local
 * communicator, and contiguous row sharding. */
#include "slr/dist.h"

#include <string.h>

int slr_ctx_init(slr_ctx *ctx, MPI_Comm comm) {
  memset(ctx, 0, sizeof *ctx);
  SLR_MPI(MPI_Comm_dup(comm, &ctx->world));
  SLR_MPI(MPI_Comm_rank(ctx->world, &ctx->rank));
  SLR_MPI(MPI_Comm_size(ctx->world, &ctx->size));
  SLR_MPI(MPI_Comm_split_type(ctx->world, MPI_COMM_TYPE_SHARED, ctx->rank, MPI_INFO_NULL,
                              &ctx->node));
  SLR_MPI(MPI_Comm_rank(ctx->node, &ctx->node_rank));
  SLR_MPI(MPI_Comm_size(ctx->node, &ctx->node_size));
  int leader = ctx->node_rank == 0;
  SLR_MPI(MPI_Allreduce(&leader, &ctx->node_count, 1, MPI_INT, MPI_SUM, ctx->world));
  return 0;
}

void slr_ctx_free(slr_ctx *ctx) {
  if (ctx->node != MPI_COMM_NULL && ctx->node) MPI_Comm_free(&ctx->node);
  if (ctx->world != MPI_COMM_NULL && ctx->world) MPI_Comm_free(&ctx->world);
  memset(ctx, 0, sizeof *ctx);
}

void slr_shard_rows(int64_t n, int rank, int size, int64_t *row0, int64_t *count) {
  int64_t base = n / size, extra = n % size;
  *count = base + (rank < extra ? 1 : 0);
  *row0 = rank * base + (rank < extra ? rank : extra);
}
