/* What the native loops share: vectorizable elementwise functions, the packed matrix-vector kernels
 * and the sampler of seqgen.core.sampling.sample_logits. */
#ifndef SEQGEN_KERNELS_H
#define SEQGEN_KERNELS_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- elementwise functions
 * exp by range reduction to r in [-ln2/2, ln2/2] and its Taylor series to degree 7 (relative error
 * below 2e-9 there, under float32's rounding); written branch-free so the compiler vectorizes it. */
/* min and max written as selects: fminf/fmaxf are library calls unless NaNs are ruled out */
static inline float min_f(float a, float b) { return a < b ? a : b; }
static inline float max_f(float a, float b) { return a > b ? a : b; }

static inline float exp_f(float x) {
    x = min_f(max_f(x, -87.0f), 88.0f);
    float k = rintf(x * 1.4426950408889634f);
    float r = x - k * 0.693145751953125f - k * 1.428606765330187e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &e, 4);
    return p * scale;
}

static inline float sigmoid_f(float x) { return 1.0f / (1.0f + exp_f(-x)); }

static inline float tanh_f(float x) {
    float a = min_f(fabsf(x), 9.0f);
    float e = exp_f(-2.0f * a);
    float t = (1.0f - e) / (1.0f + e);
    return copysignf(t, x);
}

/* ---------------------------------------------------------------- matrix-vector products
 * y[o] += sum_i x[i] W[i, o] for a matrix packed by seqgen.native.wavenet.pack (outputs padded to a
 * multiple of TILE): tile by tile, each tile's rows contiguous, so the weights stream in order and a
 * tile's outputs stay in registers.
 *   float32:  [tiles, in, TILE]
 *   bfloat16: [tiles, in, TILE/2] uint32, each holding outputs j (low half) and j + TILE/2 (high half):
 *             widened by one shift and one mask, no shuffles. */
#define TILE 64
#define HALF (TILE / 2)

/* Each kernel keeps two sets of accumulators, for even and odd rows, so that two independent chains of
 * fused multiply-adds are in flight (one chain of TILE/16 vectors waits on the FMA latency). */

