/* Training-mode BatchNorm2d (optionally followed by ReLU) over channels_last float32 tensors.
 *
 * A channels_last (N, C, H, W) tensor is a row-major (rows = N*H*W, C) matrix. With only 8-32
 * channels a per-row loop is too short to vectorise, so each sweep walks "spans" of whole rows
 * (about SPAN_TARGET floats) and keeps one accumulator per position in the span; positions are
 * folded into channels at the end (position j belongs to channel j % C). Per-channel constants
 * are tiled to one span for the same reason.
 *
 * Forward is two sweeps (sums of x and x^2; the affine output, with the ReLU applied in place).
 * Backward is two sweeps over g and x (sums of g and g*x; the input gradient); under ReLU the mask
 * y > 0 is recomputed from x with the forward's exact float expression instead of being read.
 *
 * Comparisons are written `v <= 0 ? 0 : v`, so a NaN passes through as torch's ReLU passes it
 * (the trainer's NaN check must still see it).
 *
 * Rows are split into one contiguous block per thread, spans are summed in float and flushed into
 * double every FLUSH_SPANS spans, and the per-thread sums are added in thread order, so a result
 * depends only on the thread count, never on scheduling: runs stay reproducible. -std=c11 turns
 * off FMA contraction, so the AVX2 and the baseline clones compute bit-identical results.
 * Built and loaded by nas/batchnorm.py; see there for the maths and the measured speed-up.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SPAN_TARGET 256 /* floats per span, rounded down to whole rows */
#define FLUSH_SPANS 16  /* float partial sums of at most 16 values before going to double */

#if defined(__x86_64__) && defined(__GNUC__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

static int64_t span_rows(int64_t channels) {
    int64_t k = SPAN_TARGET / channels;
    return k > 0 ? k : 1;
}

/* The forward output before the ReLU; the backward recomputes it to get the ReLU mask. */
static inline float affine(float x, float scale, float shift) { return x * scale + shift; }

/* For rows [start, end): d1 += sum a and d2 += sum a*b by span position; where mscale is given,
 * a counts only where affine(b, mscale, mshift) > 0 (the ReLU mask). */
