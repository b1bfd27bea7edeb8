/* CONV_2D int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_conv2d_s8 (kernels/ref/conv.c).
 *
 * One routine for every shape it takes (first layers with 1 or 3 input channels included):
 * 2 output channels x 3 output pixels per call of one hand-scheduled routine
 * (ts_cm4_conv2x3, Thumb-2 assembly below): per tap pair one LDM of the 3 pixels' inputs,
 * one LDM of the 2 channels' weights and 6 SMLAD (8 instructions per 12 MACs, loop body of
 * 8 tap pairs), then the 6 outputs requantized in 5 instructions each. 1x1 convs with in_c
 * a multiple of 4 feed it from conv_pointwise.c; the rest from here.
 *
 * Receptive field order: (ky, kx, ic), as the filter is stored, each kernel row (k_w * in_c
 * values, contiguous in the input and the filter) padded to an even count (a "segment"), so
 * a field is np = k_h * half int16 pairs. Inputs and weights are widened to int16 in the
 * same order (widen_seg, widen_seg_sum): groups of 4 in SXTB16 order (v0, v2 | v1, v3), the
 * rest as plain pairs, so both carry the same permutation and the dot product is unchanged.
 *
 * The input offset is folded into the bias: sum (x + off) w = sum x w + off * sum w (int32,
 * wrapping, exactly as the reference's sum), so inputs are only sign-extended; taps outside
 * the input (padding, which the reference skips) read the input zero point -off, whose
 * (x + off) is 0. The weights are widened doubled (2 w) and the bias words are doubled, so
 * the routine's accumulators are 2 acc (exact while |acc| < 2^29: |bias| <= 2^28 and a
 * field of at most 8192 values, else the plain loop nest), which its 5-instruction
 * requantization needs (ts_rq_dbl, ts_dsp.h: SMMLAR, the sign, ASR, SSAT, STRB).
 *
 * Buffers (stack): weights of a block of output channels, per channel pair a record
 *   [bias a, bias b, bias a, bias b, bias a, bias b | a pair 0, b pair 0, a pair 1, ... |
 *    mult a, rnd a, e a, mult b, rnd b, e b]
 * (built once per call), and the im2col of 3 consecutive output pixels (flat over batch,
 * rows and columns, so only the very last group has unused slots), interleaved by tap pair:
 * word 3 t + s = pair t of pixel s. Requantization: TFLM's double rounding exactly
 * (ts_dsp.h); when every shift is in [-23, -1] (all real layers) the output offset is
 * folded into the rounding term and the assembly stores the outputs; otherwise it hands
 * back the accumulators and C finishes. A fused activation narrower than int8 is one clamp
 * pass over the outputs at the end (ts_clamp_pass: exact, since clamp(SSAT8(v), lo, hi) ==
 * clamp(v, lo, hi)).
 * A field larger than the buffers (3 * np > TS_OPT_CONV_ROWBUF / 2, or a weight block of
 * fewer than TS_OPT_CONV_CHUNK_MIN channels: 3x3 convs with 32+ input channels) runs the
 * same routine chunked over the field (conv_chunked), so no size sends a conv to a plain
 * loop; only dil_w != 1 and the accumulator bound above take the plain loop nest
 * (ts_plain_conv, common.c). */
#include "ts_dsp.h"
#include "ts_kernels.h"

enum { WWORDS = TS_OPT_CONV_WBUF / 2, TWORDS = TS_OPT_CONV_ROWBUF / 2, HEAD = TS_CONV_HEAD, TAIL = TS_CONV_TAIL };
#ifndef TS_OPT_CONV_CHUNK_BLOCK
#define TS_OPT_CONV_CHUNK_BLOCK 16 /* output channels per block of the chunked path */
#endif
#ifndef TS_OPT_CONV_CHUNK_MIN
#define TS_OPT_CONV_CHUNK_MIN 8 /* the whole-field path needs blocks of this many channels */
#endif
enum { CHUNK_BLOCK = TS_OPT_CONV_CHUNK_BLOCK, CHUNK_MIN = TS_OPT_CONV_CHUNK_MIN };

/* npairs channel pairs (records r, r + rec, ...: consecutive) x pixels 0..2 of the im2col x:
 * A = bias word + sum over np tap pairs t of SMLAD(x[3t + s], weight pair t), where the
 * caller has doubled one side (A = 2 acc, |acc| < 2^29). Then, if out_c != 0,
 * out[s * out_c + 2q] = ts_rq_dbl(A_as, words of channel a) for channel a of pair q, and
 * out[s * out_c + 2q + 1] likewise for b; if out_c == 0, pair q's accumulators (a0, b0,
 * a1, b1, a2, b2) are stored as int32 at out + 24 q (4-byte aligned). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
/* r0 = x, r1 = records, r2 = np (>= 1), r3 = out, [sp] = out_c, [sp, #4] = npairs.
 * After the push, a 32-byte frame: [sp] x, [sp, #4] iterations ceil(np / 8), [sp, #8] the
 * entry address into the 8-pair loop body (so that the first iteration runs np % 8 pairs,
 * or 8; each TS_PAIR is 32 bytes), [sp, #12] out, [sp, #16] out_c, [sp, #20] the end of the
 * records, [sp, #24] the address of the pair's ending: raw (out_c == 0), requantized, or
 * requantized without the sign term (the _relu entry). Per pair: accumulators r4-r9 from
 * the record's bias words; per tap pair the inputs in r3, r10, r11 and the weights in r12,
 * lr. The requantization of one output (ts_rq_dbl): SMMLAR with the rounding word, ADD of
 * the sign, ASR, SSAT, STRB; the _relu entry leaves the ADD out (ts_rq_dbl_relu). */
