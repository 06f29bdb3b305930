/* The cached WaveNet sampling loop of seqgen.models.wavenet, written as one C loop.
 *
 * Same model, same conditioning (precomputed per chunk by Keras), same noise and the same inverse-CDF
 * sampler as the compiled Keras loop; what changes is the cost per sample: no per-operation dispatch,
 * the queues updated in place, and weights read as float32, bfloat16 (half the bytes) or int8 with a
 * scale per output (a quarter), widened to float32 in registers: the arithmetic is float32.
 * Floating-point sums run in another order than XLA's, so the parameters agree to float tolerance, not
 * bit for bit (seqgen/native/README.md).
 *
 * Built on first use by seqgen.native.build with the host compiler (-O3 -march=native); no Python
 * headers: loaded with ctypes.
 */
#include "kernels.h"

typedef struct {
    int32_t n_layers, R, G, S, V, k;      /* residual, gate, skip channels, classes, kernel taps */
    int32_t lpc_order;                   /* 0: plain classes; else inputs are (excitation class, sample) */
    int32_t bias_per_step;               /* 1: bias [B, chunk, L*G]; 0: [B, L*G] (speaker only) or none */
    int32_t has_bias;
    int32_t wdtype;                      /* how the matrices are stored: 0 float32, 1 bfloat16, 2 int8 */
    const int32_t *dilations;            /* [L] */
    const int32_t *queue_rows;           /* [L]: (k-1)*d + 1 */
    const void *const *conv_w;           /* [L] -> [k*R, G], oldest tap first */
    const float *const *conv_b;          /* [L] -> [G] */
    const void *const *out_w;            /* [L] -> [G/2, R+S] ([G/2, S] for a layer with no residual out) */
    const float *const *out_b;           /* [L] -> [R+S] or [S] */
    const int32_t *has_residual;         /* [L] */
    const void *head_w1; const float *head_b1;   /* [S, S], [S] */
    const void *head_w2; const float *head_b2;   /* [S, V], [V] */
    const float *emb_in;                 /* [V, R] */
    const float *emb_pred;               /* [V, R] (linear prediction) */
    const float *emb_exc;                /* [V, R] (linear prediction) */
    const int32_t *class_of_sample;      /* [65536]: class of 16-bit sample s at s + 32768 */
    const float *decode;                 /* [V]: to_waveform of each class */
    const float *const *conv_s;          /* int8: [L] -> [G] scale of each output (padded like the bias) */
    const float *const *out_s;
    const float *head_s1, *head_s2;
} wn_model;

/* the packing's tile width, checked by the Python side */
int seqgen_wavenet_tile(void) { return TILE; }

static inline float clip16(float v) { return min_f(max_f(v, -32768.0f), 32767.0f); }

/* ---------------------------------------------------------------- the loop
 * Runs steps t = start .. start + num_steps - 1 for B rows.
 *   x       [B] int32 (or [B, 2]: excitation class, sample) the input of the first step; updated
 *   queues  [L] -> [queue_rows, B, R] float32, updated in place (row t mod queue_rows holds step t's input)
 *   ring    [B, lpc_order] float32, the last samples, newest first (linear prediction); updated
 *   noise   [B, chunk] uniforms
 *   bias    [B, chunk, L*G] (bias_per_step) or [B, L*G] or NULL
 *   lpc     [B, chunk, lpc_order] this step's predictor, or NULL
 *   forced  [B, chunk] (or [B, chunk, 2]): steps i < num_forced take these as their outputs
 *   out     [B, chunk] (or [B, chunk, 2]) the samples
 *   params  [B, chunk, V] the logits of every step, or NULL
 *   work    float scratch of at least B (R + S + k R + 2 Gp + Op + Sp + Vp + 1) + 2 Vp floats, where Gp, Op,
 *           Sp and Vp are G, R + S, S and V padded to a multiple of TILE
 * The biases are padded like the outputs of their products.  The rows run in lockstep, layer by layer, so
 * that each weight matrix is read once per step for the whole batch (mv_rows).
 */
