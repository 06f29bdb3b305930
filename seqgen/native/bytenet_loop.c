/* The cached decoding loop of a ByteNet LM (seqgen.models.bytenet.ByteNet with encoder=False) in C.
 *
 * The same blocks, queues, teacher forcing, uniforms and sampler as the compiled Keras loop
 * (seqgen.models.token_decoding.token_decode_loop); every row in lockstep, each weight matrix read once
 * per step for the whole batch (kernels.h).  Per block:
 *     r = reduce(relu(LN_in(h)));  r = relu(LN_mid(r));  c = conv_k(queue of r);  h += expand(relu(LN_out(c)))
 * Sums run in another order than XLA's: the logits agree to float tolerance.
 */
#include "kernels.h"

typedef struct {
    int32_t n_blocks, d, hid, k, V;
    int32_t wdtype;                      /* 0 float32, 1 bfloat16, 2 int8 */
    const float *emb;                    /* [V, d] */
    const int32_t *dilations, *queue_rows;                                         /* [L] */
    const float *const *ln_in_g, *const *ln_in_b, *const *ln_mid_g, *const *ln_mid_b;
    const float *const *ln_out_g, *const *ln_out_b;
    const void *const *red_w; const float *const *red_b; const float *const *red_s;    /* [d, hid] */
    const void *const *conv_w; const float *const *conv_b; const float *const *conv_s; /* [k hid, hid] */
    const void *const *exp_w; const float *const *exp_b; const float *const *exp_s;    /* [hid, d] */
    const float *head_g, *head_b;        /* [d] */
    const void *out_w; const float *out_b; const float *out_s;                      /* [d, V] */
} bn_model;

int seqgen_bytenet_tile(void) { return TILE; }

/* Arguments as seqgen_transformer_loop's, with the queues instead of keys and values:
 *   queues  [L] -> [queue_rows, B, hid] float32, zero (the loop starts at position 0)
 *   work    float scratch of at least B (2 d + Hp + k hid + 2 Hp + Dp + Vp + 2) + 2 Vp floats, where Hp, Dp
 *           and Vp are hid, d and V padded to a multiple of TILE */
int seqgen_bytenet_loop(const bn_model *m, int B, int length, int num_steps, const int32_t *x0,
                        float *const *queues, const float *noise, const int32_t *forced, const uint8_t *mask,
                        const int32_t *banned, int n_banned, float temperature, int top_k, float top_p, int eos,
                        int pad, int stop_at_eos, int32_t *out, float *logits_out, float *work) {
    const int L = m->n_blocks, d = m->d, hid = m->hid, k = m->k, V = m->V;
    const int Hp = padded(hid), Dp = padded(d), Vp = padded(V);
    float *h = work;                         /* [B, d] */
    float *a = h + (long)B * d;              /* [B, d] */
    float *r = a + (long)B * d;              /* [B, Hp] */
    float *taps = r + (long)B * Hp;          /* [B, k hid] */
    float *c = taps + (long)B * k * hid;     /* [B, Hp] */
    float *cn = c + (long)B * Hp;            /* [B, Hp] */
    float *e = cn + (long)B * Hp;            /* [B, Dp] */
    float *logits = e + (long)B * Dp;        /* [B, Vp] */
    float *soft = logits + (long)B * Vp;     /* [2 Vp] */
    int32_t *x = (int32_t *)(soft + 2 * Vp); /* [B] */
    uint8_t *done = (uint8_t *)(x + B);      /* [B] */
    for (int b = 0; b < B; b++) { x[b] = x0[b]; done[b] = 0; }
    if (num_steps > length) num_steps = length;
    int t = 0, done_all = 0;
    const token_args args = {length, V, Vp, n_banned, top_k, eos, pad, stop_at_eos, banned, forced, mask, noise,
                             temperature, top_p, logits_out, out};
    for (; t < num_steps && !done_all; t++) {
        for (int b = 0; b < B; b++) memcpy(h + (long)b * d, m->emb + (long)x[b] * d, (size_t)d * sizeof(float));
        for (int l = 0; l < L; l++) {
            for (int b = 0; b < B; b++) {
                float *ab = a + (long)b * d;
                layer_norm(h + (long)b * d, m->ln_in_g[l], m->ln_in_b[l], d, ab);
                for (int i = 0; i < d; i++) ab[i] = max_f(ab[i], 0.0f);
            }
            mv_rows(m->wdtype, m->red_w[l], m->red_s ? m->red_s[l] : 0, d, Hp, m->red_b[l], a, d, r, Hp, B);
            const int rows = m->queue_rows[l], dil = m->dilations[l];
            float *q = queues[l];
            for (int b = 0; b < B; b++) {
                float *rb = r + (long)b * Hp;
                layer_norm(rb, m->ln_mid_g[l], m->ln_mid_b[l], hid, rb);
                for (int i = 0; i < hid; i++) rb[i] = max_f(rb[i], 0.0f);
                memcpy(q + ((long)(t % rows) * B + b) * hid, rb, (size_t)hid * sizeof(float));
                for (int j = 0; j < k; j++) {      /* oldest tap first */
                    int row = (t - (k - 1 - j) * dil) % rows;
                    if (row < 0) row += rows;
                    memcpy(taps + ((long)b * k + j) * hid, q + ((long)row * B + b) * hid,
                           (size_t)hid * sizeof(float));
                }
            }
            mv_rows(m->wdtype, m->conv_w[l], m->conv_s ? m->conv_s[l] : 0, k * hid, Hp, m->conv_b[l], taps,
                    k * hid, c, Hp, B);
            for (int b = 0; b < B; b++) {
                float *cb = cn + (long)b * Hp;
                layer_norm(c + (long)b * Hp, m->ln_out_g[l], m->ln_out_b[l], hid, cb);
                for (int i = 0; i < hid; i++) cb[i] = max_f(cb[i], 0.0f);
            }
            mv_rows(m->wdtype, m->exp_w[l], m->exp_s ? m->exp_s[l] : 0, hid, Dp, m->exp_b[l], cn, Hp, e, Dp, B);
            for (int b = 0; b < B; b++)
                for (int i = 0; i < d; i++) h[(long)b * d + i] += e[(long)b * Dp + i];
        }
        for (int b = 0; b < B; b++) {
            float *ab = a + (long)b * d;
            layer_norm(h + (long)b * d, m->head_g, m->head_b, d, ab);
            for (int i = 0; i < d; i++) ab[i] = max_f(ab[i], 0.0f);
        }
        mv_rows(m->wdtype, m->out_w, m->out_s, d, Vp, m->out_b, a, d, logits, Vp, B);
        done_all = finish_token_step(&args, logits, B, t, soft, x, done);
    }
    return t;
}
