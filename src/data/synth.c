/* data/synth: procedurally drawn pedestrians for synthetic Re-ID domains.
 *
 * An identity is a set of attributes (garment colours and patterns, sleeve
 * and leg lengths, hair, skin, shoes, bag or backpack, body shape); some
 * identities are near copies of others (look-alikes). A camera has its own
 * lighting, colour cast, background, preferred viewpoints, blur, noise and
 * JPEG quality. An image is the identity seen by a camera from the front,
 * the back or the side (a backpack shows only from behind and the side),
 * walking, with scale, crop, occlusion and lighting jitter. Two styles:
 * "synthetic" (flat, clean, saturated, like PersonX renders) and
 * "realistic" (textured fabric, shading, clutter, noise, muted palette).
 * Two knobs vary a style's lighting: a brightness factor on every camera
 * (gain) and extra colour-cast amplitude (cast); their defaults leave the
 * style as drawn, byte for byte.
 *
 * Every image is drawn at 4x resolution and box-filtered down. All random
 * draws come from slr_rng keyed by the seed and (identity, camera, shot),
 * so the bytes do not depend on the order or the rank that draws them. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slr/data.h"
#include "slr/dist.h"

#define SS 4 /* supersampling factor */

enum { KEY_ID = 0x53594e31u, KEY_CAM, KEY_IMG, KEY_TWIN, KEY_NOISE };

typedef struct {
  float r, g, b;
} rgb;

static rgb mk(float r, float g, float b) {
  rgb c = {r, g, b};
  return c;
}
static rgb scale_rgb(rgb c, float s) { return mk(c.r * s, c.g * s, c.b * s); }
static rgb mix(rgb a, rgb b, float t) {
  return mk(a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t);
}

/* ---- palettes --------------------------------------------------------------- */

/* garment colours; the realistic style mutes them (pal()) */
static const rgb pal_synthetic[] = {
    {0.86f, 0.12f, 0.12f}, {0.12f, 0.32f, 0.86f}, {0.12f, 0.68f, 0.26f}, {0.95f, 0.84f, 0.12f},
    {0.95f, 0.52f, 0.10f}, {0.55f, 0.20f, 0.75f}, {0.95f, 0.50f, 0.70f}, {0.10f, 0.75f, 0.80f},
    {0.94f, 0.94f, 0.94f}, {0.10f, 0.10f, 0.12f}, {0.52f, 0.52f, 0.55f}, {0.10f, 0.15f, 0.45f},
};
#define NPAL_S ((int)(sizeof pal_synthetic / sizeof pal_synthetic[0]))
static const rgb skins[] = {{0.96f, 0.80f, 0.69f}, {0.92f, 0.72f, 0.58f}, {0.80f, 0.58f, 0.43f},
                            {0.62f, 0.43f, 0.30f}, {0.45f, 0.30f, 0.20f}, {0.33f, 0.22f, 0.15f}};
static const rgb hairs[] = {{0.07f, 0.06f, 0.05f}, {0.22f, 0.14f, 0.08f}, {0.40f, 0.27f, 0.15f},
                            {0.80f, 0.67f, 0.40f}, {0.62f, 0.62f, 0.62f}, {0.50f, 0.20f, 0.10f}};
static const rgb shoe_cols[] = {{0.06f, 0.06f, 0.06f},
                                {0.92f, 0.92f, 0.90f},
                                {0.35f, 0.22f, 0.12f},
                                {0.45f, 0.45f, 0.48f},
                                {0.15f, 0.20f, 0.40f}};

/* ---- identity attributes ------------------------------------------------------- */

enum { PAT_SOLID, PAT_HSTRIPE, PAT_VSTRIPE, PAT_CHECK, PAT_SPLIT, PAT_PANEL, NPAT };
enum { LOW_TROUSERS, LOW_SHORTS, LOW_SKIRT };
enum { BAG_NONE, BAG_BACKPACK, BAG_SHOULDER, BAG_HAND };
enum { VIEW_FRONT, VIEW_BACK, VIEW_SIDE };

typedef struct {
  int upper, upper2, upper_pat, long_sleeves;
  int lower, lower2, lower_pat, lower_type;
  int skin, hair, long_hair, hat, hat_col;
  int shoes;
  int bag, bag_col, bag_side;
  float build;  /* body width factor */
  float height; /* fraction of the frame */
} person;

static int pick(slr_rng *r, int n) { return (int)slr_rng_below(r, (uint64_t)n); }
static float unif(slr_rng *r, float a, float b) { return a + (b - a) * slr_rng_uniform(r); }

static int npal(const slr_synth_opts *o) { return NPAL_S; }
/* The realistic palette has the same hues, muted (half the chroma) and
 * darker, with a slight warm shift: a red shirt stays a dull red, so what a
 * model learns on one style carries over in part. */
static rgb pal(const slr_synth_opts *o, int i) {
  rgb c = pal_synthetic[i % NPAL_S];
  if (o->style == SLR_STYLE_SYNTHETIC) return c;
  float l = 0.3f * c.r + 0.59f * c.g + 0.11f * c.b;
  c = mix(mk(l, l, l), c, 0.5f);
  return mk(0.8f * c.r + 0.03f, 0.78f * c.g + 0.02f, 0.74f * c.b);
}

static void draw_person_attrs(const slr_synth_opts *o, int id, person *p) {
  slr_rng r;
  slr_rng_init(&r, o->seed, slr_rng_stream_id(KEY_ID, (uint64_t)id, 0, 0), 0);
  int n = npal(o);
  p->upper = pick(&r, n);
  p->upper2 = (p->upper + 1 + pick(&r, n - 1)) % n;
  p->upper_pat = slr_rng_uniform(&r) < 0.55f ? PAT_SOLID : 1 + pick(&r, NPAT - 1);
  p->long_sleeves = slr_rng_uniform(&r) < 0.55f;
  p->lower = pick(&r, n);
  p->lower2 = (p->lower + 1 + pick(&r, n - 1)) % n;
  p->lower_pat = slr_rng_uniform(&r) < 0.8f ? PAT_SOLID : 1 + pick(&r, 2);
  float lt = slr_rng_uniform(&r);
  p->lower_type = lt < 0.68f ? LOW_TROUSERS : lt < 0.86f ? LOW_SHORTS : LOW_SKIRT;
  p->skin = pick(&r, 6);
  p->hair = pick(&r, 6);
  p->long_hair = slr_rng_uniform(&r) < (p->lower_type == LOW_SKIRT ? 0.7f : 0.25f);
  p->hat = slr_rng_uniform(&r) < 0.12f;
  p->hat_col = pick(&r, n);
  p->shoes = pick(&r, 5);
  float b = slr_rng_uniform(&r);
  p->bag = b < 0.5f ? BAG_NONE : b < 0.75f ? BAG_BACKPACK : b < 0.92f ? BAG_SHOULDER : BAG_HAND;
  p->bag_col = pick(&r, n);
  p->bag_side = pick(&r, 2);
  p->build = unif(&r, 0.82f, 1.22f);
  p->height = unif(&r, 0.86f, 0.97f);
}