#define TS_PAIR                  \
  "ldm r0!, {r3, r10, r11}\n\t"  \
  "ldm r1!, {r12, lr}\n\t"       \
  "smlad r4, r3, r12, r4\n\t"    \
  "smlad r5, r3, lr, r5\n\t"     \
  "smlad r6, r10, r12, r6\n\t"   \
  "smlad r7, r10, lr, r7\n\t"    \
  "smlad r8, r11, r12, r8\n\t"   \
  "smlad r9, r11, lr, r9\n\t"
#define TS_RQ(acc, st)                          \
  "smmlar lr, " acc ", r3, r10\n\t"             \
  "add lr, lr, " acc ", asr #31\n\t"            \
  "asr lr, lr, r11\n\t"                         \
  "ssat lr, #8, lr\n\t"                         \
  "strb lr, " st "\n\t"
#define TS_RQR(acc, st)                         \
  "smmlar lr, " acc ", r3, r10\n\t"             \
  "asr lr, lr, r11\n\t"                         \
  "ssat lr, #8, lr\n\t"                         \
  "strb lr, " st "\n\t"
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_conv2x3,\"ax\",%progbits\n\t"
    ".global ts_cm4_conv2x3\n\t"
    ".hidden ts_cm4_conv2x3\n\t"
    ".type ts_cm4_conv2x3, %function\n\t"
    ".global ts_cm4_conv2x3_relu\n\t"
    ".hidden ts_cm4_conv2x3_relu\n\t"
    ".type ts_cm4_conv2x3_relu, %function\n\t"
    ".thumb\n\t"
    ".p2align 2\n\t"
    ".thumb_func\n"
    "ts_cm4_conv2x3_relu:\n\t"
    "push {r4-r11, lr}\n\t"
    "adr.w r12, .Lc2x3_rqr + 1\n\t" /* + 1: Thumb, for LDR PC */
    "b .Lc2x3_go\n\t"
    ".thumb_func\n"
    "ts_cm4_conv2x3:\n\t"
    "push {r4-r11, lr}\n\t"
    "adr.w r12, .Lc2x3_rq + 1\n"
    ".Lc2x3_go:\n\t"
    "sub sp, sp, #32\n\t"
    "ldrd r4, r5, [sp, #68]\n\t" /* out_c, npairs */
    "cbnz r4, 3f\n\t"
    "adr.w r12, .Lc2x3_raw + 1\n"
    "3:\n\t"
    "str r12, [sp, #24]\n\t"
    "strd r3, r4, [sp, #12]\n\t"
    "lsls r4, r2, #3\n\t"         /* record bytes: 8 np + 48 */
    "adds r4, r4, #48\n\t"
    "mla r5, r4, r5, r1\n\t"
    "str r5, [sp, #20]\n\t"
    "rsbs r12, r2, #0\n\t"
    "and r12, r12, #7\n\t"
    "adr.w r4, .Lc2x3_body\n\t"
    "add r4, r4, r12, lsl #5\n\t"
    "orr r4, r4, #1\n\t"
    "adds r2, r2, #7\n\t"
    "lsrs r2, r2, #3\n\t"
    "strd r0, r2, [sp]\n\t"
    "str r4, [sp, #8]\n"
    ".Lc2x3_pair:\n\t"
    "ldm r1!, {r4-r9}\n\t"
    "ldrd r0, r2, [sp]\n\t"  /* x, iterations */
    "ldr pc, [sp, #8]\n\t"
    ".p2align 2\n"
    ".Lc2x3_body:\n\t"
    TS_PAIR TS_PAIR TS_PAIR TS_PAIR
    TS_PAIR TS_PAIR TS_PAIR TS_PAIR
    "subs r2, r2, #1\n\t"
    "bne .Lc2x3_body\n\t"
    "ldrd r0, r2, [sp, #12]\n\t" /* out, out_c */
    "ldr pc, [sp, #24]\n\t"
    ".p2align 2\n"
    ".Lc2x3_raw:\n\t"
    "stm r0!, {r4-r9}\n\t" /* raw: the accumulators, 24 bytes per pair */
    "adds r1, r1, #24\n\t"
    "b 2f\n\t"
    ".p2align 2\n"
    ".Lc2x3_rq:\n\t"
    "ldm r1!, {r3, r10, r11}\n\t" /* channel a: mult, rnd, e */
    TS_RQ("r4", "[r0]") TS_RQ("r6", "[r0, r2]") TS_RQ("r8", "[r0, r2, lsl #1]")
    "ldm r1!, {r3, r10, r11}\n\t" /* channel b */
    "adds r0, r0, #1\n\t"
    TS_RQ("r5", "[r0]") TS_RQ("r7", "[r0, r2]") TS_RQ("r9", "[r0, r2, lsl #1]")
    "adds r0, r0, #1\n\t"
    "ldr r3, [sp, #20]\n\t" /* the loop's end, as at 2: below */
    "str r0, [sp, #12]\n\t"
    "cmp r1, r3\n\t"
    "bne .Lc2x3_pair\n\t"
    "b 4f\n\t"
    ".p2align 2\n"
    ".Lc2x3_rqr:\n\t"
    "ldm r1!, {r3, r10, r11}\n\t"
    TS_RQR("r4", "[r0]") TS_RQR("r6", "[r0, r2]") TS_RQR("r8", "[r0, r2, lsl #1]")
    "ldm r1!, {r3, r10, r11}\n\t"
    "adds r0, r0, #1\n\t"
    TS_RQR("r5", "[r0]") TS_RQR("r7", "[r0, r2]") TS_RQR("r9", "[r0, r2, lsl #1]")
    "adds r0, r0, #1\n"
    "2:\n\t"
    "ldr r3, [sp, #20]\n\t"
    "str r0, [sp, #12]\n\t"
    "cmp r1, r3\n\t"
    "bne .Lc2x3_pair\n"
    "4:\n\t"
    "add sp, sp, #32\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size ts_cm4_conv2x3, .-ts_cm4_conv2x3\n\t"
    ".size ts_cm4_conv2x3_relu, .-ts_cm4_conv2x3_relu\n\t"
    ".text\n");
