/* data: Re-ID data set readers (Market-1501, DukeMTMC-reID, MSMT17 V1/V2,
 * PersonX, generic list files), image decoding (JPEG, PNG) and PIL-exact
 * resizing, the train and test transforms of the PyTorch peers, the identity
 * (P x K) sampler, sequential sharding for feature extraction, a
 * prefetching loader, and the synthetic pedestrian generator.
 *
 * Conventions: images are HWC RGB uint8; batches are float (N, 3, H, W)
 * normalised with the ImageNet mean and std. camids are 0-based (the file
 * names' camera minus 1, as the peers). Training pids are relabelled to
 * 0..P-1 in order of the original pid; query and gallery pids keep their
 * original values (Market's distractors keep pid 0). All randomness comes
 * from slr_rng keyed by (seed, epoch, step, position in the global batch),
 * so a batch is the same whatever the rank count. */
#ifndef SLR_DATA_H
#define SLR_DATA_H

#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "slr/config.h"
#include "slr/dist.h"
#include "slr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- data sets -------------------------------------------------------------- */

enum { SLR_TRAIN = 0, SLR_QUERY = 1, SLR_GALLERY = 2, SLR_NSPLITS = 3 };

/* One split: n images with their path, pid and camid. */
typedef struct {
  int64_t n;
  char **paths;               /* (n) full paths, pointing into one block */
  int32_t *pids;              /* (n) train: 0..num_pids-1; query/gallery: original pid */
  int32_t *camids;            /* (n) 0-based */
  int32_t num_pids, num_cams; /* distinct values present */
  char *path_block;
} slr_split;

typedef struct {
  char name[32]; /* "Market-1501", ... */
  char root[SLR_CFG_STR];
  slr_split split[SLR_NSPLITS];
} slr_dataset;

/* Read a data set described by a domain of the configuration
 * (format market1501 | dukemtmc | msmt17 | personx | list). Rank 0 reads
 * the folders or lists (sorted) and broadcasts the arrays, so every rank
 * holds the same data set; on an error (missing folder, layout not found, a
 * file name that does not follow the naming scheme, a bad list line) every
 * rank returns SLR_ERR_INPUT with the message naming the file or folder.
 * Logs the summary table (info level, rank 0). Collective on comm. */
int slr_dataset_load(slr_dataset *ds, const slr_domain_cfg *cfg, MPI_Comm comm);
/* The same without the agreement. Local. */
int slr_dataset_read(slr_dataset *ds, const slr_domain_cfg *cfg);
/* Local. */
void slr_dataset_free(slr_dataset *ds);
/* The peers' summary table (ids, images, cameras per split). Local. */
void slr_dataset_print(const slr_dataset *ds, FILE *out);
/* Log the table at info level (rank 0). Local. */
void slr_dataset_log(const slr_dataset *ds);

/* ---- images ----------------------------------------------------------------- */

typedef struct {
  int h, w, c;   /* c = 3 (RGB) */
  uint8_t *data; /* (h, w, c) */
} slr_image;

/* Local. */
void slr_image_free(slr_image *im);
/* An h x w RGB image (data uninitialised). Local. */
int slr_image_alloc(slr_image *im, int h, int w);
/* The largest image decoded, in pixels (width x height): PIL's default
 * Image.MAX_IMAGE_PIXELS. A file whose header declares more is refused
 * before anything is allocated for its pixels (a decompression bomb: a few
 * hundred bytes can declare 65000 x 65000). Person crops are far smaller. */
#define SLR_IMAGE_MAX_PIXELS 89478485LL

/* Decode a JPEG (libjpeg-turbo, default IDCT and fancy upsampling as PIL) or
 * PNG file (by its signature) to RGB. Grey and palette images are expanded,
 * alpha is dropped, 16-bit samples are cut to 8. A missing, unreadable,
 * corrupt or truncated file, or one larger than SLR_IMAGE_MAX_PIXELS, is
 * SLR_ERR_INPUT naming the file. Local. */
int slr_image_read(const char *path, slr_image *im);
int slr_image_decode(const uint8_t *buf, size_t len, const char *name, slr_image *im);
/* Encoders to memory (*buf malloc'ed) and to files (atomically). Local. */
int slr_image_encode_jpeg(const slr_image *im, int quality, uint8_t **buf, size_t *len);
int slr_image_write_jpeg(const char *path, const slr_image *im, int quality);
int slr_image_write_png(const char *path, const slr_image *im);

typedef enum { SLR_RESAMPLE_BILINEAR = 2, SLR_RESAMPLE_BICUBIC = 3 } slr_resample;
/* PIL's Image.resize((w, h), BILINEAR or BICUBIC): separable convolution
 * with the filter support scaled by the downscale factor (antialiased when
 * shrinking), horizontal pass first, 8-bit fixed-point coefficients (22
 * bits) with PIL's rounding. `out` is allocated. Local. */