/* Look-alikes: with a probability that grows with the difficulty, an
 * identity copies an earlier one and changes one or two attributes. */
static void identity_attrs(const slr_synth_opts *o, int id, person *p) {
  draw_person_attrs(o, id, p);
  if (id == 0) return;
  slr_rng r;
  slr_rng_init(&r, o->seed, slr_rng_stream_id(KEY_TWIN, (uint64_t)id, 0, 0), 0);
  if (slr_rng_uniform(&r) >= 0.08f + 0.35f * (float)o->difficulty) return;
  int twin = pick(&r, id);
  person q;
  draw_person_attrs(o, twin, &q);
  int changes = 1 + (slr_rng_uniform(&r) < 0.5f - 0.4f * (float)o->difficulty);
  for (int c = 0; c < changes; c++) switch (pick(&r, 6)) {
    case 0: q.shoes = p->shoes; break;
    case 1: q.hair = p->hair; break;
    case 2:
      q.bag = p->bag;
      q.bag_col = p->bag_col;
      break;
    case 3:
      q.upper_pat = p->upper_pat;
      q.upper2 = p->upper2;
      break;
    case 4: q.lower = p->lower; break;
    default:
      q.build = p->build;
      q.height = p->height;
      q.long_sleeves = p->long_sleeves;
      break;
    }
  *p = q;
}

/* ---- cameras ------------------------------------------------------------------------ */

typedef struct {
  float gain, cast[3];
  rgb wall, floor, wall2;
  float horizon;
  int clutter;
  float p_front, p_back; /* rest: side */
  float blur, noise, haze;
  int quality;
  float light_dir; /* -1 .. 1: light from the left or the right */
} camera;

static void camera_attrs(const slr_synth_opts *o, int cam, camera *c) {
  slr_rng r;
  slr_rng_init(&r, o->seed, slr_rng_stream_id(KEY_CAM, (uint64_t)cam, 0, 0), 0);
  int real = o->style == SLR_STYLE_REALISTIC;
  float d = (float)o->difficulty;
  c->gain = (real ? unif(&r, 0.7f, 1.15f) : unif(&r, 0.9f, 1.08f)) * (float)o->gain;
  float cast = (real ? 0.06f + 0.10f * d : 0.03f + 0.04f * d) + (float)o->cast;
  for (int k = 0; k < 3; k++) c->cast[k] = 1.0f + unif(&r, -cast, cast);
  if (real) {
    float g = unif(&r, 0.3f, 0.7f);
    c->wall = mk(g * unif(&r, 0.85f, 1.1f), g * unif(&r, 0.85f, 1.05f), g * unif(&r, 0.8f, 1.1f));
    c->wall2 = scale_rgb(c->wall, unif(&r, 0.6f, 0.9f));
    float f = unif(&r, 0.35f, 0.6f);
    c->floor = mk(f, f * unif(&r, 0.92f, 1.02f), f * unif(&r, 0.85f, 1.0f));
  } else {
    c->wall = mk(unif(&r, 0.55f, 0.9f), unif(&r, 0.6f, 0.9f), unif(&r, 0.65f, 0.95f));
    c->wall2 = c->wall;
    float f = unif(&r, 0.6f, 0.8f);
    c->floor = mk(f, f, f * 0.95f);
  }
  c->horizon = unif(&r, 0.55f, 0.8f);
  c->clutter = real ? 2 + pick(&r, 4) : pick(&r, 2);
  c->p_front = unif(&r, 0.15f, 0.6f);
  c->p_back = unif(&r, 0.1f, 0.9f - c->p_front);
  c->blur = real ? unif(&r, 0.15f, 0.35f + 0.45f * d) : unif(&r, 0.0f, 0.25f);
  c->noise = real ? unif(&r, 1.5f, 2.5f + 4.0f * d) / 255.0f : 0.0f;
  c->haze = real ? unif(&r, 0.0f, 0.15f) : 0.0f;
  c->quality = real ? 65 + pick(&r, 26) : 95;
  c->light_dir = unif(&r, -1.0f, 1.0f);
}

/* ---- the canvas ---------------------------------------------------------------------- */

typedef struct {
  int w, h;
  float *px; /* (h, w, 3) */
  int real;
  int tw, th;           /* output size */
  float *fine, *coarse; /* (th, tw) texture noise in [-1, 1], cells of 1 and 3 output pixels */
} canvas;

/* smooth value noise in [-1, 1] on a lattice of `cell` pixels */
static float hash01(uint64_t seed, int64_t x, int64_t y) {
  uint64_t z = seed ^ ((uint64_t)x * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)y * 0xC2B2AE3D27D4EB4Full);
  z ^= z >> 33;
  z *= 0xff51afd7ed558ccdull;
  z ^= z >> 33;
  z *= 0xc4ceb9fe1a85ec53ull;
  z ^= z >> 33;
  return (float)(z >> 40) / (float)(1 << 24);
}

static float value_noise(uint64_t seed, float x, float y, float cell) {
  float fx = x / cell, fy = y / cell;
  int64_t x0 = (int64_t)floorf(fx), y0 = (int64_t)floorf(fy);
  float tx = fx - (float)x0, ty = fy - (float)y0;
  tx = tx * tx * (3 - 2 * tx);
  ty = ty * ty * (3 - 2 * ty);
  float a = hash01(seed, x0, y0), b = hash01(seed, x0 + 1, y0);
  float c = hash01(seed, x0, y0 + 1), e = hash01(seed, x0 + 1, y0 + 1);
  float v = (a + (b - a) * tx) * (1 - ty) + (c + (e - c) * tx) * ty;
  return 2.0f * v - 1.0f;
}

