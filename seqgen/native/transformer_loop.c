/* The cached decoding loop of seqgen.models.transformer.TransformerDecoder, written as one C loop.
 *
 * The same model, key/value cache, teacher forcing, uniforms and sampler as the compiled Keras loop
 * (seqgen.models.token_decoding.token_decode_loop), one token at a time for every row in lockstep:
 * each weight matrix is read once per step for the whole batch, tile by tile, as float32, bfloat16 or
 * int8 (kernels.h), and attention reads only the filled part of the cache.  Sums run in another order
 * than XLA's: the logits agree to float tolerance (seqgen/native/README.md).
 */
#include "kernels.h"

typedef struct {
    int32_t n_layers, d, H, Dh, ff, V, max_len;
    int32_t activation;                  /* 0 gelu (erf), 1 gelu (tanh form), 2 relu, 3 squared relu */
    int32_t wdtype;                      /* 0 float32, 1 bfloat16, 2 int8 */
    const float *tok_emb;                /* [V, d] */
    const float *pos;                    /* [max_len, d] added to the embedding (learned, sinusoidal), or NULL */
    const float *rope_cos, *rope_sin;    /* [max_len, Dh/2] (rotary positions), or NULL */
    const float *const *ln1_g, *const *ln1_b, *const *ln2_g, *const *ln2_b;   /* [L] -> [d] */
    const void *const *qkv_w; const float *const *qkv_b; const float *const *qkv_s;  /* [d, 3 H Dh] */
    const void *const *o_w; const float *const *o_b; const float *const *o_s;        /* [H Dh, d] */
    const void *const *f1_w; const float *const *f1_b; const float *const *f1_s;     /* [d, ff] */
    const void *const *f2_w; const float *const *f2_b; const float *const *f2_s;     /* [ff, d] */
    const float *fin_g, *fin_b;          /* [d] */
    const void *out_w; const float *out_b; const float *out_s;                       /* [d, V] */
} tf_model;

/* the tile width of the packing, checked by the Python side */
int seqgen_transformer_tile(void) { return TILE; }