#undef TS_PAIR
#undef TS_RQ
#undef TS_RQR
#else
static void conv2x3(const uint32_t *x, const uint32_t *r, int32_t np, int8_t *out,
                    int32_t out_c, int32_t npairs, int relu) {
  for (; npairs > 0; npairs--, out += out_c ? 2 : 24) {
    int32_t acc[6];
    for (int32_t i = 0; i < 6; i++) acc[i] = (int32_t)r[i];
    const uint32_t *w = r + HEAD, *xs = x;
    for (int32_t t = 0; t < np; t++, xs += 3, w += 2)
      for (int32_t s = 0; s < 3; s++) {
        acc[2 * s] = ts_smlad(xs[s], w[0], acc[2 * s]);
        acc[2 * s + 1] = ts_smlad(xs[s], w[1], acc[2 * s + 1]);
      }
    if (!out_c) {
      __builtin_memcpy(out, acc, sizeof acc);
      r = w + TAIL;
      continue;
    }
    for (int32_t s = 0; s < 3; s++)
      for (int32_t k = 0; k < 2; k++)
        out[s * out_c + k] = (int8_t)(relu ? ts_rq_dbl_relu(acc[2 * s + k], w + 3 * k)
                                           : ts_rq_dbl(acc[2 * s + k], w + 3 * k));
    r = w + TAIL;
  }
}
void ts_cm4_conv2x3(const uint32_t *x, const uint32_t *r, int32_t np, int8_t *out,
                    int32_t out_c, int32_t npairs) {
  conv2x3(x, r, np, out, out_c, npairs, 0);
}
void ts_cm4_conv2x3_relu(const uint32_t *x, const uint32_t *r, int32_t np, int8_t *out,
                         int32_t out_c, int32_t npairs) {
  conv2x3(x, r, np, out, out_c, npairs, 1);
}
#endif

void ts_conv_rest(const uint32_t *tb, const uint32_t *recs, int32_t np, int32_t rec,
                  int8_t *o, int32_t nv, int32_t oc0, int32_t nb, int32_t c,
                  const ts_conv_params_t *p) {
  for (; c < nb; c += 2) { /* accumulators back (2 acc) */
    int32_t acc[6];
    ts_cm4_conv2x3(tb, recs + (c >> 1) * rec, np, (int8_t *)acc, 0, 1);
    for (int32_t s = 0; s < nv; s++) {
      o[s * p->out_c + c] = ts_out_slow(acc[2 * s] >> 1, oc0 + c, p);
      if (c + 1 < nb) o[s * p->out_c + c + 1] = ts_out_slow(acc[2 * s + 1] >> 1, oc0 + c + 1, p);
    }
  }
}