/* The fabric texture at canvas pixel (x, y): the image's noise maps,
 * shifted by the surface's key so that surfaces do not share a pattern. */
static float tex_at(const canvas *cv, float x, float y, uint64_t key) {
  int tx = ((int)x / SS + (int)(key % 7)) % cv->tw,
      ty = ((int)y / SS + (int)(key / 7 % 7)) % cv->th;
  size_t i = (size_t)ty * (size_t)cv->tw + (size_t)tx;
  return 0.6f * cv->coarse[i] + 0.4f * cv->fine[i];
}

/* A surface: colours, a pattern in figure units, shading across the shape. */
typedef struct {
  rgb a, b;
  int pattern;
  float period; /* in pixels */
  float ox, oy; /* pattern origin */
  float tex;    /* fabric texture amplitude */
  uint64_t tex_key;
} paint;

static paint solid(rgb c) {
  paint p;
  memset(&p, 0, sizeof p);
  p.a = c;
  p.b = c;
  return p;
}

static rgb paint_at(const canvas *cv, const paint *p, float x, float y, float shade) {
  rgb c = p->a;
  float u = (x - p->ox) / (p->period > 0 ? p->period : 1),
        v = (y - p->oy) / (p->period > 0 ? p->period : 1);
  switch (p->pattern) {
  case PAT_HSTRIPE: c = ((int64_t)floorf(v) & 1) ? p->b : p->a; break;
  case PAT_VSTRIPE: c = ((int64_t)floorf(u) & 1) ? p->b : p->a; break;
  case PAT_CHECK: c = (((int64_t)floorf(u) + (int64_t)floorf(v)) & 1) ? p->b : p->a; break;
  case PAT_SPLIT: c = u < 0 ? p->a : p->b; break;
  case PAT_PANEL: c = (fabsf(u) < 0.8f && v > 0.6f && v < 2.2f) ? p->b : p->a; break;
  default: break;
  }
  float s = 1.0f - shade;
  if (p->tex > 0) {
    s *= 1.0f + p->tex * tex_at(cv, x, y, p->tex_key);
  }
  return scale_rgb(c, s);
}

static void put(canvas *cv, int x, int y, rgb c) {
  float *q = cv->px + ((size_t)y * (size_t)cv->w + (size_t)x) * 3;
  q[0] = c.r;
  q[1] = c.g;
  q[2] = c.b;
}

/* Shading of a rounded body across its width: t in [-1, 1]. */
static float body_shade(const canvas *cv, float t, float light) {
  float k = cv->real ? 0.35f : 0.12f;
  float s = k * (t * t) * 0.8f + k * 0.4f * (t * light > 0 ? 0 : fabsf(t));
  return s > 0.6f ? 0.6f : s;
}

static void fill_ellipse(canvas *cv, float cx, float cy, float rx, float ry, const paint *p,
                         float light) {
  int x0 = (int)floorf(cx - rx), x1 = (int)ceilf(cx + rx), y0 = (int)floorf(cy - ry),
      y1 = (int)ceilf(cy + ry);
  if (x0 < 0) x0 = 0;
  if (y0 < 0) y0 = 0;
  if (x1 > cv->w - 1) x1 = cv->w - 1;
  if (y1 > cv->h - 1) y1 = cv->h - 1;
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) {
      float dx = (x + 0.5f - cx) / rx, dy = (y + 0.5f - cy) / ry;
      if (dx * dx + dy * dy <= 1.0f)
        put(cv, x, y, paint_at(cv, p, x + 0.5f, y + 0.5f, body_shade(cv, dx, light)));
    }
}

/* A trapezoid between rows yt and yb with centre and half width varying
 * linearly from (ct, ht) to (cb, hb). */
static void fill_trap(canvas *cv, float yt, float yb, float ct, float ht, float cb, float hb,
                      const paint *p, float light) {
  int y0 = (int)floorf(yt), y1 = (int)ceilf(yb);
  if (y0 < 0) y0 = 0;
  if (y1 > cv->h - 1) y1 = cv->h - 1;
  for (int y = y0; y <= y1; y++) {
    float fy = y + 0.5f;
    if (fy < yt || fy > yb) continue;
    float t = (fy - yt) / (yb - yt > 1e-6f ? yb - yt : 1e-6f);
    float c = ct + (cb - ct) * t, h = ht + (hb - ht) * t;
    int x0 = (int)floorf(c - h), x1 = (int)ceilf(c + h);
    if (x0 < 0) x0 = 0;
    if (x1 > cv->w - 1) x1 = cv->w - 1;
    for (int x = x0; x <= x1; x++) {
      float dx = (x + 0.5f - c) / h;
      if (fabsf(dx) <= 1.0f)
        put(cv, x, y, paint_at(cv, p, x + 0.5f, fy, body_shade(cv, dx, light)));
    }
  }
}

/* A limb: the segment (x0, y0)-(x1, y1) thickened to radius r0..r1. */
static void fill_capsule(canvas *cv, float xa, float ya, float xb, float yb, float r0, float r1,
                         const paint *p, float light) {
  float rmax = r0 > r1 ? r0 : r1;
  int x0 = (int)floorf(fminf(xa, xb) - rmax), x1 = (int)ceilf(fmaxf(xa, xb) + rmax);
  int y0 = (int)floorf(fminf(ya, yb) - rmax), y1 = (int)ceilf(fmaxf(ya, yb) + rmax);
  if (x0 < 0) x0 = 0;
  if (y0 < 0) y0 = 0;
  if (x1 > cv->w - 1) x1 = cv->w - 1;
  if (y1 > cv->h - 1) y1 = cv->h - 1;
  float dx = xb - xa, dy = yb - ya, len2 = dx * dx + dy * dy;
  float len = sqrtf(len2);
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) {
      float px = x + 0.5f - xa, py = y + 0.5f - ya;
      float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
      if (t < 0) t = 0;
      if (t > 1) t = 1;
      float ex = px - t * dx, ey = py - t * dy, d = sqrtf(ex * ex + ey * ey);
      float r = r0 + (r1 - r0) * t;
      if (d <= r) {
        /* signed distance across the limb for the shading */
        float side = len > 0 ? (px * dy - py * dx) / len / r : 0;
        put(cv, x, y, paint_at(cv, p, x + 0.5f, y + 0.5f, body_shade(cv, side, light)));
      }
    }
}

