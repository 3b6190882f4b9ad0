/* Training-mode BatchNorm2d (optionally followed by ReLU) over channels_last float32 tensors.
 *
 * A channels_last (N, C, H, W) tensor is a row-major (rows = N*H*W, C) matrix. With only 8-32
 * channels a per-row loop is too short to vectorise, so each sweep walks "spans" of whole rows
 * (about SPAN_TARGET floats) and keeps one accumulator per position in the span; positions are
 * folded into channels at the end (position j belongs to channel j % C). Per-channel constants
 * are tiled to one span for the same reason.
 *
 * Forward is two sweeps (sums of d and d^2 with d = x - k, k = the channel's value in the first
 * row; the affine output, with the ReLU applied in place). Backward is two sweeps over g and x
 * (sums of g and g*(x - centre); the input gradient); under ReLU the mask y > 0 is recomputed from
 * x with the forward's exact float expression instead of being read.
 *
 * Precision: every sweep works on x minus a per-channel value close to the mean, never on x
 * itself. The shift k makes var = S2/M - (S1/M)^2 cancel only as much as (mean - k)/std, a sample's
 * distance from the mean in standard deviations, instead of mean/std (the plain E[x^2] - mean^2,
 * which in float partial sums lost every digit of the variance once |mean|/std ~ 1000). For the same
 * reason the output and the input gradient are written as affine maps of x - centre, with centre =
 * (float)mean: for x near the mean that subtraction is exact, where x * scale + (bias - mean * scale)
 * would cancel two large terms.
 *
 * Comparisons are written `v <= 0 ? 0 : v`, so a NaN passes through as torch's ReLU passes it
 * (the trainer's NaN check must still see it).
 *
 * Rows are split into one contiguous block per thread, spans are summed in float and flushed into
 * double every FLUSH_SPANS spans, and the per-thread sums are added in thread order, so a result
 * depends only on the thread count, never on scheduling: runs stay reproducible. The blocks are
 * the same without OpenMP (a compiler lacking it, such as macOS clang: nas/kernels.py then builds
 * without -fopenmp and the pragmas below vanish), so that single-threaded build computes
 * bit-identical results too, only slower. -ffp-contract=off (nas/kernels.py) forbids FMA
 * contraction, so the AVX2 and the baseline clones, and any compiler, round alike.
 * Built and loaded by nas/batchnorm.py; see there for the maths and the measured speed-up.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SPAN_TARGET 256 /* floats per span, rounded down to whole rows */
#define FLUSH_SPANS 16  /* float partial sums of at most 16 values before going to double */

#if defined(__x86_64__) && defined(__GNUC__) && defined(__ELF__) /* target_clones needs ELF ifuncs */
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

/* One block of rows per thread; without OpenMP the same blocks run one after the other. */
#ifdef _OPENMP
#define PARALLEL_BLOCKS _Pragma("omp parallel for num_threads(threads) schedule(static, 1)")
#else
#define PARALLEL_BLOCKS
#endif

static int64_t span_rows(int64_t channels) {
    int64_t k = SPAN_TARGET / channels;
    return k > 0 ? k : 1;
}

/* The forward output before the ReLU, of d = x - centre; the backward recomputes it for the ReLU mask. */
static inline float affine(float d, float scale, float shift) { return d * scale + shift; }

/* For rows [start, end), by span position, with d = b - centre:
 *   a == NULL: d1 += sum d, d2 += sum d * d (the forward's moments);
 *   otherwise: d1 += sum am, d2 += sum am * d, am = a where affine(d, mscale, mshift) > 0 when
 *   mscale is given (the ReLU mask), else a. */
HOT static void sums_block(const float *a, const float *b, const float *centre, const float *mscale,
                           const float *mshift, int64_t start, int64_t end, int64_t channels, double *restrict d1,
                           double *restrict d2, float *restrict f1, float *restrict f2) {
    const int64_t k = span_rows(channels), span = k * channels;
    int64_t r = start, pending = 0;
    memset(f1, 0, span * sizeof(float));
    memset(f2, 0, span * sizeof(float));
    for (; r + k <= end; r += k) {
        const float *bs = b + r * channels;
        if (a == NULL) {
            for (int64_t j = 0; j < span; j++) {
                float d = bs[j] - centre[j];
                f1[j] += d;
                f2[j] += d * d;
            }
        } else if (mscale == NULL) {
            const float *as = a + r * channels;
            for (int64_t j = 0; j < span; j++) {
                f1[j] += as[j];
                f2[j] += as[j] * (bs[j] - centre[j]);
            }
        } else {
            const float *as = a + r * channels;
            for (int64_t j = 0; j < span; j++) {
                float d = bs[j] - centre[j], aj = as[j]; /* an unconditional load: the loop vectorises */
                float am = affine(d, mscale[j], mshift[j]) <= 0.0f ? 0.0f : aj;
                f1[j] += am;
                f2[j] += am * d;
            }
        }
        if (++pending == FLUSH_SPANS) {
            for (int64_t j = 0; j < span; j++) {
                d1[j] += f1[j];
                d2[j] += f2[j];
                f1[j] = f2[j] = 0.0f;
            }
            pending = 0;
        }
    }
    for (int64_t j = 0; j < span; j++) {
        d1[j] += f1[j];
        d2[j] += f2[j];
    }
    for (; r < end; r++) /* the last rows, which do not fill a span */
        for (int64_t c = 0; c < channels; c++) {
            int64_t i = r * channels + c;
            float d = b[i] - centre[c];
            float am = a == NULL ? d : (mscale != NULL && affine(d, mscale[c], mshift[c]) <= 0.0f ? 0.0f : a[i]);
            d1[c] += am;
            d2[c] += (double)am * d;
        }
}