static inline uint32_t pack16(int32_t lo, int32_t hi) {
  return (uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16;
}

/* n int8 values -> ceil(n / 2) int16 pair words at d, d + step, d + 2 step, ...: groups of
 * 4 in SXTB16 order, then plain pairs, an odd last value paired with 0 (its weight is 0). */
static void widen_seg(uint32_t *d, int32_t step, const int8_t *src, int32_t n) {
  int32_t i = 0;
  for (; i + 4 <= n; i += 4, d += 2 * step) {
    const uint32_t v = ts_ld32(src + i);
    d[0] = ts_sxtb16(v);
    d[step] = ts_sxtb16_ror8(v);
  }
  for (; i + 2 <= n; i += 2, d += step) d[0] = pack16(src[i], src[i + 1]);
  if (i < n) d[0] = pack16(src[i], 0);
}

/* widen_seg of weights, doubled (2 w: the routine's accumulators are 2 acc), returning the
 * sum of the n doubled values (SMLAD of each widened word with (1, 1)); the chunked path,
 * whose seeds carry the sums, ignores it. */
static int32_t widen_seg_sum(uint32_t *d, int32_t step, const int8_t *src, int32_t n) {
  int32_t i = 0, sum = 0;
  for (; i + 4 <= n; i += 4, d += 2 * step) {
    uint32_t v = ts_ld32(src + i), lo = ts_sxtb16(v), hi = ts_sxtb16_ror8(v);
    d[0] = lo = ts_sadd16(lo, lo);
    d[step] = hi = ts_sadd16(hi, hi);
    sum = ts_smlad(hi, 0x00010001u, ts_smlad(lo, 0x00010001u, sum));
  }
  for (; i + 2 <= n; i += 2, d += step) {
    d[0] = pack16(2 * src[i], 2 * src[i + 1]);
    sum += 2 * (src[i] + src[i + 1]);
  }
  if (i < n) d[0] = pack16(2 * src[i], 0), sum += 2 * src[i];
  return sum;
}

__attribute__((noinline)) static void fill_words(uint32_t *d, int32_t step, int32_t n,
                                                 uint32_t v) {
  for (int32_t i = 0; i < n; i++) d[i * step] = v;
}

/* The im2col geometry of one call, and the output pixel it is at. */
typedef struct {
  const ts_conv_params_t *p;
  const int8_t *input;
  int32_t seg, hp, row; /* values per kernel row, its pair words (seg / 2), input row step */
  int32_t b, oy, ox, iy0, ix0;
  int32_t at; /* input index of (b, iy0, ix0), the field's top-left tap (may be outside) */
} cursor_t;

static void cursor_row(cursor_t *g) { /* (b, oy, 0) */
  const ts_conv_params_t *p = g->p;
  g->ox = 0;
  g->iy0 = g->oy * p->stride_h - p->pad_h;
  g->ix0 = -p->pad_w;
  g->at = ((g->b * p->in_h + g->iy0) * p->in_w + g->ix0) * p->in_c;
}

/* n output pixels on (n <= the pixels left in the row, or 1) */
static void cursor_next(cursor_t *g, int32_t n) {
  const ts_conv_params_t *p = g->p;
  if ((g->ox += n) < p->out_w) {
    g->ix0 += n * p->stride_w;
    g->at += n * p->stride_w * p->in_c;
    return;
  }
  if (++g->oy == p->out_h) g->oy = 0, g->b++;
  cursor_row(g);
}

/* The singles of an odd seg (value seg - 1 of each kernel row, x[ky row]) of one pixel, at
 * w = its slot of the first singles pair: pair t = (row t, row t + H), H = (k_h + 1) / 2, the
 * missing partner of an odd k_h 0. */
static void singles(uint32_t *w, const int8_t *x, int32_t row, int32_t k_h) {
  const int32_t H = (k_h + 1) >> 1;
  for (int32_t ky = 0; ky < H; ky++) w[3 * ky] = (uint16_t)x[ky * row];
  for (int32_t ky = H; ky < k_h; ky++) w[3 * (ky - H)] |= (uint32_t)(uint16_t)x[ky * row] << 16;
}

/* The cursor pixel's receptive field into slot s of the 3-pixel im2col buffer (tb + s):
 * kernel row ky's first 2 hp values at pair words hp ky .. hp ky + hp - 1, then the singles. */
static void im2col(const cursor_t *g, uint32_t *tb, int8_t *tmp) {
  const ts_conv_params_t *p = g->p;
  const int32_t in_c = p->in_c, seg = g->seg, hp = g->hp, k_h = p->k_h;
  const int8_t zp = (int8_t)-p->input_offset;
  const int cols_in = g->ix0 >= 0 && g->ix0 + p->k_w <= p->in_w;
  if (cols_in && (seg & 3) == 0 && g->iy0 >= 0 && g->iy0 + (k_h - 1) * p->dil_h < p->in_h) {
    /* all inside, whole groups of 4 (widen_seg of each row): a tight loop */
    const int8_t *src = g->input + g->at;
    for (int32_t ky = 0; ky < k_h; ky++, tb += 3 * hp, src += g->row) {
      uint32_t *d = tb;
      for (const int8_t *x = src, *const e = src + seg; x < e; x += 4, d += 6) {
        const uint32_t v = ts_ld32(x);
        d[0] = ts_sxtb16(v), d[3] = ts_sxtb16_ror8(v);
      }
    }
    return;
  }
  /* the rows' singles go through tmp + seg (a border pixel's rows are built in tmp) */
  int8_t *const sg = tmp + seg;
  for (int32_t ky = 0, iy = g->iy0, at = g->at; ky < k_h; ky++, at += g->row, iy += p->dil_h) {
    const int row_in = iy >= 0 && iy < p->in_h;
    const int8_t *src = tmp;
    if (!row_in) { /* a row outside the input: the zero point */
      fill_words(tb + 3 * hp * ky, 3, hp, pack16(zp, zp));
      sg[ky] = zp;
      continue;
    }
    if (cols_in) src = g->input + at;
    else /* taps outside the input read the zero point */
      for (int32_t kx = 0; kx < p->k_w; kx++) {
        const int32_t ix = g->ix0 + kx;
        const int in = ix >= 0 && ix < p->in_w;
        for (int32_t c = 0; c < in_c; c++) tmp[kx * in_c + c] = in ? g->input[at + kx * in_c + c] : zp;
      }
    widen_seg(tb + 3 * hp * ky, 3, src, 2 * hp);
    sg[ky] = src[seg - 1];
  }
  if (seg & 1) singles(tb + 3 * hp * k_h, sg, 1, k_h);
}

/* Kernel rows of 3 pixels into the im2col, words 3t + s (ts_widen3_rows, below). */
void ts_widen3_rows(uint32_t *d, const int8_t *x, int32_t step, int32_t n, int32_t rows,
                    int32_t row);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
/* r0 = d, r1 = x, r2 = step, r3 = n, [sp] = rows, [sp, #4] = row. x, x1, x2 in r1-r3, the
 * row's end in r10, rows in r11, n in r12, row - n in lr. */
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_widen3_rows,\"ax\",%progbits\n\t"
    ".global ts_widen3_rows\n\t"
    ".hidden ts_widen3_rows\n\t"
    ".type ts_widen3_rows, %function\n\t"
    ".thumb\n\t"
    ".p2align 2\n\t"
    ".thumb_func\n"
    "ts_widen3_rows:\n\t"
    "push {r4-r11, lr}\n\t"
    "ldrd r11, lr, [sp, #36]\n\t"
    "mov r12, r3\n\t"
    "sub lr, lr, r3\n\t"
    "add r3, r1, r2, lsl #1\n\t"
    "add r2, r1, r2\n"
    "1:\n\t"
    "add r10, r1, r12\n"
    "2:\n\t"
    "ldr r9, [r3], #4\n\t"
    "ldr r8, [r2], #4\n\t"
    "ldr r7, [r1], #4\n\t"
    "sxtb16 r4, r7\n\t"
    "sxtb16 r5, r8\n\t"
    "sxtb16 r6, r9\n\t"
    "sxtb16 r7, r7, ror #8\n\t"
    "sxtb16 r8, r8, ror #8\n\t"
    "sxtb16 r9, r9, ror #8\n\t"
    "stm r0!, {r4-r9}\n\t"
    "cmp r1, r10\n\t"
    "bne 2b\n\t"
    "add r1, r1, lr\n\t"
    "add r2, r2, lr\n\t"
    "add r3, r3, lr\n\t"
    "subs r11, r11, #1\n\t"
    "bne 1b\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size ts_widen3_rows, .-ts_widen3_rows\n\t"
    ".text\n");