/* ---- the pedestrian -------------------------------------------------------------------- */

typedef struct {
  int view;     /* VIEW_* */
  int facing;   /* side view: +1 right, -1 left; front/back: mirror */
  float phase;  /* walking phase */
  float ox, oy; /* top centre of the figure (pixels) */
  float H;      /* figure height (pixels) */
  float light;
} pose;

static paint garment(const slr_synth_opts *o, const canvas *cv, int col, int col2, int pat,
                     float period, float ox, float oy, uint64_t key) {
  paint p = solid(pal(o, col));
  p.b = pal(o, col2);
  p.pattern = pat;
  p.period = period;
  p.ox = ox;
  p.oy = oy;
  if (cv->real) {
    p.tex = 0.12f;
    p.tex_key = key;
  }
  return p;
}

static void draw_person(const slr_synth_opts *o, canvas *cv, const person *pe, const pose *po,
                        uint64_t key) {
  const float H = po->H, bw = pe->build;
  const int side = po->view == VIEW_SIDE;
  const float f = (float)po->facing;
  const float L = po->light;
#define X(u) (po->ox + (u)*H)
#define Y(v) (po->oy + (v)*H)
  rgb skin = skins[pe->skin];
  paint pskin = solid(skin), phair = solid(hairs[pe->hair]);
  if (cv->real) {
    pskin.tex = 0.04f;
    pskin.tex_key = key + 11;
    phair.tex = 0.2f;
    phair.tex_key = key + 12;
  }
  float sw = (side ? 0.068f : 0.118f) * bw; /* shoulder half width */
  float ww = (side ? 0.062f : 0.098f) * bw; /* waist half width */
  paint up =
      garment(o, cv, pe->upper, pe->upper2, pe->upper_pat, 0.035f * H, X(0), Y(0.17f), key + 1);
  paint lo =
      garment(o, cv, pe->lower, pe->lower2, pe->lower_pat, 0.04f * H, X(0), Y(0.5f), key + 2);
  /* a two-tone garment: its right half (viewer's left from the front) is
   * colour a; from behind the halves swap, from the side one half shows.
   * A chest print shows from the front only. */
  paint *halves[2] = {&up, &lo};
  for (int k = 0; k < 2; k++) {
    paint *g = halves[k];
    if (g->pattern == PAT_PANEL && po->view != VIEW_FRONT) g->pattern = PAT_SOLID;
    if (g->pattern != PAT_SPLIT) continue;
    rgb a = g->a;
    if (po->view == VIEW_BACK) {
      g->a = g->b;
      g->b = a;
    } else if (side) {
      g->pattern = PAT_SOLID;
      if (po->facing > 0)
        g->a = g->b;
      else
        g->b = g->a;
    }
  }
  paint pbag = garment(o, cv, pe->bag_col, pe->bag_col, PAT_SOLID, 1, 0, 0, key + 3);
  pbag.a = scale_rgb(pbag.a, 0.85f);
  paint shoe = solid(shoe_cols[pe->shoes]);
  float s = sinf(po->phase), c = cosf(po->phase);

  /* legs: hip -> knee -> ankle; the side view strides, the others shuffle */
  float hip_y = 0.49f, knee_y = 0.70f, ankle_y = 0.925f;
  float lr = 0.046f * bw;
  for (int leg = 0; leg < 2; leg++) {
    float sgn = leg ? 1.0f : -1.0f;
    float hx, kx, ax, ay = ankle_y;
    if (side) {
      float st = sgn * s * 0.11f;
      hx = 0.0f;
      kx = st * 0.55f + f * 0.012f;
      ax = st;
      ay = ankle_y - (sgn * s > 0 ? 0.0f : 0.012f * fabsf(s));
    } else {
      hx = sgn * 0.052f * bw;
      kx = hx + sgn * 0.004f;
      ax = hx + sgn * 0.01f;
      ay = ankle_y - 0.01f * (sgn * c > 0 ? fabsf(c) : 0);
    }
    ax *= side ? f : 1.0f;
    kx *= side ? f : 1.0f;
    paint *thigh = pe->lower_type == LOW_TROUSERS || pe->lower_type == LOW_SHORTS ? &lo : &pskin;
    paint *shin = pe->lower_type == LOW_TROUSERS ? &lo : &pskin;
    paint far_th = *thigh, far_sh = *shin;
    if (side && leg == 0) { /* the far leg a little darker */
      far_th.a = scale_rgb(far_th.a, 0.8f);
      far_th.b = scale_rgb(far_th.b, 0.8f);
      far_sh.a = scale_rgb(far_sh.a, 0.8f);
      far_sh.b = scale_rgb(far_sh.b, 0.8f);
    }
    fill_capsule(cv, X(hx), Y(hip_y), X(kx), Y(knee_y), lr * H, 0.85f * lr * H,
                 side && leg == 0 ? &far_th : thigh, L);
    fill_capsule(cv, X(kx), Y(knee_y), X(ax), Y(ay), 0.85f * lr * H, 0.62f * lr * H,
                 side && leg == 0 ? &far_sh : shin, L);
    if (pe->lower_type == LOW_SHORTS)
      fill_capsule(cv, X(hx), Y(hip_y), X(hx + (kx - hx) * 0.6f),
                   Y(hip_y + (knee_y - hip_y) * 0.6f), lr * H * 1.08f, lr * H, &lo, L);
    float shoe_dx = side ? f * 0.025f : 0.0f;
    fill_ellipse(cv, X(ax + shoe_dx), Y(ay + 0.018f), (side ? 0.05f : 0.036f) * bw * H, 0.022f * H,
                 &shoe, L);
  }
  /* pelvis and skirt */
  if (pe->lower_type == LOW_SKIRT)
    fill_trap(cv, Y(0.46f), Y(0.68f), X(0), ww * H, X(0), (side ? 0.09f : 0.145f) * bw * H, &lo, L);
  else
    fill_trap(cv, Y(0.45f), Y(0.53f), X(0), ww * H, X(0), (ww + 0.006f) * H, &lo, L);

  /* arms: swing opposite to the legs */
  float arm_r = 0.03f * bw;
  for (int arm = 0; arm < 2; arm++) {
    float sgn = arm ? 1.0f : -1.0f;
    int far = side && arm == 0;
    if (side && arm == 1) continue; /* the near arm is drawn after the torso */
    float shx = side ? 0.0f : sgn * (sw - 0.006f * bw);
    float hx = side ? -f * s * 0.09f : shx + sgn * 0.016f;
    float ex = side ? hx * 0.5f : shx + sgn * 0.024f;
    paint sleeve = up, hand = pskin;
    if (far) {
      sleeve.a = scale_rgb(sleeve.a, 0.8f);
      sleeve.b = scale_rgb(sleeve.b, 0.8f);
      hand.a = scale_rgb(hand.a, 0.8f);
    }
    fill_capsule(cv, X(shx), Y(0.185f), X(ex), Y(0.32f), arm_r * H, 0.9f * arm_r * H, &sleeve, L);
    fill_capsule(cv, X(ex), Y(0.32f), X(hx), Y(0.45f), 0.9f * arm_r * H, 0.75f * arm_r * H,
                 pe->long_sleeves ? &sleeve : &hand, L);
    fill_ellipse(cv, X(hx), Y(0.465f), 0.024f * H, 0.026f * H, &hand, L);
  }
  /* long hair behind the shoulders (front view) */
  if (pe->long_hair && po->view == VIEW_FRONT)
    fill_trap(cv, Y(0.06f), Y(0.25f), X(0), 0.058f * H, X(0), 0.075f * H, &phair, L);
  /* side view: a backpack behind the back */
  float back = side ? -f : 0.0f;
  if (side && pe->bag == BAG_BACKPACK)
    fill_trap(cv, Y(0.19f), Y(0.43f), X(back * (sw + 0.035f)), 0.045f * H, X(back * (sw + 0.04f)),
              0.05f * H, &pbag, L);
  /* neck and torso */
  fill_capsule(cv, X(0), Y(0.12f), X(0), Y(0.17f), 0.024f * H, 0.026f * H, &pskin, L);
  fill_trap(cv, Y(0.165f), Y(0.5f), X(0), sw * H, X(0), ww * H, &up, L);
  /* bags */
  if (pe->bag == BAG_BACKPACK && po->view == VIEW_BACK) {
    fill_trap(cv, Y(0.19f), Y(0.44f), X(0), 0.082f * bw * H, X(0), 0.09f * bw * H, &pbag, L);
    paint flap = pbag;
    flap.a = scale_rgb(pbag.a, 0.75f);
    fill_trap(cv, Y(0.19f), Y(0.26f), X(0), 0.082f * bw * H, X(0), 0.084f * bw * H, &flap, L);
  } else if (pe->bag == BAG_BACKPACK && po->view == VIEW_FRONT) {
    for (int k = -1; k <= 1; k += 2)
      fill_capsule(cv, X(k * 0.07f * bw), Y(0.17f), X(k * 0.078f * bw), Y(0.36f), 0.011f * H,
                   0.011f * H, &pbag, L);
  } else if (pe->bag == BAG_BACKPACK && side) {
    fill_capsule(cv, X(back * 0.03f), Y(0.17f), X(-back * 0.02f), Y(0.33f), 0.01f * H, 0.01f * H,
                 &pbag, L);
  }
  if (pe->bag == BAG_SHOULDER) {
    float bs = pe->bag_side ? 1.0f : -1.0f;
    if (po->view == VIEW_BACK) bs = -bs;
    if (side) bs = pe->bag_side ? f * 0.3f : -f * 0.3f;
    fill_capsule(cv, X(-bs * 0.06f), Y(0.17f), X(bs * (sw + 0.01f)), Y(0.4f), 0.008f * H,
                 0.008f * H, &pbag, L);
    if (!(side && !pe->bag_side))
      fill_trap(cv, Y(0.39f), Y(0.52f), X(bs * (sw + 0.03f)), 0.045f * H, X(bs * (sw + 0.03f)),
                0.05f * H, &pbag, L);
  }
  /* the near arm of the side view */
  if (side) {
    float hx = f * s * 0.09f;
    fill_capsule(cv, X(0), Y(0.185f), X(hx * 0.5f), Y(0.32f), arm_r * H, 0.9f * arm_r * H, &up, L);
    fill_capsule(cv, X(hx * 0.5f), Y(0.32f), X(hx), Y(0.45f), 0.9f * arm_r * H, 0.75f * arm_r * H,
                 pe->long_sleeves ? &up : &pskin, L);
    fill_ellipse(cv, X(hx), Y(0.465f), 0.024f * H, 0.026f * H, &pskin, L);
  }
  if (pe->bag == BAG_HAND) {
    float hx = side ? f * s * 0.09f : (pe->bag_side ? 1 : -1) * (sw + 0.0f);
    fill_trap(cv, Y(0.45f), Y(0.56f), X(hx), 0.035f * H, X(hx), 0.045f * H, &pbag, L);
  }
  /* head and hair */
  float hy = 0.072f;
  if (po->view == VIEW_BACK) {
    fill_ellipse(cv, X(0), Y(hy), 0.05f * H, 0.062f * H, &pskin, L);
    fill_ellipse(cv, X(0), Y(hy - 0.004f), 0.054f * H, 0.064f * H, &phair, L);
    if (pe->long_hair)
      fill_trap(cv, Y(0.07f), Y(0.27f), X(0), 0.055f * H, X(0), 0.07f * H, &phair, L);
  } else if (po->view == VIEW_FRONT) {
    fill_ellipse(cv, X(0), Y(hy - 0.006f), 0.055f * H, 0.064f * H, &phair, L);
    fill_ellipse(cv, X(0), Y(hy + 0.01f), 0.046f * H, 0.056f * H, &pskin, L);
    paint eye = solid(scale_rgb(skin, 0.45f));
    if (H > 60 * SS / 2) {
      fill_ellipse(cv, X(-0.017f), Y(hy + 0.005f), 0.006f * H, 0.005f * H, &eye, 0);
      fill_ellipse(cv, X(0.017f), Y(hy + 0.005f), 0.006f * H, 0.005f * H, &eye, 0);
    }
  } else {
    fill_ellipse(cv, X(f * 0.006f), Y(hy + 0.004f), 0.05f * H, 0.06f * H, &pskin, L);
    fill_ellipse(cv, X(-f * 0.012f), Y(hy - 0.006f), 0.048f * H, 0.058f * H, &phair, L);
    if (pe->long_hair)
      fill_trap(cv, Y(0.07f), Y(0.25f), X(-f * 0.03f), 0.03f * H, X(-f * 0.035f), 0.035f * H,
                &phair, L);
  }
  if (pe->hat) {
    paint hat = solid(pal(o, pe->hat_col));
    fill_ellipse(cv, X(0), Y(hy - 0.035f), 0.056f * H, 0.035f * H, &hat, L);
    fill_trap(cv, Y(hy - 0.02f), Y(hy - 0.005f), X(side ? f * 0.03f : 0), 0.06f * H,
              X(side ? f * 0.035f : 0), 0.06f * H, &hat, L);
  }
#undef X
#undef Y
}

