/* data/augment: the peers' train and test transforms on resized uint8
 * images (flip, zero pad + random crop, ImageNet normalisation, random
 * erasing filled with the mean values), and the batcher that turns sample
 * indices into a float (N, 3, H, W) batch with an optional cache of
 * decoded, resized images and the handling of corrupt files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slr/data.h"

const float slr_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float slr_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/* Purpose key of the augmentation streams (slr_rng_stream_id). */
#define SLR_RNG_AUGMENT 0x61756731u

int slr_transform_from_config(slr_transform *t, const slr_data_cfg *cfg) {
  memset(t, 0, sizeof *t);
  t->height = cfg->height;
  t->width = cfg->width;
  SLR_TRY(slr_resample_parse(cfg->interpolation, &t->interp));
  t->flip_p = cfg->flip_p;
  t->pad = cfg->pad;
  t->erase_p = cfg->erase_p;
  t->erase_sl = 0.02;
  t->erase_sh = 0.4;
  t->erase_r1 = 0.3;
  return 0;
}

void slr_sample_rng(slr_rng *rng, uint64_t seed, int64_t epoch, int64_t step, int64_t pos) {
  slr_rng_init(rng, seed,
               slr_rng_stream_id(SLR_RNG_AUGMENT, (uint64_t)epoch, (uint64_t)step, (uint64_t)pos),
               0);
}

/* ToTensor + Normalize in float32 as torchvision: (u / 255 - mean) / std. */
static float norm_value(int c, int u) {
  float v = (float)u / 255.0f;
  return (v - slr_imagenet_mean[c]) / slr_imagenet_std[c];
}

void slr_transform_apply_fixed(const slr_transform *t, const slr_image *im, int flip, int top,
                               int left, int erase_y, int erase_x, int erase_h, int erase_w,
                               float *out) {
  const int H = t->height, W = t->width, p = t->pad;
  float lut[3][256];
  for (int c = 0; c < 3; c++)
    for (int u = 0; u < 256; u++) lut[c][u] = norm_value(c, u);
  const size_t plane = (size_t)H * (size_t)W;
  for (int y = 0; y < H; y++) {
    int sy = y + top - p;
    for (int x = 0; x < W; x++) {
      int sx = x + left - p;
      size_t o = (size_t)y * (size_t)W + (size_t)x;
      if (sy < 0 || sy >= im->h || sx < 0 || sx >= im->w) {
        for (int c = 0; c < 3; c++) out[c * plane + o] = lut[c][0];
        continue;
      }
      int fx = flip ? im->w - 1 - sx : sx;
      const uint8_t *px = im->data + ((size_t)sy * (size_t)im->w + (size_t)fx) * 3;
      for (int c = 0; c < 3; c++) out[c * plane + o] = lut[c][px[c]];
    }
  }
  for (int c = 0; c < 3 && erase_h > 0; c++)
    for (int y = erase_y; y < erase_y + erase_h && y < H; y++)
      for (int x = erase_x; x < erase_x + erase_w && x < W; x++)
        out[c * plane + (size_t)y * (size_t)W + (size_t)x] = slr_imagenet_mean[c];
}

void slr_transform_apply(const slr_transform *t, const slr_image *im, int train, slr_rng *rng,
                         float *out) {
  if (!train) {
    slr_transform_apply_fixed(t, im, 0, t->pad, t->pad, 0, 0, 0, 0, out);
    return;
  }
  const int H = t->height, W = t->width;
  int flip = slr_rng_uniform_double(rng) < t->flip_p;
  /* RandomCrop of the (H + 2 pad) x (W + 2 pad) padded image */
  int top = (int)slr_rng_below(rng, (uint64_t)(2 * t->pad + 1));
  int left = (int)slr_rng_below(rng, (uint64_t)(2 * t->pad + 1));
  int ey = 0, ex = 0, eh = 0, ew = 0;
  if (slr_rng_uniform_double(rng) < t->erase_p) {
    /* RandomErasing of the peers: up to 100 attempts at a box of area in
     * [sl, sh] of the image and aspect ratio in [r1, 1/r1] */
    double area = (double)H * W;
    for (int attempt = 0; attempt < 100; attempt++) {
      double target =
          (t->erase_sl + (t->erase_sh - t->erase_sl) * slr_rng_uniform_double(rng)) * area;
      double ar = t->erase_r1 + (1.0 / t->erase_r1 - t->erase_r1) * slr_rng_uniform_double(rng);
      int h = (int)nearbyint(sqrt(target * ar));
      int w = (int)nearbyint(sqrt(target / ar));
      if (w < W && h < H) {
        eh = h;
        ew = w;
        ey = (int)slr_rng_below(rng, (uint64_t)(H - h + 1));
        ex = (int)slr_rng_below(rng, (uint64_t)(W - w + 1));
        break;
      }
    }
  }
  slr_transform_apply_fixed(t, im, flip, top, left, ey, ex, eh, ew, out);
}

