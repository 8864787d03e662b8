/* Arena allocator: one 64-byte aligned block, bump allocation, marks. A
 * measuring arena (size 0) only counts, to plan a block once. */
#include "slr/core.h"

#include <stdlib.h>
#include <string.h>

#define SLR_ARENA_ALIGN 64

int slr_arena_init(slr_arena *a, size_t bytes) {
  memset(a, 0, sizeof *a);
  if (bytes == 0) return 0;
  size_t sz = (bytes + SLR_ARENA_ALIGN - 1) / SLR_ARENA_ALIGN * SLR_ARENA_ALIGN;
  a->base = aligned_alloc(SLR_ARENA_ALIGN, sz);
  if (!a->base) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory allocating an arena of %zu bytes", sz);
  a->size = sz;
  a->owns = 1;
  return 0;
}

void slr_arena_free(slr_arena *a) {
  if (a->owns) free(a->base);
  memset(a, 0, sizeof *a);
}

void *slr_arena_alloc(slr_arena *a, size_t bytes) {
  size_t start = (a->used + SLR_ARENA_ALIGN - 1) / SLR_ARENA_ALIGN * SLR_ARENA_ALIGN;
  size_t end = start + bytes;
  if (!a->base) { /* measuring */
    a->used = end;
    if (end > a->peak) a->peak = end;
    return NULL;
  }
  if (end > a->size) {
    SLR_FAIL(SLR_ERR_NOMEM, "arena exhausted: %zu bytes asked, %zu of %zu used", bytes, a->used,
             a->size);
    return NULL;
  }
  a->used = end;
  if (end > a->peak) a->peak = end;
  return a->base + start;
}