/* ---- background, occluders and the camera ---------------------------------------------- */

static void draw_background(const slr_synth_opts *o, canvas *cv, const camera *cam, slr_rng *r,
                            uint64_t key) {
  int horizon = (int)(cam->horizon * cv->h);
  for (int y = 0; y < cv->h; y++)
    for (int x = 0; x < cv->w; x++) {
      rgb c;
      if (y < horizon) {
        float t = (float)y / (float)(horizon > 0 ? horizon : 1);
        c = mix(cam->wall, cam->wall2, t);
      } else {
        float t = (float)(y - horizon) / (float)(cv->h - horizon);
        c = scale_rgb(cam->floor, 0.9f + 0.2f * t);
      }
      if (cv->real) {
        size_t i = (size_t)(y / SS) * (size_t)cv->tw + (size_t)(x / SS);
        c = scale_rgb(c, 1.0f + 0.08f * cv->coarse[i] + 0.05f * cv->fine[i]);
      }
      put(cv, x, y, c);
    }
  /* clutter: windows, doors, signs, parked things */
  for (int k = 0; k < cam->clutter; k++) {
    float cx = unif(r, 0, (float)cv->w), w = unif(r, 0.1f, 0.6f) * cv->w;
    float yt = unif(r, -0.1f, cam->horizon) * cv->h, hgt = unif(r, 0.1f, 0.5f) * cv->h;
    rgb col = o->style == SLR_STYLE_REALISTIC
                  ? scale_rgb(mix(cam->wall, pal(o, pick(r, npal(o))), unif(r, 0.2f, 0.6f)),
                              unif(r, 0.6f, 1.1f))
                  : mix(cam->wall, pal(o, pick(r, npal(o))), 0.3f);
    paint p = solid(col);
    if (cv->real) {
      p.tex = 0.1f;
      p.tex_key = key + 100 + (uint64_t)k;
    }
    fill_trap(cv, yt, yt + hgt, cx, w / 2, cx, w / 2, &p, 0);
  }
}