#else
void ts_widen3_rows(uint32_t *d, const int8_t *x, int32_t step, int32_t n, int32_t rows,
                    int32_t row) {
  for (; rows > 0; rows--, x += row, d += 3 * (n >> 1))
    for (int32_t s = 0; s < 3; s++) widen_seg(d + s, 3, x + s * step, n);
}
#endif

/* How many groups of 3 pixels from the cursor on lie in its output row with every tap
 * inside the input (0 if the cursor's group does not, or seg % 4 is 2 or 3: those fields
 * go pixel by pixel). */
static int32_t fast_groups(const cursor_t *g) {
  const ts_conv_params_t *p = g->p;
  const int32_t lim = p->in_w - p->k_w - g->ix0; /* a pixel's ix0 offset at most this */
  if (g->iy0 < 0 || g->iy0 + (p->k_h - 1) * p->dil_h >= p->in_h || g->ix0 < 0 ||
      lim < 2 * p->stride_w || (g->seg & 2) || g->seg < 4)
    return 0;
  const int32_t n = (p->out_w - g->ox) / 3, m = (lim / p->stride_w - 2) / 3 + 1;
  return n < m ? n : m;
}

/* The fields of 3 pixels of one output row, all inside, the first at x, into tb (seg % 4
 * is 0 or 1, seg >= 4: the rows' pairs are consecutive, then the singles). */
static void group3(const cursor_t *g, uint32_t *tb, const int8_t *x) {
  const ts_conv_params_t *p = g->p;
  const int32_t step = p->stride_w * p->in_c; /* from one pixel's field to the next's */
  const int32_t seg = g->seg, hp = g->hp, k_h = p->k_h;
  ts_widen3_rows(tb, x, step, 2 * hp, k_h, g->row);
  if (seg & 1) { /* singles() of the 3 pixels, a kernel row at a time */
    const int8_t *xs = x + seg - 1;
    const int32_t H = (k_h + 1) >> 1, row = g->row;
    uint32_t *w = tb + 3 * hp * k_h;
    for (int32_t ky = 0; ky < H; ky++, xs += row, w += 3)
      w[0] = (uint16_t)xs[0], w[1] = (uint16_t)xs[step], w[2] = (uint16_t)xs[2 * step];
    w = tb + 3 * hp * k_h;
    for (int32_t ky = H; ky < k_h; ky++, xs += row, w += 3) {
      w[0] |= (uint32_t)(uint16_t)xs[0] << 16;
      w[1] |= (uint32_t)(uint16_t)xs[step] << 16;
      w[2] |= (uint32_t)(uint16_t)xs[2 * step] << 16;
    }
  }
}