HOT static void sums_block(const float *a, const float *b, const float *mscale, const float *mshift, int64_t start,
                           int64_t end, int64_t channels, double *d1, double *d2, float *f1, float *f2) {
    const int64_t k = span_rows(channels), span = k * channels;
    int64_t r = start, pending = 0;
    memset(f1, 0, span * sizeof(float));
    memset(f2, 0, span * sizeof(float));
    for (; r + k <= end; r += k) {
        const float *as = a + r * channels, *bs = b + r * channels;
        if (mscale == NULL) {
            for (int64_t j = 0; j < span; j++) {
                f1[j] += as[j];
                f2[j] += as[j] * bs[j];
            }
        } else {
            for (int64_t j = 0; j < span; j++) {
                float am = affine(bs[j], mscale[j], mshift[j]) <= 0.0f ? 0.0f : as[j];
                f1[j] += am;
                f2[j] += am * bs[j];
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
            float am = mscale != NULL && affine(b[i], mscale[c], mshift[c]) <= 0.0f ? 0.0f : a[i];
            d1[c] += am;
            d2[c] += (double)am * b[i];
        }
}

/* out1[c] = sum_r a[r, c] and out2[c] = sum_r a[r, c] * b[r, c], masked as in sums_block.
 * Returns non-zero when the scratch memory cannot be allocated. */
static int sums(const float *a, const float *b, const float *mscale, const float *mshift, int64_t rows,
                int64_t channels, double *out1, double *out2, int threads) {
    const int64_t span = span_rows(channels) * channels;
    /* per thread: d1, d2 (double, span each) then f1, f2 (float, span each) */
    const size_t stride = 2 * span * sizeof(double) + 2 * span * sizeof(float);
    char *scratch = calloc((size_t)threads, stride);
    if (scratch == NULL) return 1;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int t = 0; t < threads; t++) {
        double *d1 = (double *)(scratch + t * stride), *d2 = d1 + span;
        float *f1 = (float *)(d2 + span), *f2 = f1 + span;
        sums_block(a, b, mscale, mshift, rows * t / threads, rows * (t + 1) / threads, channels, d1, d2, f1, f2);
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

/* Forward output for rows [start, end): out = affine(x, scale, shift), then max(0, .) under relu. */
HOT static void forward_block(const float *x, int64_t start, int64_t end, int64_t channels, const float *scale,
                              const float *shift, int relu, float *out) {
    const int64_t k = span_rows(channels), span = k * channels;
    int64_t r = start;
    for (; r + k <= end; r += k) {
        const float *xs = x + r * channels;
        float *o = out + r * channels;
        for (int64_t j = 0; j < span; j++) o[j] = affine(xs[j], scale[j], shift[j]);
        if (relu)
            for (int64_t j = 0; j < span; j++) o[j] = o[j] <= 0.0f ? 0.0f : o[j];
    }
    for (; r < end; r++)
        for (int64_t c = 0; c < channels; c++) {
            int64_t i = r * channels + c;
            float v = affine(x[i], scale[c], shift[c]);
            out[i] = relu && v <= 0.0f ? 0.0f : v;
        }
}

/* Input gradient for rows [start, end): dx = gm * ka + x * kb + kc, gm = g masked as in sums_block. */
HOT static void backward_block(const float *g, const float *x, const float *mscale, const float *mshift,
                               int64_t start, int64_t end, int64_t channels, const float *ka, const float *kb,
                               const float *kc, float *dx) {
    const int64_t k = span_rows(channels), span = k * channels;
    int64_t r = start;
    for (; r + k <= end; r += k) {
        const float *gs = g + r * channels, *xs = x + r * channels;
        float *o = dx + r * channels;
        if (mscale == NULL) {
            for (int64_t j = 0; j < span; j++) o[j] = gs[j] * ka[j] + xs[j] * kb[j] + kc[j];
        } else {
            for (int64_t j = 0; j < span; j++) {
                float gm = affine(xs[j], mscale[j], mshift[j]) <= 0.0f ? 0.0f : gs[j];
                o[j] = gm * ka[j] + xs[j] * kb[j] + kc[j];
            }
        }
    }
    for (; r < end; r++)
        for (int64_t c = 0; c < channels; c++) {
            int64_t i = r * channels + c;
            float gm = mscale != NULL && affine(x[i], mscale[c], mshift[c]) <= 0.0f ? 0.0f : g[i];
            dx[i] = gm * ka[c] + x[i] * kb[c] + kc[c];
        }
}

/* Per-channel vector v tiled to one span, as float. */
static void tile(const double *v, int64_t channels, float *out) {
    const int64_t span = span_rows(channels) * channels;
    for (int64_t j = 0; j < span; j++) out[j] = (float)v[j % channels];
}

/* y = (x - mean) / sqrt(var + eps) * weight + bias with the batch's mean and biased variance,
 * then max(0, y) when relu is set. weight and bias may be NULL (affine=False). Writes y and the
 * per-channel block stats = [mean, var, scale = weight / sqrt(var + eps), shift = bias - mean *
 * scale] (4 x channels doubles, for the backward). When running_mean is not NULL, also updates
 * running_mean and running_var (unbiased) with `momentum`, as torch does.
 * Returns non-zero when scratch memory cannot be allocated. */
int nas_bn_forward(const float *x, int64_t rows, int64_t channels, const float *weight, const float *bias,
                   double eps, int relu, float *y, double *stats, float *running_mean, float *running_var,
                   double momentum, int threads) {
    const int64_t span = span_rows(channels) * channels;
    double *mean = stats, *var = stats + channels, *scale = var + channels, *shift = scale + channels;
    float *k = malloc(2 * span * sizeof(float));
    if (k == NULL || sums(x, x, NULL, NULL, rows, channels, mean, var, threads)) {
        free(k);
        return 1;
    }
    for (int64_t c = 0; c < channels; c++) {
        mean[c] /= rows;
        double v = var[c] / rows - mean[c] * mean[c];
        var[c] = v > 0.0 ? v : 0.0; /* rounding can make a constant channel's variance negative */
        scale[c] = (weight ? weight[c] : 1.0) / sqrt(var[c] + eps);
        shift[c] = (bias ? bias[c] : 0.0) - mean[c] * scale[c];
        if (running_mean != NULL) {
            running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean[c]);
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * var[c] * rows / (rows - 1));
        }
    }
    tile(scale, channels, k);
    tile(shift, channels, k + span);
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int t = 0; t < threads; t++)
        forward_block(x, rows * t / threads, rows * (t + 1) / threads, channels, k, k + span, relu, y);
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
    float *k = malloc(5 * span * sizeof(float));
    if (sum_g == NULL || k == NULL) {
        free(sum_g), free(k);
        return 1;
    }
    double *sum_gx = sum_g + channels, *ka = sum_gx + channels, *kb = ka + channels, *kc = kb + channels;
    float *mscale = relu ? k + 3 * span : NULL, *mshift = relu ? k + 4 * span : NULL;
    tile(scale, channels, k + 3 * span); /* the forward's float constants, for the ReLU mask */
    tile(shift, channels, k + 4 * span);
    if (sums(g, x, mscale, mshift, rows, channels, sum_g, sum_gx, threads)) {
        free(sum_g), free(k);
        return 1;
    }
    for (int64_t c = 0; c < channels; c++) {
        double invstd = 1.0 / sqrt(var[c] + eps);
        double centred = sum_gx[c] - mean[c] * sum_g[c]; /* sum gm * (x - mean) */
        if (dweight != NULL) dweight[c] = (float)(centred * invstd);
        if (dbias != NULL) dbias[c] = (float)sum_g[c];
        ka[c] = scale[c];
        kb[c] = -scale[c] * invstd * invstd * centred / rows;
        kc[c] = -scale[c] * sum_g[c] / rows - kb[c] * mean[c];
    }
    tile(ka, channels, k);
    tile(kb, channels, k + span);
    tile(kc, channels, k + 2 * span);
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int t = 0; t < threads; t++)
        backward_block(g, x, mscale, mshift, rows * t / threads, rows * (t + 1) / threads, channels, k, k + span,
                       k + 2 * span, dx);
    free(sum_g), free(k);
    return 0;
}