static void draw_occluder(const slr_synth_opts *o, canvas *cv, slr_rng *r, uint64_t key) {
  paint p = solid(pal(o, pick(r, npal(o))));
  p.a = scale_rgb(p.a, unif(r, 0.5f, 1.0f));
  if (cv->real) {
    p.tex = 0.1f;
    p.tex_key = key;
  }
  int kind = pick(r, 3);
  if (kind == 0) { /* a car, bench or railing in front: from the bottom */
    float top = unif(r, 0.6f, 0.8f) * cv->h;
    fill_trap(cv, top, (float)cv->h, cv->w * 0.5f, cv->w * 0.7f, cv->w * 0.5f, cv->w * 0.7f, &p, 0);
  } else if (kind == 1) { /* a pole or a tree at one side */
    float x = (pick(r, 2) ? unif(r, 0.05f, 0.3f) : unif(r, 0.7f, 0.95f)) * cv->w;
    float hw = unif(r, 0.06f, 0.16f) * cv->w;
    fill_trap(cv, 0, (float)cv->h, x, hw, x, hw, &p, 0.3f);
  } else { /* another person's shoulder at the side */
    float x = pick(r, 2) ? -0.05f * cv->w : 1.05f * cv->w;
    fill_ellipse(cv, x, unif(r, 0.3f, 0.7f) * cv->h, 0.25f * cv->w, 0.35f * cv->h, &p, 0.5f);
  }
}

/* separable Gaussian blur of an (h, w, 3) float image */
static void blur(float *im, int h, int w, float sigma) {
  if (sigma < 0.05f) return;
  int rad = (int)ceilf(2.5f * sigma);
  float k[32];
  if (rad > 15) rad = 15;
  float sum = 0;
  for (int i = -rad; i <= rad; i++) sum += k[i + rad] = expf(-0.5f * i * i / (sigma * sigma));
  for (int i = 0; i <= 2 * rad; i++) k[i] /= sum;
  float *tmp = malloc((size_t)h * w * 3 * sizeof *tmp);
  if (!tmp) return;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        float a = 0;
        for (int i = -rad; i <= rad; i++) {
          int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
          a += k[i + rad] * im[((size_t)y * w + xx) * 3 + c];
        }
        tmp[((size_t)y * w + x) * 3 + c] = a;
      }
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        float a = 0;
        for (int i = -rad; i <= rad; i++) {
          int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
          a += k[i + rad] * tmp[((size_t)yy * w + x) * 3 + c];
        }
        im[((size_t)y * w + x) * 3 + c] = a;
      }
  free(tmp);
}

