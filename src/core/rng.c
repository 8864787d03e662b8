/* Counter-based random numbers: Philox4x32-10 keyed by (seed, stream) and
 * positioned by a block counter, so any draw can be recomputed from its
 * coordinates alone (rank-count invariance, exact resume). */
#include "slr/core.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  *lo = (uint32_t)p;
}

void slr_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(PHILOX_M0, c0, &hi0, &lo0);
    mulhilo(PHILOX_M1, c2, &hi1, &lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void slr_rng_init(slr_rng *r, uint64_t seed, uint64_t stream, uint64_t counter) {
  r->seed = seed;
  r->stream = stream;
  r->counter = counter;
  r->avail = 0;
}

static void refill(slr_rng *r) {
  uint32_t ctr[4] = {(uint32_t)r->counter, (uint32_t)(r->counter >> 32), (uint32_t)r->stream,
                     (uint32_t)(r->stream >> 32)};
  uint32_t key[2] = {(uint32_t)r->seed, (uint32_t)(r->seed >> 32)};
  slr_philox4x32(ctr, key, r->buf);
  r->counter++;
  r->avail = 4;
}

uint32_t slr_rng_u32(slr_rng *r) {
  if (r->avail == 0) refill(r);
  return r->buf[4 - r->avail--];
}

uint64_t slr_rng_u64(slr_rng *r) {
  uint64_t hi = slr_rng_u32(r);
  return (hi << 32) | slr_rng_u32(r);
}

float slr_rng_uniform(slr_rng *r) { return (float)(slr_rng_u32(r) >> 8) * 0x1.0p-24f; }

double slr_rng_uniform_double(slr_rng *r) {
  return (double)(slr_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t slr_rng_below(slr_rng *r, uint64_t n) {
  if (n <= 1) return 0;
  /* rejection sampling on the largest multiple of n below 2^64 */
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  for (;;) {
    uint64_t x = slr_rng_u64(r);
    if (x < limit) return x % n;
  }
}

float slr_rng_normal(slr_rng *r) {
  double u1 = 1.0 - slr_rng_uniform_double(r); /* (0, 1] */
  double u2 = slr_rng_uniform_double(r);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2));
}

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t slr_rng_stream_id(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  uint64_t h = splitmix64(a);
  h = splitmix64(h ^ b);
  h = splitmix64(h ^ c);
  return splitmix64(h ^ d);
}