static void activate(int kind, float *x, int n) {
    if (kind == 0) {
        for (int i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
    } else if (kind == 1) {
        for (int i = 0; i < n; i++) {
            const float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanh_f(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        }
    } else {
        for (int i = 0; i < n; i++) {
            const float r = max_f(x[i], 0.0f);
            x[i] = kind == 3 ? r * r : r;
        }
    }
}

static void rotate(float *x, const float *c, const float *s, int half) {
    for (int i = 0; i < half; i++) {
        const float a = x[i], b = x[i + half];
        x[i] = a * c[i] - b * s[i];
        x[i + half] = a * s[i] + b * c[i];
    }
}

/* Decodes positions 0 .. num_steps - 1 for B rows (the Keras loop's arguments and results):
 *   x0      [B] the first input (BOS)
 *   keys, values  [L, B, H, length, Dh] float32 scratch (position t's key written before it is read)
 *   noise   [B, length] uniforms; forced, mask [B, length] teacher forcing (mask != 0: take forced)
 *   banned  [n_banned] ids never sampled (their logits set to -1e9, as ban_tokens does)
 *   out     [B, length] the tokens; logits_out [B, length, V] or NULL
 *   work    float scratch of at least B (2 d + Qp + Ip + Dp + Fp + Vp + 2) + 2 Vp + length floats, where
 *           Qp, Ip, Dp, Fp and Vp are 3 H Dh, H Dh, d, ff and V padded to a multiple of TILE
 * Stops early, when stop_at_eos, once every row has produced eos or pad.  Returns the positions run. */
int seqgen_transformer_loop(const tf_model *m, int B, int length, int num_steps, const int32_t *x0,
                            float *keys, float *values, const float *noise, const int32_t *forced,
                            const uint8_t *mask, const int32_t *banned, int n_banned, float temperature,
                            int top_k, float top_p, int eos, int pad, int stop_at_eos,
                            int32_t *out, float *logits_out, float *work) {
    const int L = m->n_layers, d = m->d, H = m->H, Dh = m->Dh, ff = m->ff, V = m->V, T = m->max_len;
    const int inner = H * Dh, Dp = padded(d), Ip = padded(inner), Qp = padded(3 * inner), Fp = padded(ff);
    const int Vp = padded(V);
    const float inv_sqrt = 1.0f / sqrtf((float)Dh);
    float *h = work;                     /* [B, d] the residual stream */
    float *a = h + (long)B * d;          /* [B, d] a normalized copy */
    float *qkv = a + (long)B * d;        /* [B, Qp] */
    float *att = qkv + (long)B * Qp;     /* [B, Ip] */
    float *o = att + (long)B * Ip;       /* [B, Dp] */
    float *f = o + (long)B * Dp;         /* [B, Fp] */
    float *logits = f + (long)B * Fp;    /* [B, Vp] */
    float *soft = logits + (long)B * Vp; /* [2 Vp] */
    float *scores = soft + 2 * Vp;       /* [length] */
    int32_t *x = (int32_t *)(scores + length);   /* [B] this step's inputs */
    uint8_t done_all = 0;
    for (int b = 0; b < B; b++) x[b] = x0[b];
    uint8_t *done = (uint8_t *)(x + B);
    memset(done, 0, (size_t)B);
    if (num_steps > length) num_steps = length;
    if (num_steps > T) num_steps = T;
    int t = 0;
    const token_args args = {length, V, Vp, n_banned, top_k, eos, pad, stop_at_eos, banned, forced, mask, noise,
                             temperature, top_p, logits_out, out};
    for (; t < num_steps && !done_all; t++) {
        for (int b = 0; b < B; b++) {
            memcpy(h + (long)b * d, m->tok_emb + (long)x[b] * d, (size_t)d * sizeof(float));
            if (m->pos) for (int i = 0; i < d; i++) h[(long)b * d + i] += m->pos[(long)t * d + i];
        }
        for (int l = 0; l < L; l++) {
            for (int b = 0; b < B; b++) layer_norm(h + (long)b * d, m->ln1_g[l], m->ln1_b[l], d, a + (long)b * d);
            mv_rows(m->wdtype, m->qkv_w[l], m->qkv_s ? m->qkv_s[l] : 0, d, Qp, m->qkv_b[l], a, d, qkv, Qp, B);
            for (int b = 0; b < B; b++) {
                float *q = qkv + (long)b * Qp, *k = q + inner, *v = q + 2 * inner;
                for (int hh = 0; hh < H; hh++) {
                    float *qh = q + hh * Dh, *kh = k + hh * Dh, *vh = v + hh * Dh;
                    if (m->rope_cos) {
                        rotate(qh, m->rope_cos + (long)t * (Dh / 2), m->rope_sin + (long)t * (Dh / 2), Dh / 2);
                        rotate(kh, m->rope_cos + (long)t * (Dh / 2), m->rope_sin + (long)t * (Dh / 2), Dh / 2);
                    }
                    const long base = (((long)l * B + b) * H + hh) * (long)length * Dh;
                    float *K = keys + base, *Vv = values + base;
                    memcpy(K + (long)t * Dh, kh, (size_t)Dh * sizeof(float));
                    memcpy(Vv + (long)t * Dh, vh, (size_t)Dh * sizeof(float));
                    for (int s = 0; s <= t; s++) scores[s] = dot_f(qh, K + (long)s * Dh, Dh) * inv_sqrt;
                    const float mx = max_of(scores, t + 1);
                    for (int s = 0; s <= t; s++) scores[s] = exp_f(scores[s] - mx);
                    const float total = sum_f(scores, t + 1);
                    float *ah = att + (long)b * Ip + hh * Dh;
                    for (int j = 0; j < Dh; j++) ah[j] = 0.0f;
                    const float inv = 1.0f / total;
                    for (int s = 0; s <= t; s++) {
                        const float w = scores[s] * inv;
                        const float *vs = Vv + (long)s * Dh;
                        for (int j = 0; j < Dh; j++) ah[j] += w * vs[j];
                    }
                }
            }
            mv_rows(m->wdtype, m->o_w[l], m->o_s ? m->o_s[l] : 0, inner, Dp, m->o_b[l], att, Ip, o, Dp, B);
            for (int b = 0; b < B; b++) {
                for (int i = 0; i < d; i++) h[(long)b * d + i] += o[(long)b * Dp + i];
                layer_norm(h + (long)b * d, m->ln2_g[l], m->ln2_b[l], d, a + (long)b * d);
            }
            mv_rows(m->wdtype, m->f1_w[l], m->f1_s ? m->f1_s[l] : 0, d, Fp, m->f1_b[l], a, d, f, Fp, B);
            for (int b = 0; b < B; b++) activate(m->activation, f + (long)b * Fp, ff);
            mv_rows(m->wdtype, m->f2_w[l], m->f2_s ? m->f2_s[l] : 0, ff, Dp, m->f2_b[l], f, Fp, o, Dp, B);
            for (int b = 0; b < B; b++)
                for (int i = 0; i < d; i++) h[(long)b * d + i] += o[(long)b * Dp + i];
        }
        for (int b = 0; b < B; b++) layer_norm(h + (long)b * d, m->fin_g, m->fin_b, d, a + (long)b * d);
        mv_rows(m->wdtype, m->out_w, m->out_s, d, Vp, m->out_b, a, d, logits, Vp, B);
        done_all = finish_token_step(&args, logits, B, t, soft, x, done);
    }
    return t;
}