void slr_synth_defaults(slr_synth_opts *o) {
  memset(o, 0, sizeof *o);
  o->ids = 120;
  o->cams = 4;
  o->per_cam = 4;
  o->height = 64;
  o->width = 32;
  o->seed = 1;
  o->difficulty = 0.5;
  o->style = SLR_STYLE_SYNTHETIC;
  o->train_frac = 0.5;
  o->gain = 1.0;
  o->cast = 0.0;
}

static int check_opts(const slr_synth_opts *o) {
  if (o->ids < 2) return SLR_FAIL(SLR_ERR_USAGE, "--ids must be at least 2 (got %d)", o->ids);
  if (o->ids > 9999) return SLR_FAIL(SLR_ERR_USAGE, "--ids must be at most 9999 (got %d)", o->ids);
  if (o->cams < 2 || o->cams > 6)
    return SLR_FAIL(SLR_ERR_USAGE, "--cams must be in 2..6 (the Market-1501 layout; got %d)",
                    o->cams);
  if (o->per_cam < 1 || o->per_cam > 100)
    return SLR_FAIL(SLR_ERR_USAGE, "--per-cam must be in 1..100 (got %d)", o->per_cam);
  if (o->height < 16 || o->height > 1024 || o->width < 8 || o->width > 512)
    return SLR_FAIL(SLR_ERR_USAGE, "image size %dx%d out of range (height 16..1024, width 8..512)",
                    o->height, o->width);
  if (!(o->difficulty >= 0 && o->difficulty <= 1))
    return SLR_FAIL(SLR_ERR_USAGE, "--difficulty must be in [0, 1] (got %g)", o->difficulty);
  if (!(o->train_frac > 0 && o->train_frac < 1))
    return SLR_FAIL(SLR_ERR_USAGE, "--train-frac must be in (0, 1) (got %g)", o->train_frac);
  if (!(o->gain >= 0.2 && o->gain <= 2))
    return SLR_FAIL(SLR_ERR_USAGE, "--gain must be in [0.2, 2] (got %g)", o->gain);
  if (!(o->cast >= 0 && o->cast <= 0.5))
    return SLR_FAIL(SLR_ERR_USAGE, "--cast must be in [0, 0.5] (got %g)", o->cast);
  return 0;
}

int slr_synth_render(const slr_synth_opts *o, int id, int cam_id, int shot, slr_image *im) {
  SLR_TRY(check_opts(o));
  person pe;
  identity_attrs(o, id, &pe);
  camera cam;
  camera_attrs(o, cam_id, &cam);
  slr_rng r;
  slr_rng_init(&r, o->seed,
               slr_rng_stream_id(KEY_IMG, (uint64_t)id, (uint64_t)cam_id, (uint64_t)shot), 0);
  const float d = (float)o->difficulty;
  canvas cv;
  cv.w = o->width * SS;
  cv.h = o->height * SS;
  cv.real = o->style == SLR_STYLE_REALISTIC;
  cv.tw = o->width;
  cv.th = o->height;
  SLR_ALLOC(cv.px, (size_t)cv.w * cv.h * 3 * sizeof(float));
  cv.fine = malloc((size_t)cv.tw * cv.th * 2 * sizeof(float));
  if (!cv.fine) {
    free(cv.px);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  }
  cv.coarse = cv.fine + (size_t)cv.tw * cv.th;
  uint64_t key = slr_rng_u64(&r);
  for (int y = 0; y < cv.th; y++)
    for (int x = 0; x < cv.tw; x++) {
      cv.fine[(size_t)y * cv.tw + x] = value_noise(key, (float)x, (float)y, 1.0f);
      cv.coarse[(size_t)y * cv.tw + x] = value_noise(key + 1, (float)x, (float)y, 3.0f);
    }
  draw_background(o, &cv, &cam, &r, key);
  pose po;
  float u = slr_rng_uniform(&r);
  po.view = u < cam.p_front ? VIEW_FRONT : u < cam.p_front + cam.p_back ? VIEW_BACK : VIEW_SIDE;
  po.facing = pick(&r, 2) ? 1 : -1;
  po.phase = unif(&r, 0, 6.2831853f);
  float sj = 0.03f + 0.08f * d, xj = 0.02f + 0.08f * d;
  po.H = pe.height * (1.0f + unif(&r, -sj, sj * 0.4f)) * cv.h;
  po.ox = cv.w * (0.5f + unif(&r, -xj, xj));
  po.oy = (cv.h - po.H) * unif(&r, 0.2f, 0.8f) + cv.h * unif(&r, -0.3f * xj, 0.3f * xj);
  po.light = cam.light_dir;
  /* the identity's own pixels keep their texture from image to image */
  draw_person(o, &cv, &pe, &po, slr_rng_stream_id(KEY_ID, (uint64_t)id, 1, (uint64_t)o->seed));
  if (slr_rng_uniform(&r) < 0.06f + 0.3f * d) draw_occluder(o, &cv, &r, key + 1);
  /* box filter down to the output size, then the camera's optics */
  float *out = malloc((size_t)o->width * o->height * 3 * sizeof *out);
  int rc =
      out ? slr_image_alloc(im, o->height, o->width) : SLR_FAIL(SLR_ERR_NOMEM, "out of memory");
  if (rc) {
    free(out);
    free(cv.px);
    free(cv.fine);
    return rc;
  }
  for (int y = 0; y < o->height; y++)
    for (int x = 0; x < o->width; x++)
      for (int c = 0; c < 3; c++) {
        float a = 0;
        for (int dy = 0; dy < SS; dy++)
          for (int dx = 0; dx < SS; dx++)
            a += cv.px[(((size_t)(y * SS + dy)) * cv.w + (size_t)(x * SS + dx)) * 3 + c];
        out[((size_t)y * o->width + x) * 3 + c] = a / (SS * SS);
      }
  free(cv.px);
  free(cv.fine);
  blur(out, o->height, o->width,
       cam.blur * (1.0f + unif(&r, -0.3f, 0.3f)) * o->height / 128.0f * 1.5f);
  float gain = cam.gain * (1.0f + unif(&r, -0.08f, 0.08f) * (0.5f + d));
  slr_rng nr;
  slr_rng_init(&nr, o->seed,
               slr_rng_stream_id(KEY_NOISE, (uint64_t)id, (uint64_t)cam_id, (uint64_t)shot), 0);
  for (int y = 0; y < o->height; y++) {
    /* light from above in the realistic style */
    float vy = cv.real ? 1.08f - 0.16f * (float)y / o->height : 1.0f;
    for (int x = 0; x < o->width; x++)
      for (int c = 0; c < 3; c++) {
        float v = out[((size_t)y * o->width + x) * 3 + c] * gain * cam.cast[c] * vy;
        v = v * (1 - cam.haze) + 0.55f * cam.haze;
        if (cam.noise > 0) v += cam.noise * slr_rng_normal(&nr);
        float q = v * 255.0f + 0.5f;
        im->data[((size_t)y * o->width + x) * 3 + c] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
      }
  }
  free(out);
  return 0;
}

