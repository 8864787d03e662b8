/* data/image: JPEG (libjpeg-turbo) and PNG (libpng) decoding and encoding,
 * and resizing that reproduces PIL's Image.resize with BILINEAR and BICUBIC
 * (separable convolution, support scaled by the downscale factor,
 * horizontal pass first, 22-bit fixed-point coefficients). */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
/* jpeglib.h needs stdio.h and size_t first */
#include <jerror.h>
#include <jpeglib.h>

#include "slr/data.h"

/* Refuse an image whose header declares more than SLR_IMAGE_MAX_PIXELS. */
static int check_pixels(const char *kind, const char *name, long long w, long long h) {
  if (w < 1 || h < 1 || w * h > SLR_IMAGE_MAX_PIXELS)
    return SLR_FAIL(SLR_ERR_INPUT,
                    "%s image %s declares %lld x %lld pixels, more than the %lld slr decodes "
                    "(a decompression bomb or a damaged header?)",
                    kind, name, w, h, (long long)SLR_IMAGE_MAX_PIXELS);
  return 0;
}

void slr_image_free(slr_image *im) {
  free(im->data);
  memset(im, 0, sizeof *im);
}

int slr_image_alloc(slr_image *im, int h, int w) {
  if (h <= 0 || w <= 0) return SLR_FAIL(SLR_ERR, "bad image size %dx%d", w, h);
  im->h = h;
  im->w = w;
  im->c = 3;
  SLR_ALLOC(im->data, (size_t)h * (size_t)w * 3);
  return 0;
}

/* ---- reading whole files ------------------------------------------------------- */

static int read_file(const char *path, uint8_t **buf, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return SLR_FAIL(SLR_ERR_INPUT, "cannot read image %s: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  uint8_t *b = malloc(cap);
  while (b) {
    size_t got = fread(b + n, 1, cap - n, f);
    n += got;
    if (n < cap) break;
    cap *= 2;
    uint8_t *nb = realloc(b, cap);
    if (!nb) {
      free(b);
      b = NULL;
    }
    b = nb;
  }
  int err = ferror(f);
  fclose(f);
  if (!b) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory reading %s", path);
  if (err) {
    free(b);
    return SLR_FAIL(SLR_ERR_INPUT, "cannot read image %s: read error", path);
  }
  *buf = b;
  *len = n;
  return 0;
}

/* ---- JPEG ------------------------------------------------------------------------- */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
  int truncated;
} jpeg_err;

static void jpeg_on_error(j_common_ptr cinfo) {
  jpeg_err *e = (jpeg_err *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->msg);
  longjmp(e->jump, 1);
}