/* The next nv (1..3) output pixels' fields into the im2col buffer; unused slots zeroed. */
static __attribute__((noinline)) void im2col3(cursor_t *g, uint32_t *tb, int8_t *tmp, int32_t nv, int32_t np) {
  if (nv == 3 && fast_groups(g) > 0) {
    group3(g, tb, g->input + g->at);
    cursor_next(g, 3);
    return;
  }
  for (int32_t s = 0; s < 3; s++) {
    if (s >= nv) {
      fill_words(tb + s, 3, np, 0); /* an unused slot */
      continue;
    }
    im2col(g, tb + s, tmp);
    cursor_next(g, 1);
  }
}

/* Values [v0, v0 + kv) of kernel row ky of the cursor pixel's field (one chunk, see
 * conv_chunked) into slot s of the 3-pixel im2col buffer (tb + s); taps outside the input
 * read the zero point. Chunks start at a multiple of 4 of the row, so widen_seg pairs them
 * as it pairs the same values of the whole row. */
static void im2col_chunk(const cursor_t *g, uint32_t *tb, int8_t *tmp, int32_t ky,
                         int32_t v0, int32_t kv) {
  const ts_conv_params_t *p = g->p;
  const int8_t zp = (int8_t)-p->input_offset;
  const int32_t iy = g->iy0 + ky * p->dil_h, in_c = p->in_c;
  if (iy < 0 || iy >= p->in_h) {
    fill_words(tb, 3, (kv + 1) >> 1, pack16(zp, zp));
    return;
  }
  const int32_t at = g->at + ky * g->row; /* input index of (iy, ix0, 0) */
  if (g->ix0 >= 0 && g->ix0 + p->k_w <= p->in_w) {
    widen_seg(tb, 3, g->input + at + v0, kv);
    return;
  }
  for (int32_t v = v0; v < v0 + kv;) { /* a border pixel: per kernel column */
    const int32_t kx = v / in_c, c = v - kx * in_c, ix = g->ix0 + kx;
    const int32_t n = in_c - c < v0 + kv - v ? in_c - c : v0 + kv - v;
    if (ix >= 0 && ix < p->in_w) __builtin_memcpy(tmp + v - v0, g->input + at + v, (size_t)n);
    else __builtin_memset(tmp + v - v0, zp, (size_t)n);
    v += n;
  }
  widen_seg(tb, 3, tmp, kv);
}

/* Wide receptive fields (a field or its channel block larger than the buffers: 3x3 convs
 * with 64 input channels and more), chunked over the field: the same routine, the same
 * records and im2col layout, for chunks of at most KV values of one kernel row (KV a
 * multiple of 4). Loop order: a block of nb output channels, a tile of 3 * ngt output
 * pixels, the chunks; per chunk the block's records (that chunk's weights) are built and,
 * per group of 3 pixels, the chunk's im2col; each channel pair's 6 int32 accumulators live
 * in the tail of tb between chunks and seed the record's bias words for the next chunk (the
 * routine's "raw" mode). The last chunk stores through the routine's requantization when
 * it can (as the whole-field path does), else C finishes. Same int32 sums as the reference:
 * the input offset folded into the first seed, wrapping adds in a different order. */