int slr_image_resize(const slr_image *in, int h, int w, slr_resample filter, slr_image *out);
/* Parse "bicubic" | "bilinear". Local. */
int slr_resample_parse(const char *name, slr_resample *out);

/* ---- transforms ----------------------------------------------------------------- */

/* The peers' train transform: Resize((h, w), interp), RandomHorizontalFlip(flip_p),
 * Pad(pad) with zeros + RandomCrop((h, w)), ToTensor, Normalize(ImageNet),
 * RandomErasing(erase_p, sl 0.02, sh 0.4, r1 0.3, filled with the mean values).
 * The test transform: Resize + ToTensor + Normalize. */
typedef struct {
  int height, width;
  slr_resample interp;
  double flip_p;
  int pad;
  double erase_p, erase_sl, erase_sh, erase_r1;
} slr_transform;

extern const float slr_imagenet_mean[3];
extern const float slr_imagenet_std[3];

/* Fill from the data configuration. Local. */
int slr_transform_from_config(slr_transform *t, const slr_data_cfg *cfg);
/* Augment one resized (height x width) image into out (3, H, W) float with
 * the random draws of rng (train) or none (train = 0). Local. */
void slr_transform_apply(const slr_transform *t, const slr_image *resized, int train, slr_rng *rng,
                         float *out);
/* The same with the draws given: flip (0/1), crop offset (top, left) into
 * the padded image, and an erased box (erase_h = 0 for none) at (erase_y,
 * erase_x) of size erase_h x erase_w. Local. */
void slr_transform_apply_fixed(const slr_transform *t, const slr_image *resized, int flip, int top,
                               int left, int erase_y, int erase_x, int erase_h, int erase_w,
                               float *out);
/* The random stream of one sample of a batch: keyed by (seed, epoch, step,
 * position in the global batch). Local. */
void slr_sample_rng(slr_rng *rng, uint64_t seed, int64_t epoch, int64_t step, int64_t pos);

/* ---- batch filling ---------------------------------------------------------------- */

/* Fills float batches of one split. Holds the optional cache of decoded,
 * resized uint8 images (one slot per image of the split, filled on first use;
 * thread-safe) and the count of corrupt files skipped. */
typedef struct {
  const slr_split *split;
  slr_transform tf;
  int skip_corrupt;
  int cache_on;
  uint8_t **cache; /* (n) resized HWC images or NULL */
  uint8_t *bad;    /* (n) 1 = corrupt, already warned */
  pthread_mutex_t lock;
  int64_t corrupt; /* files found corrupt so far */
  int64_t cache_bytes;
} slr_batcher;

/* Local. */
int slr_batcher_init(slr_batcher *b, const slr_split *split, const slr_transform *tf, int cache,
                     int skip_corrupt);
/* Local. */
void slr_batcher_free(slr_batcher *b);
/* out (n, 3, H, W) for the samples idx[0..n-1]; sample i is at position
 * pos0 + i of the global batch (the key of its random draws together with
 * seed, epoch and step). train = 0 applies the test transform. An unreadable
 * image is SLR_ERR_INPUT naming the file, or with skip_corrupt a warning
 * (once per file), a sample equal to the mean (zeros), and the count
 * increased. Safe to call from several threads. Local: agree on the result
 * (slr_agree) before the next collective. */
int slr_batcher_fill(slr_batcher *b, const int64_t *idx, int64_t n, int train, uint64_t seed,
                     int64_t epoch, int64_t step, int64_t pos0, float *out);
/* Log the count of skipped corrupt files (summed over comm). Collective on
 * comm. */
int slr_batcher_report(slr_batcher *b, MPI_Comm comm);

/* ---- samplers ------------------------------------------------------------------- */

/* The identity sampler (CC's RandomMultipleGallerySampler, made stateless):
 * a batch is P identities x K images. The identities of epoch e are the
 * concatenation of random permutations of all pids (one per pass, keyed by
 * (seed, epoch, pass)), step s taking the next P of them. For each identity,
 * an anchor image is drawn; its K-1 companions are drawn from the
 * identity's images of other cameras (without replacement when there are at
 * least K of them, with replacement otherwise, as CC); with no other camera, from its
 * other images; with a single image, that image repeated. The batch is a
 * function of (seed, epoch, step) only. */
typedef struct {
  int64_t n;          /* samples of the split */
  int32_t num_pids;   /* identities with at least one image (pid >= 0) */
  int64_t *pid_start; /* (num_pids + 1) offsets into members */
  int64_t *members;   /* sample indices grouped by pid, ascending */
  int32_t *cams;      /* (n) camid of each sample */
  int32_t *pid_ids;   /* (num_pids) the pid value of each group */
  int P, K;
} slr_id_sampler;