/* Warnings are ignored (as PIL does) except a premature end of data, which
 * PIL reports as a truncated image. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
  jpeg_err *e = (jpeg_err *)cinfo->err;
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

static int decode_jpeg(const uint8_t *buf, size_t len, const char *name, slr_image *im) {
  struct jpeg_decompress_struct cinfo;
  jpeg_err jerr;
  memset(&jerr, 0, sizeof jerr);
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = jpeg_on_error;
  jerr.pub.emit_message = jpeg_on_message;
  /* volatile: modified between setjmp and longjmp */
  uint8_t *volatile data = NULL;
  if (setjmp(jerr.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(data);
    return SLR_FAIL(SLR_ERR_INPUT, "corrupt JPEG image %s: %s", name, jerr.msg);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, buf, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  /* from the header, before libjpeg allocates anything for the pixels */
  if (check_pixels("JPEG", name, (long long)cinfo.image_width, (long long)cinfo.image_height)) {
    jpeg_destroy_decompress(&cinfo);
    return SLR_ERR_INPUT;
  }
  if (cinfo.num_components != 1 && cinfo.num_components != 3) {
    jpeg_destroy_decompress(&cinfo);
    return SLR_FAIL(SLR_ERR_INPUT, "JPEG image %s has %d colour components (CMYK?)", name,
                    cinfo.num_components);
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
  data = malloc((size_t)w * (size_t)h * 3);
  if (!data) {
    jpeg_destroy_decompress(&cinfo);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory decoding %s", name);
  }
  while (cinfo.output_scanline < cinfo.output_height && !jerr.truncated) {
    JSAMPROW row = data + (size_t)cinfo.output_scanline * (size_t)w * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  if (!jerr.truncated) jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (jerr.truncated) {
    free(data);
    return SLR_FAIL(SLR_ERR_INPUT, "truncated JPEG image %s (premature end of data)", name);
  }
  im->h = h;
  im->w = w;
  im->c = 3;
  im->data = data;
  return 0;
}

int slr_image_encode_jpeg(const slr_image *im, int quality, uint8_t **buf, size_t *len) {
  struct jpeg_compress_struct cinfo;
  jpeg_err jerr;
  memset(&jerr, 0, sizeof jerr);
  unsigned char *mem = NULL;
  unsigned long memlen = 0;
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = jpeg_on_error;
  if (setjmp(jerr.jump)) {
    jpeg_destroy_compress(&cinfo);
    free(mem);
    return SLR_FAIL(SLR_ERR, "cannot encode a JPEG image: %s", jerr.msg);
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &mem, &memlen);
  cinfo.image_width = (JDIMENSION)im->w;
  cinfo.image_height = (JDIMENSION)im->h;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = im->data + (size_t)cinfo.next_scanline * (size_t)im->w * 3;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  *buf = mem;
  *len = memlen;
  return 0;
}

int slr_image_write_jpeg(const char *path, const slr_image *im, int quality) {
  uint8_t *mem = NULL;
  size_t len = 0;
  SLR_TRY(slr_image_encode_jpeg(im, quality, &mem, &len));
  int rc = slr_write_file_atomic(path, mem, len);
  free(mem);
  return rc;
}

/* ---- PNG ---------------------------------------------------------------------------- */

typedef struct {
  const uint8_t *buf;
  size_t len, pos;
} png_src;

typedef struct {
  jmp_buf jump;
  char msg[256];
} png_err;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_err *e = png_get_error_ptr(png);
  snprintf(e->msg, sizeof e->msg, "%s", msg);
  longjmp(e->jump, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {}

static void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
  png_src *s = png_get_io_ptr(png);
  if (n > s->len - s->pos) png_error(png, "truncated file (premature end of data)");
  memcpy(out, s->buf + s->pos, n);
  s->pos += n;
}

static int decode_png(const uint8_t *buf, size_t len, const char *name, slr_image *im) {
  png_err perr;
  memset(&perr, 0, sizeof perr);
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &perr, png_on_error, png_on_warning);
  if (!png) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory decoding %s", name);
  png_infop info = png_create_info_struct(png);
  uint8_t *volatile data = NULL;
  png_bytep *volatile rows = NULL;
  png_src src = {buf, len, 0};
  if (!info || setjmp(perr.jump)) {
    png_destroy_read_struct(&png, &info, NULL);
    free(data);
    free(rows);
    return SLR_FAIL(SLR_ERR_INPUT, "corrupt PNG image %s: %s", name, perr.msg);
  }
  png_set_read_fn(png, &src, png_read_mem);
  png_read_info(png, info);
  /* from the header (IHDR), before anything is allocated for the pixels */
  if (check_pixels("PNG", name, (long long)png_get_image_width(png, info),
                   (long long)png_get_image_height(png, info))) {
    png_destroy_read_struct(&png, &info, NULL);
    return SLR_ERR_INPUT;
  }
  int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
  int ctype = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (depth == 16) png_set_strip_16(png);
  if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  /* PIL's convert("RGB") drops alpha, also the one a tRNS chunk adds */
  if ((ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
    png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != (size_t)w * 3) png_error(png, "unsupported pixel format");
  data = malloc((size_t)w * (size_t)h * 3);
  rows = malloc((size_t)h * sizeof(png_bytep));
  if (!data || !rows) png_error(png, "out of memory");
  for (int y = 0; y < h; y++) rows[y] = data + (size_t)y * (size_t)w * 3;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  im->h = h;
  im->w = w;
  im->c = 3;
  im->data = data;
  return 0;
}

typedef struct {
  uint8_t *buf;
  size_t len, cap;
  int oom;
} png_dst;

static void png_write_mem(png_structp png, png_bytep in, png_size_t n) {
  png_dst *d = png_get_io_ptr(png);
  if (d->len + n > d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 65536;
    while (cap < d->len + n) cap *= 2;
    uint8_t *b = realloc(d->buf, cap);
    if (!b) png_error(png, "out of memory");
    d->buf = b;
    d->cap = cap;
  }
  memcpy(d->buf + d->len, in, n);
  d->len += n;
}

static void png_flush_mem(png_structp png) {}

int slr_image_write_png(const char *path, const slr_image *im) {
  png_err perr;
  memset(&perr, 0, sizeof perr);
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &perr, png_on_error, png_on_warning);
  if (!png) return SLR_FAIL(SLR_ERR_NOMEM, "out of memory encoding %s", path);
  png_infop info = png_create_info_struct(png);
  png_dst dst = {0};
  if (!info || setjmp(perr.jump)) {
    png_destroy_write_struct(&png, &info);
    free(dst.buf);
    return SLR_FAIL(SLR_ERR, "cannot encode %s: %s", path, perr.msg);
  }
  png_set_write_fn(png, &dst, png_write_mem, png_flush_mem);
  png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < im->h; y++) png_write_row(png, im->data + (size_t)y * (size_t)im->w * 3);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  int rc = slr_write_file_atomic(path, dst.buf, dst.len);
  free(dst.buf);
  return rc;
}

/* ---- dispatch ------------------------------------------------------------------------ */

int slr_image_decode(const uint8_t *buf, size_t len, const char *name, slr_image *im) {
  memset(im, 0, sizeof *im);
  if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
    return decode_jpeg(buf, len, name, im);
  if (len >= 8 && png_sig_cmp((png_const_bytep)buf, 0, 8) == 0)
    return decode_png(buf, len, name, im);
  if (len == 0) return SLR_FAIL(SLR_ERR_INPUT, "image %s is an empty file", name);
  return SLR_FAIL(SLR_ERR_INPUT, "image %s is neither a JPEG nor a PNG file", name);
}

int slr_image_read(const char *path, slr_image *im) {
  uint8_t *buf = NULL;
  size_t len = 0;
  memset(im, 0, sizeof *im);
  SLR_TRY(read_file(path, &buf, &len));
  int rc = slr_image_decode(buf, len, path, im);
  free(buf);
  return rc;
}

/* ---- PIL's resampling ------------------------------------------------------------------ */

#define PRECISION_BITS (32 - 8 - 2)

static double filter_bilinear(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

static double filter_bicubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/* Fixed-point coefficients of every output position: ksize taps each,
 * starting at source index bounds[2i] for bounds[2i+1] taps. */
typedef struct {
  int ksize;
  int *bounds;
  int32_t *k;
} coeffs;

static int precompute(int in_size, int out_size, slr_resample f, coeffs *c) {
  double (*filt)(double) = f == SLR_RESAMPLE_BICUBIC ? filter_bicubic : filter_bilinear;
  double fsupport = f == SLR_RESAMPLE_BICUBIC ? 2.0 : 1.0;
  double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
  double support = fsupport * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  double *kk;
  SLR_ALLOC(kk, (size_t)ksize * sizeof *kk);
  c->ksize = ksize;
  c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
  c->k = malloc((size_t)out_size * (size_t)ksize * sizeof *c->k);
  if (!c->bounds || !c->k) {
    free(kk);
    free(c->bounds);
    free(c->k);
    return SLR_FAIL(SLR_ERR_NOMEM, "out of memory in resize");
  }
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      double w = filt((x + xmin - center + 0.5) * ss);
      kk[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; x++)
      if (ww != 0.0) kk[x] /= ww;
    int32_t *k = c->k + (size_t)xx * (size_t)ksize;
    for (int x = 0; x < ksize; x++) {
      double v = x < xmax ? kk[x] : 0.0;
      k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    c->bounds[2 * xx] = xmin;
    c->bounds[2 * xx + 1] = xmax;
  }
  free(kk);
  return 0;
}

static inline uint8_t clip8(int32_t v) {
  v >>= PRECISION_BITS;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* rows [y0, y0 + nrows) of src (w_in wide) -> dst (w_out wide, nrows high) */
static void pass_horizontal(const uint8_t *src, int w_in, int y0, int nrows, uint8_t *dst,
                            int w_out, const coeffs *c) {
  for (int y = 0; y < nrows; y++) {
    const uint8_t *row = src + (size_t)(y0 + y) * (size_t)w_in * 3;
    uint8_t *out = dst + (size_t)y * (size_t)w_out * 3;
    for (int xx = 0; xx < w_out; xx++) {
      int xmin = c->bounds[2 * xx], xmax = c->bounds[2 * xx + 1];
      const int32_t *k = c->k + (size_t)xx * (size_t)c->ksize;
      int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
      const uint8_t *p = row + (size_t)xmin * 3;
      for (int x = 0; x < xmax; x++) {
        s0 += p[3 * x] * k[x];
        s1 += p[3 * x + 1] * k[x];
        s2 += p[3 * x + 2] * k[x];
      }
      out[3 * xx] = clip8(s0);
      out[3 * xx + 1] = clip8(s1);
      out[3 * xx + 2] = clip8(s2);
    }
  }
}

/* src (w wide, any height) -> dst (w wide, h_out high); bounds relative to src */
static void pass_vertical(const uint8_t *src, int w, uint8_t *dst, int h_out, const coeffs *c,
                          int shift) {
  size_t stride = (size_t)w * 3;
  int32_t *acc = malloc(stride * sizeof *acc);
  for (int yy = 0; yy < h_out; yy++) {
    int ymin = c->bounds[2 * yy] - shift, ymax = c->bounds[2 * yy + 1];
    const int32_t *k = c->k + (size_t)yy * (size_t)c->ksize;
    uint8_t *out = dst + (size_t)yy * stride;
    if (acc) {
      for (size_t i = 0; i < stride; i++) acc[i] = 1 << (PRECISION_BITS - 1);
      for (int y = 0; y < ymax; y++) {
        const uint8_t *row = src + (size_t)(ymin + y) * stride;
        int32_t ky = k[y];
        for (size_t i = 0; i < stride; i++) acc[i] += row[i] * ky;
      }
      for (size_t i = 0; i < stride; i++) out[i] = clip8(acc[i]);
    } else {
      for (size_t i = 0; i < stride; i++) {
        int32_t s = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < ymax; y++) s += src[(size_t)(ymin + y) * stride + i] * k[y];
        out[i] = clip8(s);
      }
    }
  }
  free(acc);
}

int slr_image_resize(const slr_image *in, int h, int w, slr_resample filter, slr_image *out) {
  memset(out, 0, sizeof *out);
  SLR_TRY(slr_image_alloc(out, h, w));
  int need_h = w != in->w, need_v = h != in->h;
  if (!need_h && !need_v) {
    memcpy(out->data, in->data, (size_t)h * (size_t)w * 3);
    return 0;
  }
  coeffs ch = {0}, cv = {0};
  int rc = precompute(in->w, w, filter, &ch);
  if (!rc) rc = precompute(in->h, h, filter, &cv);
  if (rc) {
    free(ch.bounds);
    free(ch.k);
    slr_image_free(out);
    return rc;
  }
  if (need_h && need_v) {
    /* only the source rows the vertical pass reads */
    int y_first = cv.bounds[0], y_last = cv.bounds[2 * h - 2] + cv.bounds[2 * h - 1];
    uint8_t *tmp = malloc((size_t)(y_last - y_first) * (size_t)w * 3);
    if (!tmp) {
      rc = SLR_FAIL(SLR_ERR_NOMEM, "out of memory in resize");
    } else {
      pass_horizontal(in->data, in->w, y_first, y_last - y_first, tmp, w, &ch);
      pass_vertical(tmp, w, out->data, h, &cv, y_first);
    }
    free(tmp);
  } else if (need_h) {
    pass_horizontal(in->data, in->w, 0, h, out->data, w, &ch);
  } else {
    pass_vertical(in->data, w, out->data, h, &cv, 0);
  }
  free(ch.bounds);
  free(ch.k);
  free(cv.bounds);
  free(cv.k);
  if (rc) slr_image_free(out);
  return rc;
}

int slr_resample_parse(const char *name, slr_resample *out) {
  if (strcmp(name, "bicubic") == 0)
    *out = SLR_RESAMPLE_BICUBIC;
  else if (strcmp(name, "bilinear") == 0)
    *out = SLR_RESAMPLE_BILINEAR;
  else
    return SLR_FAIL(SLR_ERR_CONFIG, "unknown interpolation \"%s\" (bicubic | bilinear)", name);
  return 0;
}