static void conv_chunked(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, int8_t *output, uint32_t *wbuf, uint32_t *tb,
                         int8_t *tmp, int32_t nb_max, int32_t KV, int fast) {
  const int32_t seg = p->k_w * p->in_c, K = p->k_h * seg, out_c = p->out_c;
  const int32_t npbmax = (nb_max + 1) >> 1, cpmax = (KV + 1) >> 1;
  uint32_t *const acc = tb + 3 * cpmax; /* [group][pair][6] */
  int32_t ngt = (TWORDS - 3 * cpmax) / (6 * npbmax); /* groups per tile */
  const int32_t npix = p->batches * p->out_h * p->out_w;
  if (ngt > (npix + 2) / 3) ngt = (npix + 2) / 3;
  int32_t seed[TS_OPT_CONV_BLOCK + 1]; /* bias + off * sum w per channel of the block */
  ts_conv2x3_fn *const run = ts_conv2x3_pick(p);
  for (int32_t oc0 = 0; oc0 < out_c; oc0 += nb_max) {
    const int32_t nb = out_c - oc0 < nb_max ? out_c - oc0 : nb_max, npb = (nb + 1) >> 1;
    for (int32_t c = 0; c < nb; c++) { /* doubled, as the widened weights */
      const int8_t *f = filter + (oc0 + c) * K;
      const uint32_t sum = (uint32_t)ts_sum_s8(f, K);
      seed[c] = (int32_t)(2 * ((uint32_t)(bias ? bias[oc0 + c] : 0) + sum * (uint32_t)p->input_offset));
    }
    seed[nb] = 0; /* an odd block's phantom channel */
    cursor_t g0 = {p, input, seg, 0, p->dil_h * p->in_w * p->in_c, 0, 0, 0, 0, 0, 0};
    cursor_row(&g0);
    for (int32_t P0 = 0; P0 < npix; P0 += 3 * ngt) {
      const int32_t ng = (npix - P0 + 2) / 3 < ngt ? (npix - P0 + 2) / 3 : ngt;
      for (int32_t gi = 0; gi < ng; gi++)
        for (int32_t q = 0; q < npb; q++)
          for (int32_t s = 0; s < 6; s++) acc[(gi * npb + q) * 6 + s] = (uint32_t)seed[2 * q + (s & 1)];
      cursor_t g = g0;
      for (int32_t ky = 0; ky < p->k_h; ky++)
        for (int32_t v0 = 0; v0 < seg; v0 += KV) {
          const int32_t kv = seg - v0 < KV ? seg - v0 : KV, cp = (kv + 1) >> 1;
          const int last = ky == p->k_h - 1 && v0 + KV >= seg;
          const int32_t recw = HEAD + 2 * cp + TAIL; /* this chunk's records, consecutive */
          for (int32_t c = 0; c < 2 * npb; c++) { /* this chunk's records */
            uint32_t *r = wbuf + (c >> 1) * recw;
            if (c < nb)
              (void)widen_seg_sum(r + HEAD + (c & 1), 2, filter + (oc0 + c) * K + ky * seg + v0, kv);
            else fill_words(r + HEAD + 1, 2, cp, 0);
            if (last) {
              uint32_t *qw = r + HEAD + 2 * cp + 3 * (c & 1);
              const int32_t oc = oc0 + (c < nb ? c : 0), e = -p->shift[oc];
              qw[0] = (uint32_t)p->mult[oc];
              qw[1] = fast ? ts_rq_dbl_round(e, p->output_offset) : 0;
              qw[2] = (uint32_t)e;
            }
          }
          g = g0;
          for (int32_t gi = 0; gi < ng; gi++) {
            const int32_t P = P0 + 3 * gi, nv = npix - P < 3 ? npix - P : 3;
            for (int32_t s = 0; s < 3; s++) {
              if (s >= nv) {
                fill_words(tb + s, 3, cp, 0);
                continue;
              }
              im2col_chunk(&g, tb + s, tmp, ky, v0, kv);
              cursor_next(&g, 1);
            }
            uint32_t *a = acc + gi * npb * 6;
            for (int32_t q = 0; q < npb; q++) __builtin_memcpy(wbuf + q * recw, a + 6 * q, 24);
            if (last) /* the outputs */
              ts_conv_group(run, tb, wbuf, cp, recw, output + P * out_c + oc0, nv, oc0, nb, fast,
                            p);
            else /* the accumulators back, one call for every pair */
              ts_cm4_conv2x3(tb, wbuf, cp, (int8_t *)a, 0, npb);
          }
        }
      g0 = g;
    }
  }
}