int seqgen_wavenet_loop(const wn_model *m, int B, int chunk, int start, int num_steps,
                        int32_t *x, float *const *queues, float *ring,
                        const float *noise, const float *bias, const float *lpc,
                        const int32_t *forced, int num_forced, float temperature, float top_p,
                        int32_t *out, float *params, float *work) {
    const int L = m->n_layers, R = m->R, G = m->G, S = m->S, V = m->V, k = m->k, half = G / 2;
    const int P = m->lpc_order, LG = L * G, width = P ? 2 : 1;
    const int Gp = padded(G), Sp = padded(S), Vp = padded(V), Op = padded(R + S);
    float *h = work;                         /* [B, R] */
    float *skip = h + (long)B * R;           /* [B, S] */
    float *taps = skip + (long)B * S;        /* [B, k R] */
    float *g = taps + (long)B * k * R;       /* [B, Gp] */
    float *z = g + (long)B * Gp;             /* [B, Gp] (G/2 used) */
    float *o = z + (long)B * Gp;             /* [B, Op] */
    float *hid = o + (long)B * Op;           /* [B, Sp] */
    float *logits = hid + (long)B * Sp;      /* [B, Vp] */
    float *soft = logits + (long)B * Vp;     /* [2 Vp]: the sampler's scratch */
    float *pred = soft + 2 * Vp;             /* [B]: this step's prediction */
    if (num_steps > chunk) num_steps = chunk;
    for (int i = 0; i < num_steps; i++) {
        const int t = start + i;
        if (m->has_bias && m->bias_per_step && i + 1 < num_steps)   /* the next step's conditioning rows */
            for (int b = 0; b < B; b++)
                for (int c = 0; c < LG; c += 16)
                    __builtin_prefetch(bias + ((long)b * chunk + i + 1) * LG + c);
        /* the input embedding of every row */
        for (int b = 0; b < B; b++) {
            float *hb = h + (long)b * R;
            if (P) {
                const int e_prev = x[2 * b], s_prev = x[2 * b + 1];
                float *rg = ring + (long)b * P;
                memmove(rg + 1, rg, (size_t)(P - 1) * sizeof(float));
                rg[0] = (float)s_prev;
                const float *c = lpc + ((long)b * chunk + i) * P;
                float acc = 0.0f;
                for (int j = 0; j < P; j++) acc += c[j] * rg[j];
                const float p = clip16(rintf(acc));
                pred[b] = p;
                const float *a = m->emb_in + (long)m->class_of_sample[s_prev + 32768] * R;
                const float *q = m->emb_pred + (long)m->class_of_sample[(int)p + 32768] * R;
                const float *ex = m->emb_exc + (long)e_prev * R;
                for (int r = 0; r < R; r++) hb[r] = (a[r] + q[r]) + ex[r];
            } else {
                memcpy(hb, m->emb_in + (long)x[b] * R, (size_t)R * sizeof(float));
            }
            memset(skip + (long)b * S, 0, (size_t)S * sizeof(float));
        }
        /* the residual layers, every row in lockstep */
        for (int l = 0; l < L; l++) {
            const int rows = m->queue_rows[l], d = m->dilations[l];
            float *q = queues[l];
            const int res = m->has_residual[l], nout = padded(res ? R + S : S);
            for (int b = 0; b < B; b++) {
                memcpy(q + ((long)(t % rows) * B + b) * R, h + (long)b * R, (size_t)R * sizeof(float));
                for (int j = 0; j < k; j++) {          /* oldest tap first */
                    const int row = (t - (k - 1 - j) * d) % rows;
                    memcpy(taps + ((long)b * k + j) * R, q + ((long)(row < 0 ? row + rows : row) * B + b) * R,
                           (size_t)R * sizeof(float));
                }
            }
            mv_rows(m->wdtype, m->conv_w[l], m->wdtype == 2 ? m->conv_s[l] : 0, k * R, Gp, m->conv_b[l], taps, k * R,
                    g, Gp, B);
            for (int b = 0; b < B; b++) {
                float *gb_ = g + (long)b * Gp, *zb = z + (long)b * Gp;
                if (m->has_bias) {
                    const float *gb = m->bias_per_step ? bias + ((long)b * chunk + i) * LG + (long)l * G
                                                       : bias + (long)b * LG + (long)l * G;
                    for (int c = 0; c < G; c++) gb_[c] += gb[c];
                }
                for (int c = 0; c < half; c++) zb[c] = tanh_f(gb_[c]) * sigmoid_f(gb_[half + c]);
            }
            mv_rows(m->wdtype, m->out_w[l], m->wdtype == 2 ? m->out_s[l] : 0, half, nout, m->out_b[l], z, Gp, o, Op, B);
            for (int b = 0; b < B; b++) {
                float *hb = h + (long)b * R, *sb = skip + (long)b * S, *ob = o + (long)b * Op;
                if (res) {
                    for (int r = 0; r < R; r++) hb[r] += ob[r];
                    for (int c = 0; c < S; c++) sb[c] += ob[R + c];
                } else {
                    for (int c = 0; c < S; c++) sb[c] += ob[c];
                }
            }
        }
        /* the head and the sampler */
        for (long c = 0; c < (long)B * S; c++) skip[c] = max_f(skip[c], 0.0f);
        mv_rows(m->wdtype, m->head_w1, m->head_s1, S, Sp, m->head_b1, skip, S, hid, Sp, B);
        for (long c = 0; c < (long)B * Sp; c++) hid[c] = max_f(hid[c], 0.0f);
        mv_rows(m->wdtype, m->head_w2, m->head_s2, S, Vp, m->head_b2, hid, Sp, logits, Vp, B);
        for (int b = 0; b < B; b++) {
            const float *lb = logits + (long)b * Vp;
            if (params) memcpy(params + ((long)b * chunk + i) * V, lb, (size_t)V * sizeof(float));
            int32_t *ob = out + ((long)b * chunk + i) * width;
            if (i < num_forced) {
                memcpy(ob, forced + ((long)b * chunk + i) * width, (size_t)width * sizeof(int32_t));
            } else {
                const int e = sample_class(lb, V, noise[(long)b * chunk + i], temperature, 0, top_p, soft);
                ob[0] = e;
                if (P) ob[1] = (int32_t)clip16(pred[b] + rintf(m->decode[e] * 32768.0f));
            }
            memcpy(x + (long)b * width, ob, (size_t)width * sizeof(int32_t));
        }
    }
    return num_steps;
}