/* ---- writing a domain ---------------------------------------------------------------- */

static int train_ids(const slr_synth_opts *o) {
  int t = (int)lround(o->ids * o->train_frac);
  if (t < 1) t = 1;
  if (t > o->ids - 1) t = o->ids - 1;
  return t;
}

/* query: shot 0 of two cameras per test identity; gallery: the rest */
static int is_query(const slr_synth_opts *o, int id, int cam, int shot) {
  int q1 = id % o->cams, q2 = (id + o->cams / 2) % o->cams;
  return shot == 0 && (cam == q1 || cam == q2);
}

static int write_bytes(const char *path, const uint8_t *buf, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return SLR_FAIL(SLR_ERR, "cannot create %s: %s", path, strerror(errno));
  size_t w = fwrite(buf, 1, len, f);
  int bad = w != len;
  if (fclose(f) != 0) bad = 1;
  if (bad) return SLR_FAIL(SLR_ERR, "cannot write %s: %s", path, strerror(errno));
  return 0;
}

static int write_identity(const slr_synth_opts *o, const char *dir, int id) {
  int train = id < train_ids(o);
  for (int cam = 0; cam < o->cams; cam++) {
    camera cp;
    camera_attrs(o, cam, &cp);
    for (int shot = 0; shot < o->per_cam; shot++) {
      slr_image im;
      SLR_TRY(slr_synth_render(o, id, cam, shot, &im));
      uint8_t *buf = NULL;
      size_t len = 0;
      int rc = slr_image_encode_jpeg(&im, cp.quality, &buf, &len);
      slr_image_free(&im);
      if (rc) return rc;
      const char *sub = train                        ? "bounding_box_train"
                        : is_query(o, id, cam, shot) ? "query"
                                                     : "bounding_box_test";
      char path[4200];
      snprintf(path, sizeof path, "%.4000s/%s/%04d_c%ds1_%06d_00.jpg", dir, sub, id + 1, cam + 1,
               (id * o->per_cam + shot) * 25 + 1);
      rc = write_bytes(path, buf, len);
      free(buf);
      if (rc) return rc;
    }
  }
  return 0;
}

static int remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (!d) return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    remove_tree(p);
  }
  closedir(d);
  return rmdir(path);
}

int slr_synth_write(const slr_synth_opts *o, const char *dir, MPI_Comm comm) {
  int rank, size;
  SLR_MPI(MPI_Comm_rank(comm, &rank));
  SLR_MPI(MPI_Comm_size(comm, &size));
  char tmp[4096];
  int rc = check_opts(o);
  if (!rc && snprintf(tmp, sizeof tmp, "%s.partial", dir) >= (int)sizeof tmp - 64)
    rc = SLR_FAIL(SLR_ERR_USAGE, "output path too long: %s", dir);
  if (!rc && rank == 0) {
    struct stat st;
    if (stat(dir, &st) == 0)
      rc = SLR_FAIL(SLR_ERR_USAGE, "%s already exists; remove it or choose another folder", dir);
    if (!rc) {
      remove_tree(tmp);
      const char *subs[] = {"bounding_box_train", "query", "bounding_box_test"};
      for (int k = 0; k < 3 && !rc; k++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", tmp, subs[k]);
        rc = slr_mkdir_p(p);
      }
    }
  }
  SLR_TRY(slr_agree(comm, rc));
  int64_t first, count;
  slr_shard_rows(o->ids, rank, size, &first, &count);
  slr_progress prog;
  slr_progress_begin(&prog, "synth", count, "ids", 0);
  for (int64_t i = 0; i < count && !rc; i++) {
    rc = write_identity(o, tmp, (int)(first + i));
    slr_progress_update(&prog, i + 1);
  }
  slr_progress_end(&prog);
  rc = slr_agree(comm, rc);
  if (rc) {
    if (rank == 0) remove_tree(tmp);
    return rc;
  }
  if (rank == 0 && rename(tmp, dir) != 0)
    rc = SLR_FAIL(SLR_ERR, "cannot rename %s to %s: %s", tmp, dir, strerror(errno));
  return slr_agree(comm, rc);
}

int slr_synth_preview(const slr_synth_opts *o, int rows, const char *path) {
  SLR_TRY(check_opts(o));
  if (rows > o->ids) rows = o->ids;
  const int gap = 2, shots = o->per_cam < 2 ? o->per_cam : 2;
  const int cols = o->cams * shots;
  slr_image grid;
  SLR_TRY(slr_image_alloc(&grid, rows * (o->height + gap) + gap,
                          cols * (o->width + gap) + gap + (o->cams - 1) * gap));
  memset(grid.data, 255, (size_t)grid.h * grid.w * 3);
  for (int id = 0; id < rows; id++)
    for (int cam = 0; cam < o->cams; cam++)
      for (int shot = 0; shot < shots; shot++) {
        slr_image im;
        int rc = slr_synth_render(o, id, cam, shot, &im);
        if (rc) {
          slr_image_free(&grid);
          return rc;
        }
        int x0 = gap + (cam * shots + shot) * (o->width + gap) + cam * gap;
        int y0 = gap + id * (o->height + gap);
        for (int y = 0; y < o->height; y++)
          memcpy(grid.data + ((size_t)(y0 + y) * grid.w + x0) * 3,
                 im.data + (size_t)y * o->width * 3, (size_t)o->width * 3);
        slr_image_free(&im);
      }
  int rc = slr_image_write_png(path, &grid);
  slr_image_free(&grid);
  return rc;
}