/* out1[c] and out2[c]: the sums of sums_block over all rows, per channel (centre, mscale and mshift
 * tiled to one span). Returns non-zero when the scratch memory cannot be allocated. */
static int sums(const float *a, const float *b, const float *centre, const float *mscale, const float *mshift,
                int64_t rows, int64_t channels, double *out1, double *out2, int threads) {
    const int64_t span = span_rows(channels) * channels;
    /* per thread: d1, d2 (double, span each) then f1, f2 (float, span each) */
    const size_t stride = 2 * span * sizeof(double) + 2 * span * sizeof(float);
    char *scratch = calloc((size_t)threads, stride);
    if (scratch == NULL) return 1;
    PARALLEL_BLOCKS
    for (int t = 0; t < threads; t++) {
        double *d1 = (double *)(scratch + t * stride), *d2 = d1 + span;
        float *f1 = (float *)(d2 + span), *f2 = f1 + span;
        sums_block(a, b, centre, mscale, mshift, rows * t / threads, rows * (t + 1) / threads, channels, d1, d2, f1,
                   f2);
    }
    memset(out1, 0, channels * sizeof(double));
    memset(out2, 0, channels * sizeof(double));
    for (int t = 0; t < threads; t++) { /* in thread order, then span position order: deterministic */
        const double *d1 = (const double *)(scratch + t * stride), *d2 = d1 + span;
        for (int64_t j = 0; j < span; j++) {
            out1[j % channels] += d1[j];
            out2[j % channels] += d2[j];
        }
    }
    free(scratch);
    return 0;
}

/* Forward output for rows [start, end): out = affine(x - centre, scale, shift), then max(0, .) under relu. */
HOT static void forward_block(const float *x, int64_t start, int64_t end, int64_t channels, const float *centre,
                              const float *scale, const float *shift, int relu, float *restrict out) {
    const int64_t k = span_rows(channels), span = k * channels;
    int64_t r = start;
    for (; r + k <= end; r += k) {
        const float *xs = x + r * channels;
        float *o = out + r * channels;
        for (int64_t j = 0; j < span; j++) o[j] = affine(xs[j] - centre[j], scale[j], shift[j]);
        if (relu)
            for (int64_t j = 0; j < span; j++) o[j] = o[j] <= 0.0f ? 0.0f : o[j];
    }
    for (; r < end; r++)
        for (int64_t c = 0; c < channels; c++) {
            int64_t i = r * channels + c;
            float v = affine(x[i] - centre[c], scale[c], shift[c]);
            out[i] = relu && v <= 0.0f ? 0.0f : v;
        }
}

/* Input gradient for rows [start, end): dx = gm * ka + (x - centre) * kb + kc, gm = g masked as in sums_block. */
HOT static void backward_block(const float *g, const float *x, const float *centre, const float *mscale,
                               const float *mshift, int64_t start, int64_t end, int64_t channels, const float *ka,
                               const float *kb, const float *kc, float *restrict dx) {
    const int64_t k = span_rows(channels), span = k * channels;
    int64_t r = start;
    for (; r + k <= end; r += k) {
        const float *gs = g + r * channels, *xs = x + r * channels;
        float *o = dx + r * channels;
        if (mscale == NULL) {
            for (int64_t j = 0; j < span; j++) o[j] = gs[j] * ka[j] + (xs[j] - centre[j]) * kb[j] + kc[j];
        } else {
            for (int64_t j = 0; j < span; j++) {
                float d = xs[j] - centre[j], gj = gs[j];
                float gm = affine(d, mscale[j], mshift[j]) <= 0.0f ? 0.0f : gj;
                o[j] = gm * ka[j] + d * kb[j] + kc[j];
            }
        }
    }
    for (; r < end; r++)
        for (int64_t c = 0; c < channels; c++) {
            int64_t i = r * channels + c;
            float d = x[i] - centre[c];
            float gm = mscale != NULL && affine(d, mscale[c], mshift[c]) <= 0.0f ? 0.0f : g[i];
            dx[i] = gm * ka[c] + d * kb[c] + kc[c];
        }
}

/* Per-channel vector v tiled to one span, as float. */
static void tile(const double *v, int64_t channels, float *out) {
    const int64_t span = span_rows(channels) * channels;
    for (int64_t j = 0; j < span; j++) out[j] = (float)v[j % channels];
}