static void mv_f32(const float *restrict w, int in, int out, const float *restrict x, float *restrict y) {
    for (int o0 = 0; o0 < out; o0 += TILE) {
        float a0[TILE], a1[TILE];
        for (int o = 0; o < TILE; o++) { a0[o] = y[o0 + o]; a1[o] = 0.0f; }
        const float *restrict tile = w + (long)o0 * in;
        int i = 0;
        for (; i + 1 < in; i += 2) {
            const float x0 = x[i], x1 = x[i + 1];
            const float *restrict r0 = tile + (long)i * TILE;
            const float *restrict r1 = r0 + TILE;
            for (int o = 0; o < TILE; o++) { a0[o] += x0 * r0[o]; a1[o] += x1 * r1[o]; }
        }
        if (i < in) {
            const float *restrict r0 = tile + (long)i * TILE;
            for (int o = 0; o < TILE; o++) a0[o] += x[i] * r0[o];
        }
        for (int o = 0; o < TILE; o++) y[o0 + o] = a0[o] + a1[o];
    }
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void mv_bf16(const uint32_t *restrict w, int in, int out, const float *restrict x, float *restrict y) {
    for (int o0 = 0; o0 < out; o0 += TILE) {
        float lo0[HALF], hi0[HALF], lo1[HALF], hi1[HALF];
        for (int o = 0; o < HALF; o++) {
            lo0[o] = y[o0 + o]; hi0[o] = y[o0 + HALF + o]; lo1[o] = 0.0f; hi1[o] = 0.0f;
        }
        const uint32_t *restrict tile = w + (long)o0 / 2 * in;
        int i = 0;
        for (; i + 1 < in; i += 2) {
            const float x0 = x[i], x1 = x[i + 1];
            const uint32_t *restrict r0 = tile + (long)i * HALF;
            const uint32_t *restrict r1 = r0 + HALF;
            for (int o = 0; o < HALF; o++) {
                lo0[o] += x0 * bits_f32(r0[o] << 16);
                hi0[o] += x0 * bits_f32(r0[o] & 0xFFFF0000u);
                lo1[o] += x1 * bits_f32(r1[o] << 16);
                hi1[o] += x1 * bits_f32(r1[o] & 0xFFFF0000u);
            }
        }
        if (i < in) {
            const uint32_t *restrict r0 = tile + (long)i * HALF;
            for (int o = 0; o < HALF; o++) {
                lo0[o] += x[i] * bits_f32(r0[o] << 16);
                hi0[o] += x[i] * bits_f32(r0[o] & 0xFFFF0000u);
            }
        }
        for (int o = 0; o < HALF; o++) { y[o0 + o] = lo0[o] + lo1[o]; y[o0 + HALF + o] = hi0[o] + hi1[o]; }
    }
}

/* int8: [tiles, in, TILE] with one float scale per output, applied once to the finished sum.
 * With AVX-512 each 16 weights are widened by one sign-extending load (vpmovsxbd from memory) and one
 * conversion: gcc vectorizes the plain loop with two widening steps and a lane extract between them, and
 * that shuffle work, not the bytes, bounded it (1.6x slower, measured on a Zen 5).  Both compute the same
 * fused multiply-adds in the same order, so they give the same bits. */
#if defined(__AVX512F__)
#include <immintrin.h>
static inline __m512 i8x16_f32(const int8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

static void mv_i8(const int8_t *restrict w, const float *restrict scale, int in, int out,
                  const float *restrict x, float *restrict y) {
    for (int o0 = 0; o0 < out; o0 += TILE) {
        __m512 a0[TILE / 16], a1[TILE / 16];
        for (int k = 0; k < TILE / 16; k++) { a0[k] = _mm512_setzero_ps(); a1[k] = _mm512_setzero_ps(); }
        const int8_t *restrict tile = w + (long)o0 * in;
        int i = 0;
        for (; i + 1 < in; i += 2) {
            const __m512 x0 = _mm512_set1_ps(x[i]), x1 = _mm512_set1_ps(x[i + 1]);
            const int8_t *restrict r0 = tile + (long)i * TILE;
            for (int k = 0; k < TILE / 16; k++) {
                a0[k] = _mm512_fmadd_ps(x0, i8x16_f32(r0 + 16 * k), a0[k]);
                a1[k] = _mm512_fmadd_ps(x1, i8x16_f32(r0 + TILE + 16 * k), a1[k]);
            }
        }
        if (i < in) {
            const __m512 x0 = _mm512_set1_ps(x[i]);
            const int8_t *restrict r0 = tile + (long)i * TILE;
            for (int k = 0; k < TILE / 16; k++) a0[k] = _mm512_fmadd_ps(x0, i8x16_f32(r0 + 16 * k), a0[k]);
        }
        for (int k = 0; k < TILE / 16; k++) {
            float *yk = y + o0 + 16 * k;
            _mm512_storeu_ps(yk, _mm512_fmadd_ps(_mm512_loadu_ps(scale + o0 + 16 * k),
                                                 _mm512_add_ps(a0[k], a1[k]), _mm512_loadu_ps(yk)));
        }
    }
}
#else
static void mv_i8(const int8_t *restrict w, const float *restrict scale, int in, int out,
                  const float *restrict x, float *restrict y) {
    for (int o0 = 0; o0 < out; o0 += TILE) {
        float a0[TILE], a1[TILE];
        for (int o = 0; o < TILE; o++) { a0[o] = 0.0f; a1[o] = 0.0f; }
        const int8_t *restrict tile = w + (long)o0 * in;
        int i = 0;
        for (; i + 1 < in; i += 2) {
            const float x0 = x[i], x1 = x[i + 1];
            const int8_t *restrict r0 = tile + (long)i * TILE;
            const int8_t *restrict r1 = r0 + TILE;
            for (int o = 0; o < TILE; o++) { a0[o] += x0 * (float)r0[o]; a1[o] += x1 * (float)r1[o]; }
        }
        if (i < in) {
            const int8_t *restrict r0 = tile + (long)i * TILE;
            for (int o = 0; o < TILE; o++) a0[o] += x[i] * (float)r0[o];
        }
        for (int o = 0; o < TILE; o++) y[o0 + o] += scale[o0 + o] * (a0[o] + a1[o]);
    }
}
#endif

static inline void mv(int wdtype, const void *w, const float *scale, int in, int out, const float *x,
                      float *y) {
    if (wdtype == 1) mv_bf16((const uint32_t *)w, in, out, x, y);
    else if (wdtype == 2) mv_i8((const int8_t *)w, scale, in, out, x, y);
    else mv_f32((const float *)w, in, out, x, y);
}

static inline int padded(int n) { return (n + TILE - 1) / TILE * TILE; }

/* Sums in LANES partial sums: a float reduction is only vectorized when written so (without
 * -ffast-math the compiler keeps one sequential chain, each add waiting on the last). */
#define LANES 16

static inline float sum_f(const float *restrict x, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[i + j];
    float s = 0.0f;
    for (; i < n; i++) s += x[i];
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

static inline float dot_f(const float *restrict a, const float *restrict b, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (; i < n; i++) s += a[i] * b[i];
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

static inline float max_of(const float *x, int n) {
    float acc[LANES];
    for (int j = 0; j < LANES; j++) acc[j] = -INFINITY;
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] = max_f(acc[j], x[i + j]);
    float m = -INFINITY;
    for (; i < n; i++) m = max_f(m, x[i]);
    for (int j = 0; j < LANES; j++) m = max_f(m, acc[j]);
    return m;
}

/* ---------------------------------------------------------------- the sampler
 * seqgen.core.sampling.sample_logits: the inverse CDF at u of softmax(logits / T) restricted to the top_k
 * largest (0: all; ties at the k-th kept) and to the nucleus of mass top_p (1: all; ties with its smallest
 * probability kept, the most probable class always kept); T <= 0 is the argmax.  ``work`` holds 2 V
 * floats. */
static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int sample_class(const float *logits, int V, float u, float temperature, int top_k, float top_p,
                        float *work) {
    if (temperature <= 0.0f) {
        int best = 0;
        for (int v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
        return best;
    }
    const float t = max_f(temperature, 1e-6f);
    float *p = work, *sorted = work + V;
    for (int v = 0; v < V; v++) p[v] = logits[v] / t;
    float kth = -INFINITY;
    if (top_k > 0 && top_k < V) {
        memcpy(sorted, p, (size_t)V * sizeof(float));
        qsort(sorted, (size_t)V, sizeof(float), cmp_float);
        kth = sorted[V - top_k];
    }
    float m;
    if (kth == -INFINITY) {
        m = max_of(p, V);
    } else {
        m = -INFINITY;
        for (int v = 0; v < V; v++) if (p[v] >= kth) m = max_f(m, p[v]);
    }
    for (int v = 0; v < V; v++) {
        const float d = p[v] - m;
        p[v] = p[v] >= kth ? (d < -87.0f ? 0.0f : exp_f(d)) : 0.0f;
    }
    if (top_p < 1.0f) {
        memcpy(sorted, p, (size_t)V * sizeof(float));
        qsort(sorted, (size_t)V, sizeof(float), cmp_float);
        float total = 0.0f, cum = 0.0f, threshold = INFINITY, biggest = sorted[V - 1];
        for (int v = 0; v < V; v++) total += sorted[v];
        for (int v = 0; v < V; v++) {
            cum += sorted[v];
            if (total - cum < top_p * total && sorted[v] < threshold) threshold = sorted[v];
        }
        threshold = min_f(threshold, biggest);
        for (int v = 0; v < V; v++) if (p[v] < threshold) p[v] = 0.0f;
    }
    /* as _inverse_cdf: the running sum, its last value the total, the index the count of cdf <= u total */
    float *cdf = sorted;
    float run = 0.0f;
    for (int v = 0; v < V; v++) { run += p[v]; cdf[v] = run; }
    const float target = u * run;
    int idx = 0, last_positive = 0;
    for (int v = 0; v < V; v++) idx += cdf[v] <= target;
    for (int v = V - 1; v > 0; v--) if (p[v] > 0.0f) { last_positive = v; break; }
    return idx < last_positive ? idx : last_positive;
}

/* ---------------------------------------------------------------- row helpers */
static inline void layer_norm(const float *x, const float *g, const float *b, int d, float *y) {
    const float mean = sum_f(x, d) / (float)d;
    float acc[LANES] = {0}, var = 0.0f;
    int i0 = 0;
    for (; i0 + LANES <= d; i0 += LANES)
        for (int j = 0; j < LANES; j++) { const float c = x[i0 + j] - mean; acc[j] += c * c; }
    for (; i0 < d; i0++) { const float c = x[i0] - mean; var += c * c; }
    for (int j = 0; j < LANES; j++) var += acc[j];
    var /= (float)d;
    const float inv = 1.0f / sqrtf(var + 1e-5f);
    for (int i = 0; i < d; i++) y[i] = (x[i] - mean) * inv * g[i] + b[i];
}

/* Four rows at once: each weight row of a tile is read and widened once and multiplied into the four
 * rows' accumulators (4 x TILE floats, in registers), so a batch reads the weights once, not per row. */
static inline void widen(int wdtype, const void *tile, int i, float *restrict wf) {
    if (wdtype == 1) {
        const uint32_t *restrict r = (const uint32_t *)tile + (long)i * HALF;
        for (int o = 0; o < HALF; o++) { wf[o] = bits_f32(r[o] << 16); wf[HALF + o] = bits_f32(r[o] & 0xFFFF0000u); }
    } else {
        const int8_t *restrict r = (const int8_t *)tile + (long)i * TILE;
#if defined(__AVX512F__)
        for (int k = 0; k < TILE / 16; k++) _mm512_storeu_ps(wf + 16 * k, i8x16_f32(r + 16 * k));
#else
        for (int o = 0; o < TILE; o++) wf[o] = (float)r[o];
#endif
    }
}

static void rows4(int wdtype, const void *tile, const float *scale, int in, const float *bias,
                  const float *x, int xs, float *y, int ys) {
    float a0[TILE], a1[TILE], a2[TILE], a3[TILE], wbuf[TILE];
    const int int8 = wdtype == 2;
    for (int o = 0; o < TILE; o++) {
        const float init = int8 ? 0.0f : bias[o];
        a0[o] = init; a1[o] = init; a2[o] = init; a3[o] = init;
    }
    const float *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs;
    for (int i = 0; i < in; i++) {
        const float *restrict wf;
        if (wdtype == 0) wf = (const float *)tile + (long)i * TILE;
        else { widen(wdtype, tile, i, wbuf); wf = wbuf; }
        const float v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i];
        for (int o = 0; o < TILE; o++) {
            const float w = wf[o];
            a0[o] += v0 * w; a1[o] += v1 * w; a2[o] += v2 * w; a3[o] += v3 * w;
        }
    }
    float *y0 = y, *y1 = y + ys, *y2 = y + 2 * ys, *y3 = y + 3 * ys;
    for (int o = 0; o < TILE; o++) {
        if (int8) {
            y0[o] = bias[o] + scale[o] * a0[o]; y1[o] = bias[o] + scale[o] * a1[o];
            y2[o] = bias[o] + scale[o] * a2[o]; y3[o] = bias[o] + scale[o] * a3[o];
        } else {
            y0[o] = a0[o]; y1[o] = a1[o]; y2[o] = a2[o]; y3[o] = a3[o];
        }
    }
}

/* y_b = bias + x_b W for every row b (W packed [in, out], out a multiple of TILE): tile by tile, rows four
 * at a time (rows4), the rest one by one (mv, two accumulator sets). */
static inline void mv_rows(int wdtype, const void *w, const float *scale, int in, int out, const float *bias,
                           const float *x, int x_stride, float *y, int y_stride, int B) {
    for (int o0 = 0; o0 < out; o0 += TILE) {
        const void *tile;
        if (wdtype == 1) tile = (const uint32_t *)w + (long)o0 / 2 * in;
        else if (wdtype == 2) tile = (const int8_t *)w + (long)o0 * in;
        else tile = (const float *)w + (long)o0 * in;
        int b = 0;
        for (; b + 4 <= B; b += 4)
            rows4(wdtype, tile, scale ? scale + o0 : 0, in, bias + o0, x + (long)b * x_stride, x_stride,
                  y + (long)b * y_stride + o0, y_stride);
        for (; b < B; b++) {
            float *yb = y + (long)b * y_stride + o0;
            memcpy(yb, bias + o0, TILE * sizeof(float));
            mv(wdtype, tile, scale ? scale + o0 : 0, in, TILE, x + (long)b * x_stride, yb);
        }
    }
}

/* ---------------------------------------------------------------- the end of a token step
 * Shared by the Transformer and ByteNet loops (seqgen.models.token_decoding.token_decode_loop): PAD and BOS
 * banned, the logits kept if asked, each row's token forced (mask) or sampled, fed back as the next
 * input; returns whether every row has finished (EOS or PAD) when stop_at_eos. */
typedef struct {
    int length, V, Vp, n_banned, top_k, eos, pad, stop_at_eos;
    const int32_t *banned, *forced;
    const uint8_t *mask;
    const float *noise;
    float temperature, top_p;
    float *logits_out;
    int32_t *out;
} token_args;

static inline int finish_token_step(const token_args *a, float *logits, int B, int t, float *soft, int32_t *x,
                                    uint8_t *done) {
    int done_all = a->stop_at_eos ? 1 : 0;
    for (int b = 0; b < B; b++) {
        float *lb = logits + (long)b * a->Vp;
        for (int j = 0; j < a->n_banned; j++)
            if (a->banned[j] >= 0 && a->banned[j] < a->V) lb[a->banned[j]] = -1e9f;
        if (a->logits_out) memcpy(a->logits_out + ((long)b * a->length + t) * a->V, lb, (size_t)a->V * sizeof(float));
        const long at = (long)b * a->length + t;
        const int s = a->mask[at] ? a->forced[at]
                                  : sample_class(lb, a->V, a->noise[at], a->temperature, a->top_k, a->top_p, soft);
        a->out[at] = s;
        x[b] = s;
        if (s == a->eos || s == a->pad) done[b] = 1;
        if (!done[b]) done_all = 0;
    }
    return done_all;
}

#endif