/* ---- the batcher ---------------------------------------------------------------- */

int slr_batcher_init(slr_batcher *b, const slr_split *split, const slr_transform *tf, int cache,
                     int skip_corrupt) {
  memset(b, 0, sizeof *b);
  b->split = split;
  b->tf = *tf;
  b->skip_corrupt = skip_corrupt;
  b->cache_on = cache;
  size_t n = (size_t)(split->n ? split->n : 1);
  b->bad = calloc(n, 1);
  if (cache) b->cache = calloc(n, sizeof *b->cache);
  if (!b->bad || (cache && !b->cache)) {
    free(b->bad);
    free(b->cache);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory for the image cache");
  }
  pthread_mutex_init(&b->lock, NULL);
  return 0;
}

void slr_batcher_free(slr_batcher *b) {
  if (b->cache)
    for (int64_t i = 0; i < b->split->n; i++) free(b->cache[i]);
  free(b->cache);
  free(b->bad);
  if (b->split) pthread_mutex_destroy(&b->lock);
  memset(b, 0, sizeof *b);
}

/* The resized image of sample i into *im (im->data owned by the caller
 * when *owned is set, else by the cache). Returns 1 when the image is
 * corrupt and skipped. */
static int get_resized(slr_batcher *b, int64_t i, slr_image *im, int *owned) {
  const int H = b->tf.height, W = b->tf.width;
  *owned = 0;
  if (b->cache) {
    pthread_mutex_lock(&b->lock);
    uint8_t *hit = b->cache[i];
    pthread_mutex_unlock(&b->lock);
    if (hit) {
      im->h = H;
      im->w = W;
      im->c = 3;
      im->data = hit;
      return 0;
    }
  }
  pthread_mutex_lock(&b->lock);
  int known_bad = b->bad[i];
  pthread_mutex_unlock(&b->lock);
  if (known_bad) return 1;
  slr_image raw;
  int rc = slr_image_read(b->split->paths[i], &raw);
  if (!rc) {
    rc = slr_image_resize(&raw, H, W, b->tf.interp, im);
    slr_image_free(&raw);
  }
  if (rc) {
    if (!b->skip_corrupt || rc == SLR_ERR_NOMEM) return -rc;
    pthread_mutex_lock(&b->lock);
    int first = !b->bad[i];
    b->bad[i] = 1;
    if (first) b->corrupt++;
    pthread_mutex_unlock(&b->lock);
    if (first) slr_log_rank(SLR_LOG_WARN, "skipping %s (data.skip_corrupt)", slr_error_text());
    slr_error_clear();
    return 1;
  }
  if (b->cache) {
    pthread_mutex_lock(&b->lock);
    if (!b->cache[i]) {
      b->cache[i] = im->data;
      b->cache_bytes += (int64_t)H * W * 3;
    } else {
      free(im->data);
      im->data = b->cache[i];
    }
    pthread_mutex_unlock(&b->lock);
  } else {
    *owned = 1;
  }
  return 0;
}

int slr_batcher_fill(slr_batcher *b, const int64_t *idx, int64_t n, int train, uint64_t seed,
                     int64_t epoch, int64_t step, int64_t pos0, float *out) {
  const size_t per = (size_t)3 * (size_t)b->tf.height * (size_t)b->tf.width;
  for (int64_t s = 0; s < n; s++) {
    int64_t i = idx[s];
    if (i < 0 || i >= b->split->n)
      return SLR_FAIL(SLR_ERR, "sample index %lld out of range [0, %lld)", (long long)i,
                      (long long)b->split->n);
    float *dst = out + (size_t)s * per;
    slr_image im;
    int owned = 0;
    int r = get_resized(b, i, &im, &owned);
    if (r < 0) return -r;
    if (r == 1) {
      /* a skipped corrupt image: the mean image (zeros once normalised) */
      memset(dst, 0, per * sizeof *dst);
      continue;
    }
    slr_rng rng;
    slr_sample_rng(&rng, seed, epoch, step, pos0 + s);
    slr_transform_apply(&b->tf, &im, train, &rng, dst);
    if (owned) slr_image_free(&im);
  }
  return 0;
}

int slr_batcher_report(slr_batcher *b, MPI_Comm comm) {
  long long local = (long long)b->corrupt, total = 0;
  SLR_MPI(MPI_Allreduce(&local, &total, 1, MPI_LONG_LONG, MPI_SUM, comm));
  if (total > 0)
    slr_warn("%lld corrupt image file%s skipped (data.skip_corrupt)", total, total > 1 ? "s" : "");
  return 0;
}