/* y = (x - mean) / sqrt(var + eps) * weight + bias with the batch's mean and biased variance,
 * then max(0, y) when relu is set. weight and bias may be NULL (affine=False). Writes y and the
 * per-channel block stats = [mean, var, scale = weight / sqrt(var + eps), shift = bias - (mean -
 * centre) * scale] with centre = (float)mean, so that y = (x - centre) * scale + shift (4 x channels
 * doubles, for the backward). When running_mean is not NULL, also updates running_mean and
 * running_var (unbiased) with `momentum`, as torch does. rows must be at least 1.
 * Returns non-zero when scratch memory cannot be allocated. */
int nas_bn_forward(const float *x, int64_t rows, int64_t channels, const float *weight, const float *bias,
                   double eps, int relu, float *y, double *stats, float *running_mean, float *running_var,
                   double momentum, int threads) {
    const int64_t span = span_rows(channels) * channels;
    double *mean = stats, *var = stats + channels, *scale = var + channels, *shift = scale + channels;
    float *k = malloc(3 * span * sizeof(float));
    if (k == NULL) return 1;
    for (int64_t j = 0; j < span; j++) k[j] = x[j % channels]; /* the shift: each channel's first value */
    if (sums(NULL, x, k, NULL, NULL, rows, channels, mean, var, threads)) {
        free(k);
        return 1;
    }
    for (int64_t c = 0; c < channels; c++) {
        double offset = mean[c] / rows; /* mean - shift */
        mean[c] = x[c] + offset;
        double v = var[c] / rows - offset * offset;
        var[c] = v > 0.0 ? v : 0.0; /* rounding can make a constant channel's variance negative */
        scale[c] = (weight ? weight[c] : 1.0) / sqrt(var[c] + eps);
        shift[c] = (bias ? bias[c] : 0.0) - (mean[c] - (float)mean[c]) * scale[c];
        if (running_mean != NULL) {
            running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean[c]);
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * var[c] * rows / (rows - 1));
        }
    }
    tile(mean, channels, k); /* the centre, (float)mean */
    tile(scale, channels, k + span);
    tile(shift, channels, k + 2 * span);
    PARALLEL_BLOCKS
    for (int t = 0; t < threads; t++)
        forward_block(x, rows * t / threads, rows * (t + 1) / threads, channels, k, k + span, k + 2 * span, relu, y);
    free(k);
    return 0;
}

/* Backward of nas_bn_forward (same x, relu and stats block) for the output gradient g. Writes dx
 * and, unless NULL, dweight = sum gm * (x - mean) / sqrt(var + eps) and dbias = sum gm, where gm
 * is g under the ReLU mask. Returns non-zero when scratch memory cannot be allocated. */
int nas_bn_backward(const float *g, const float *x, int64_t rows, int64_t channels, int relu, double eps,
                    const double *stats, float *dx, float *dweight, float *dbias, int threads) {
    const int64_t span = span_rows(channels) * channels;
    const double *mean = stats, *var = stats + channels, *scale = var + channels, *shift = scale + channels;
    double *sum_g = malloc(5 * channels * sizeof(double));
    float *k = malloc(6 * span * sizeof(float));
    if (sum_g == NULL || k == NULL) {
        free(sum_g), free(k);
        return 1;
    }
    double *sum_gd = sum_g + channels, *ka = sum_gd + channels, *kb = ka + channels, *kc = kb + channels;
    float *centre = k + 3 * span, *mscale = relu ? k + 4 * span : NULL, *mshift = relu ? k + 5 * span : NULL;
    tile(mean, channels, centre); /* the forward's float constants, for x - centre and the ReLU mask */
    tile(scale, channels, k + 4 * span);
    tile(shift, channels, k + 5 * span);
    if (sums(g, x, centre, mscale, mshift, rows, channels, sum_g, sum_gd, threads)) {
        free(sum_g), free(k);
        return 1;
    }
    for (int64_t c = 0; c < channels; c++) {
        double invstd = 1.0 / sqrt(var[c] + eps);
        double off = (float)mean[c] - mean[c]; /* centre - mean */
        double centred = sum_gd[c] + off * sum_g[c]; /* sum gm * (x - mean) */
        if (dweight != NULL) dweight[c] = (float)(centred * invstd);
        if (dbias != NULL) dbias[c] = (float)sum_g[c];
        ka[c] = scale[c];
        kb[c] = -scale[c] * invstd * invstd * centred / rows;
        kc[c] = -scale[c] * sum_g[c] / rows + kb[c] * off;
    }
    tile(ka, channels, k);
    tile(kb, channels, k + span);
    tile(kc, channels, k + 2 * span);
    PARALLEL_BLOCKS
    for (int t = 0; t < threads; t++)
        backward_block(g, x, centre, mscale, mshift, rows * t / threads, rows * (t + 1) / threads, channels, k,
                       k + span, k + 2 * span, dx);
    free(sum_g), free(k);
    return 0;
}