/* pids < 0 are left out (unclustered outliers). Local. */
int slr_id_sampler_init(slr_id_sampler *s, const int32_t *pids, const int32_t *camids, int64_t n,
                        int P, int K);
/* Local. */
void slr_id_sampler_free(slr_id_sampler *s);
/* The global batch of (seed, epoch, step): out (P * K) sample indices, the
 * K images of one identity next to each other. Local (the same on every
 * rank). */
void slr_id_sampler_batch(const slr_id_sampler *s, uint64_t seed, int64_t epoch, int64_t step,
                          int64_t *out);
/* Global batches, and the images of a split for feature extraction, are
 * sharded over the ranks by slr_shard_rows (dist.h): contiguous, balanced,
 * in rank order. */

/* Decode every image of a split, each rank its sequential shard. A bad file
 * stops with SLR_ERR_INPUT naming it (agreed, so no rank hangs), or with
 * skip_corrupt a warning per file; *bad gets the total over ranks.
 * Collective on comm. */
int slr_split_check(const slr_split *s, int skip_corrupt, MPI_Comm comm, int64_t *bad);

/* ---- prefetching loader --------------------------------------------------------- */

/* Worker threads decode and augment the next batches while the caller
 * trains on the current one. The batch of (epoch, step) is made from the
 * local slice of the sampler's global batch; at most `depth` batches are
 * held (bounded memory). */
typedef struct slr_loader slr_loader;

/* Train loader over the identity sampler. Local. */
int slr_loader_create(slr_loader **out, slr_batcher *b, const slr_id_sampler *s, uint64_t seed,
                      int rank, int size, int workers, int depth);
/* Extraction loader: this rank's images [first, first + count) of the
 * batcher's split (slr_shard_rows) in batches of `batch` in order, with the
 * test transform; batch i is requested as (epoch 0, step i) with
 * steps_per_epoch = slr_loader_steps(l). Local. */
int slr_loader_create_seq(slr_loader **out, slr_batcher *b, int64_t first, int64_t count,
                          int64_t batch, int workers, int depth);
/* Batches per epoch of an extraction loader (0 when count is 0). Local. */
int64_t slr_loader_steps(const slr_loader *l);
/* Hand out the batch of (epoch, step): the local slice (count samples,
 * (count, 3, H, W) floats and the sample indices; count may be 0). The
 * buffers stay valid until the next call. Requests in order (step + 1, ...,
 * then step 0 of the next epoch) get the prefetched batches; any other
 * request restarts the prefetch there (resume). An image error is returned
 * with its message. Local. */
int slr_loader_next(slr_loader *l, int64_t epoch, int64_t step, int64_t steps_per_epoch,
                    const float **x, const int64_t **idx, int64_t *count);
/* Stops and joins the threads. Local. */
void slr_loader_free(slr_loader *l);

/* ---- synthetic domains ------------------------------------------------------------ */

typedef enum { SLR_STYLE_SYNTHETIC = 0, SLR_STYLE_REALISTIC = 1 } slr_synth_style;

typedef struct {
  int ids;     /* identities */
  int cams;    /* cameras (2..6, the Market naming) */
  int per_cam; /* images per identity per camera */
  int height, width;
  uint64_t seed;
  double difficulty; /* 0..1: look-alikes, occlusion, blur, jitter */
  slr_synth_style style;
  double train_frac; /* share of identities used for training (rest: query/gallery) */
  double gain;       /* multiplies every camera's brightness (1: as the style draws it) */
  double cast;       /* added to the amplitude of the cameras' colour casts (0: none added) */
} slr_synth_opts;

/* The defaults of `slr synth`. Local. */
void slr_synth_defaults(slr_synth_opts *o);
/* Render image `shot` (0..per_cam-1) of identity `id` (0-based) seen by
 * camera `cam` (0-based) into im (allocated). The bytes depend only on the
 * options and (id, cam, shot). Local. */
int slr_synth_render(const slr_synth_opts *o, int id, int cam, int shot, slr_image *im);
/* Write the domain in Market-1501 layout under dir: the first
 * round(ids * train_frac) identities to bounding_box_train/, the others
 * split into query/ (shot 0 of two cameras per identity) and
 * bounding_box_test/ (the rest). Written to DIR.partial, renamed when all
 * ranks are done; an existing dir is SLR_ERR_USAGE. Ranks share the
 * identities; the files are the same whatever the rank count.
 * Collective on comm. */
int slr_synth_write(const slr_synth_opts *o, const char *dir, MPI_Comm comm);
/* A grid PNG, one row per identity (first `rows` ids) across the cameras. Local. */
int slr_synth_preview(const slr_synth_opts *o, int rows, const char *path);

#ifdef __cplusplus
}
#endif
#endif