/* The im2col paths: whole field, or chunked (conv_chunked). */
static __attribute__((noinline)) void conv_im2col(const ts_conv_params_t *p, const int8_t *input,
                                                  const int8_t *filter, const int32_t *bias,
                                                  int8_t *output) {
  /* a field: kernel row ky's first 2 hp values as hp pairs, then an odd seg's singles
   * paired across rows (singles(): pair t = rows t and t + H) */
  const int32_t seg = p->k_w * p->in_c, hp = seg >> 1, H = (p->k_h + 1) >> 1;
  const int32_t np = p->k_h * hp + (seg & 1) * H;
  const int32_t rec = HEAD + 2 * np + TAIL, K = p->k_h * seg, out_c = p->out_c;
  /* one stack buffer: the chunked path splits it as [WWORDS weights | TWORDS im2col]; the
   * whole-field path gives the im2col its 3 np words and the weight records the rest, so a
   * short field's block holds more output channels (each im2col serves the whole block) */
  __attribute__((aligned(8))) uint32_t buf[WWORDS + TWORDS];
  int8_t tmp[TS_OPT_CONV_ROWBUF]; /* one border segment: seg <= 2 np < TS_OPT_CONV_ROWBUF */
  const int fast = ts_conv_rq_fast(p); /* the assembly requantizes and stores */
  ts_conv2x3_fn *const run = ts_conv2x3_pick(p);
  /* a clamp beyond SSAT: one pass over the outputs at the end (ts_clamp_pass, exact) */
  const int clamp = p->act_min > -128 || p->act_max < 127;
  const int32_t nout = p->batches * p->out_h * p->out_w * out_c;
  const int32_t wfree = WWORDS + TWORDS - ((3 * np + 1) & ~1); /* whole-field records */
  int32_t block = 3 * np > TWORDS ? 0 : 2 * (wfree / rec); /* output channels per weight block */
  if (block > TS_OPT_CONV_BLOCK) block = TS_OPT_CONV_BLOCK & ~1;
  if (block > out_c) block = out_c;
  /* the whole field does not fit, or only a few channels share each im2col: chunked */
  int32_t cb = CHUNK_BLOCK < (TS_OPT_CONV_BLOCK & ~1) ? CHUNK_BLOCK : (TS_OPT_CONV_BLOCK & ~1);
  if (cb > out_c + (out_c & 1)) cb = out_c + (out_c & 1);
  if (3 * np > TWORDS || block == 0 || block < (cb < CHUNK_MIN ? cb : CHUNK_MIN)) {
    const int32_t npb = (cb + 1) >> 1;
    int32_t cp = (WWORDS / npb - HEAD - TAIL) / 2; /* tap pairs per chunk */
    if (3 * cp + 6 * npb > TWORDS) cp = (TWORDS - 6 * npb) / 3;
    const int32_t KV = (2 * cp) & ~3;
    conv_chunked(p, input, filter, bias, output, buf, buf + WWORDS, tmp, cb, KV, fast);
    if (clamp) ts_clamp_pass(output, nout, p->act_min, p->act_max);
    return;
  }
  const int32_t npix = p->batches * p->out_h * p->out_w;
  { /* blocks of equal size (even, at most `block`): no short last block */
    const int32_t nblk = (out_c + block - 1) / block, eq = (out_c + nblk - 1) / nblk;
    block = eq + (eq & 1) < block ? eq + (eq & 1) : block;
  }
  uint32_t *const wbuf = buf + ((3 * np + 1) & ~1), *const tb = buf;
  for (int32_t oc0 = 0; oc0 < out_c; oc0 += block) {
    const int32_t nb = out_c - oc0 < block ? out_c - oc0 : block;
    for (int32_t c = 0; c < nb + (nb & 1); c++) {
      uint32_t *r = wbuf + (c >> 1) * rec + (c & 1);
      uint32_t *q = r - (c & 1) + HEAD + 2 * np + 3 * (c & 1);
      const int32_t oc = oc0 + c;
      if (c == nb) { /* an odd block's phantom channel: zeros, computed, never stored */
        r[0] = r[2] = r[4] = q[0] = q[1] = q[2] = 0;
        fill_words(r + HEAD, 2, np, 0);
        continue;
      }
      const int8_t *f = filter + oc * K;
      int32_t sum = 0; /* the input offset folded into the bias; summed while widening */
      for (int32_t ky = 0; ky < p->k_h; ky++)
        sum += widen_seg_sum(r + HEAD + 2 * ky * hp, 2, f + ky * seg, 2 * hp);
      for (int32_t t = 0; (seg & 1) && t < H; t++) { /* the singles' pairs, as singles() */
        const int32_t lo = 2 * f[t * seg + seg - 1];
        const int32_t hi = t + H < p->k_h ? 2 * f[(t + H) * seg + seg - 1] : 0;
        r[HEAD + 2 * (p->k_h * hp + t)] = pack16(lo, hi);
        sum += lo + hi;
      }
      /* doubled (sum is of the doubled weights) */
      r[0] = r[2] = r[4] = 2 * (uint32_t)(bias ? bias[oc] : 0) + (uint32_t)sum * (uint32_t)p->input_offset;
      /* the assembly's requantization (used when `fast`, ts_rq_dbl): mult,
       * 2^(e-1) + (out_off << e), e = -shift */
      const int32_t e = -p->shift[oc];
      q[0] = (uint32_t)p->mult[oc];
      q[1] = fast ? ts_rq_dbl_round(e, p->output_offset) : 0;
      q[2] = (uint32_t)e;
    }
    cursor_t g = {p, input, seg, hp, p->dil_h * p->in_w * p->in_c, 0, 0, 0, 0, 0, 0};
    cursor_row(&g);
    for (int32_t P = 0; P < npix; P += 3) {
      const int32_t nv = npix - P < 3 ? npix - P : 3;
      im2col3(&g, tb, tmp, nv, np);
      ts_conv_group(run, tb, wbuf, np, rec, output + P * out_c + oc0, nv, oc0, nb, fast, p);
    }
  }
  if (clamp) ts_clamp_pass(output, nout, p->act_min, p->act_max);
}

void ts_opt_conv2d_s8(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output) {
  if (p->dil_w != 1) {
    ts_plain_conv(p, input, filter, bias, output, 0);
    return;
  }
  /* fast: every shift in [-23, -2]; small: the routine's doubled accumulators need
   * |acc| < 2^29: |bias| <= 2^28 and a field of at most 8192 values (|sum (x + off) w| <=
   * 8192 * 255 * 128 < 2^28); else the plain loops */
  int fast = 1, small = p->k_h * p->k_w * p->in_c <= 8192;
  for (int32_t c = 0; c < p->out_c; c++) {
    fast &= p->shift[c] <= -2 && p->shift[c] >= -23;
    if (bias) small &= bias[c] <= (INT32_C(1) << 28) && bias[c] >= -(INT32_C(1) << 28);
  }
  if (fast && p->in_c == 1 && p->k_h == 3 && p->k_w == 3 && p->dil_h == 1 &&
      p->stride_w == 1 && p->out_w <= TS_DW_PLANES_MAX_W) {
    /* a grayscale 3x3 first layer is a depthwise conv with depth multiplier out_c: the
     * planes routine (5 instructions per 6 MACs, each input widened once for all
     * channels) instead of the im2col's 12 taps per 9-value field */
    ts_dw_params_t d;
    memcpy(&d, p, sizeof *p);
    d.depth_multiplier = p->out_c;
    ts_cm4_dw_planes(&d, input, filter, bias, output, 1, 9);
    if (p->act_min > -128 || p->act_max < 127)
      ts_clamp_pass(output, p->batches * p->out_h * p->out_w * p->out_c, p->act_min, p->act_max);
    return;
  }
  if (!small) {
    ts_plain_conv(p, input, filter, bias, output, 0);
    return;
  }
  if (ts_cm4_conv_pointwise(p, input, filter, bias, output)) return;
  conv_im2col(p, input, filter, bias, output);
}
