/* DEPTHWISE_CONV_2D int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_depthwise_conv2d_s8.
 *
 * 3x3, stride_w 1 or 2, no dilation (the usual depthwise layers), any stride_h, padding and
 * depth multiplier: per input channel a planar int16 copy of the input (x, no offset;
 * padding holds the zero point -off) with a fixed row pitch of PW values, in stripes of up
 * to NROWS rows, written by a Thumb-2 LDRSB/STRH loop (ts_cm4_dw_widen, 3 instructions per
 * value, each value once per stripe and channel); the input offset is folded into the bias:
 * sum (x + off) w = sum x w + off * sum w (int32, wrapping, as the reference's sum).
 * Stride_w 1: per output channel one call of a Thumb-2 routine (ts_cm4_dw3) for all rows of
 * the stripe: 2 neighbouring pixels per pass with the channel's 6 weight words
 * W01 = (w0, w1), W12 = (w1, w2) per kernel row; for A = (r[x], r[x+1]),
 * B = (r[x+2], r[x+3]) (one LDRD):
 *   pixel x:   SMLAD(A, W01) + SMLABT(B, W12)
 *   pixel x+1: SMLATB(A, W01) + SMLAD(B, W12)
 * i.e. 5 instructions per 6 MACs; each output requantized in 7 instructions (TFLM's double
 * rounding as one SMLAL with the output offset folded into the rounding term, ts_dsp.h),
 * 38 instructions per 2 outputs with loads, stores and loop. An odd row width computes a
 * phantom pixel that lands on the next row's first output (computed after it); the last
 * row of the tensor goes through a small buffer instead. Stride_w 2: the same planes and
 * records, a C loop (dw3_s2): per output and kernel row one SMLAD and one multiply-add.
 * Everything else (other kernel shapes, stride_w > 2, dilations, rows wider than the plane
 * (PW - 3 outputs, (PW - 1) / 2 for stride_w 2), a fused activation clamp, a shift outside
 * [-23, -2]) runs the reference kernel.
 * Stack: NROWS * PW * 2 bytes (4 KB) + 64 bytes of channel record + a PW-byte row. */
#include "ts_dsp.h"
#include "ts_kernels.h"

#ifndef TS_OPT_DW_ROWS
#if TS_OPT_CONV_ROWBUF < 1536 /* the check harness's small-buffer build: stripes run too */
#define TS_OPT_DW_ROWS 5
#else
#define TS_OPT_DW_ROWS 32
#endif
#endif
enum { PW = 64 /* int16 per plane row (128 bytes: the assembly's row step) */,
       NROWS = TS_OPT_DW_ROWS };

/* The one out-of-line copy of ts_requant (the kernels' rare paths: C-finished outputs, FC). */
int32_t ts_requant_slow(int32_t acc, int32_t mult, int32_t shift) {
  return ts_requant(acc, mult, shift);
}

/* One channel, rows x npairs pixel pairs: output pixels 2i, 2i + 1 (i < npairs) of a row
 * from the plane q (its first kernel row; kernel rows PW apart) into out[0], out[out_c], ...;
 * then q += npairs * 4 + qstep bytes, out += npairs * 2 * out_c + ostep, next row. rec =
 *   [mult, rnd (output offset folded), sh, out_c, bias, bias, W01 row 0, W12 row 0,
 *    W01 row 1, W12 row 1, W01 row 2, W12 row 2, npairs * 4, qstep, ostep, rows (>= 1)]
 * (rows is counted down in place). */
void ts_cm4_dw3(const int16_t *q, uint32_t *rec, int8_t *out);
/* rows x n values: d[r * PW + i] = s[...], s stepping by step per value and by sskip more
 * per row; g = {step, n >= 1, rows >= 1, sskip}. */
void ts_cm4_dw_widen(int16_t *d, const int8_t *s, const int32_t *g);

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
/* r0 = q, r1 = rec, r2 = out, r3 = end of q's row. Weights of rows 0 and 1 in r4-r7, row 2 loaded
 * per pass into r12/lr; accumulators r8/r9; plane words in r10/r11. 38 instructions per 18
 * MACs. */
#define TS_ROW(off, wa, wb)              \
  "ldrd r10, r11, [r0, #" off "]\n\t"    \
  "smlad r8, r10, " wa ", r8\n\t"        \
  "smlabt r8, r11, " wb ", r8\n\t"       \
  "smlatb r9, r10, " wa ", r9\n\t"       \
  "smlad r9, r11, " wb ", r9\n\t"
#define TS_RQ(acc)                        \
  "and lr, " acc ", #0x80000000\n\t"      \
  "orr lr, lr, #0x40000000\n\t"           \
  "add r11, r11, " acc ", asr #31\n\t"    \
  "smlal lr, r11, " acc ", r10\n\t"       \
  "asr r11, r11, r12\n\t"                 \
  "ssat r11, #8, r11\n\t"
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_dw3,\"ax\",%progbits\n\t"
    ".global ts_cm4_dw3\n\t"
    ".hidden ts_cm4_dw3\n\t"
    ".type ts_cm4_dw3, %function\n\t"
    ".thumb\n\t"
    ".thumb_func\n\t"
    ".p2align 2\n"
    "ts_cm4_dw3:\n\t"
    "push {r4-r11, lr}\n\t"
    "ldr r3, [r1, #48]\n\t"
    "add r3, r3, r0\n\t"
    "ldrd r4, r5, [r1, #24]\n\t"
    "ldrd r6, r7, [r1, #32]\n"
    "1:\n\t"
    "ldrd r8, r9, [r1, #16]\n\t"
    TS_ROW("0", "r4", "r5")
    TS_ROW("128", "r6", "r7")
    "ldrd r12, lr, [r1, #40]\n\t"
    TS_ROW("256", "r12", "lr")
    "adds r0, r0, #4\n\t"
    "ldm r1, {r10, r11, r12}\n\t" /* mult, rnd, sh */
    TS_RQ("r8")
    "strb r11, [r2]\n\t"
    "ldr r11, [r1, #4]\n\t"
    TS_RQ("r9")
    "ldr r8, [r1, #12]\n\t" /* out_c */
    "strb r11, [r2, r8]\n\t"
    "add r2, r2, r8, lsl #1\n\t"
    "cmp r0, r3\n\t"
    "bne 1b\n\t"
    "add lr, r1, #48\n\t"
    "ldm lr, {r8-r11}\n\t" /* npairs * 4, qstep, ostep, rows */
    "add r0, r0, r9\n\t"
    "add r2, r2, r10\n\t"
    "add r3, r0, r8\n\t"
    "subs r11, r11, #1\n\t"
    "str r11, [r1, #60]\n\t"
    "bne 1b\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size ts_cm4_dw3, .-ts_cm4_dw3\n\t"
    ".text\n");
/* r0 = d, r1 = s, r2 = g. Per row: n % 4 values first (LSLS #31: bit 0 in N, bit 1 in C;
 * LDRSB/STRH/ADD leave the flags alone), then 4 values per pass: 4 LDRSB, 4 STRH, 2 ADD,
 * SUBS, BNE (3 instructions per value). */
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_dw_widen,\"ax\",%progbits\n\t"
    ".global ts_cm4_dw_widen\n\t"
    ".hidden ts_cm4_dw_widen\n\t"
    ".type ts_cm4_dw_widen, %function\n\t"
    ".thumb\n\t"
    ".thumb_func\n\t"
    ".p2align 2\n"
    "ts_cm4_dw_widen:\n\t"
    "push {r4-r8}\n\t"
    "ldm r2, {r2-r5}\n" /* step, n, rows, sskip */
    "1:\n\t"
    "lsls r6, r3, #31\n\t"
    "bpl 2f\n\t"
    "ldrsb r7, [r1]\n\t"
    "add r1, r1, r2\n\t"
    "strh r7, [r0], #2\n"
    "2:\n\t"
    "bcc 3f\n\t"
    "ldrsb r7, [r1]\n\t"
    "ldrsb r8, [r1, r2]\n\t"
    "add r1, r1, r2, lsl #1\n\t"
    "strh r7, [r0], #2\n\t"
    "strh r8, [r0], #2\n"
    "3:\n\t"
    "lsrs r6, r3, #2\n\t"
    "beq 5f\n"
    "4:\n\t"
    "ldrsb r7, [r1]\n\t"
    "ldrsb r8, [r1, r2]\n\t"
    "add r1, r1, r2, lsl #1\n\t"
    "strh r7, [r0], #2\n\t"
    "strh r8, [r0], #2\n\t"
    "ldrsb r7, [r1]\n\t"
    "ldrsb r8, [r1, r2]\n\t"
    "add r1, r1, r2, lsl #1\n\t"
    "strh r7, [r0], #2\n\t"
    "strh r8, [r0], #2\n\t"
    "subs r6, r6, #1\n\t"
    "bne 4b\n"
    "5:\n\t"
    "add r1, r1, r5\n\t"
    "add r0, r0, #128\n\t"
    "sub r0, r0, r3, lsl #1\n\t"
    "subs r4, r4, #1\n\t"
    "bne 1b\n\t"
    "pop {r4-r8}\n\t"
    "bx lr\n\t"
    ".size ts_cm4_dw_widen, .-ts_cm4_dw_widen\n\t"
    ".text\n");
#undef TS_ROW
#undef TS_RQ
#else
static inline int32_t lo16s(uint32_t v) { return (int32_t)(int16_t)(v & 0xffffu); }
static inline int32_t hi16s(uint32_t v) { return (int32_t)(int16_t)(v >> 16); }

void ts_cm4_dw3(const int16_t *q, uint32_t *rec, int8_t *out) {
  const int32_t out_c = (int32_t)rec[3], npairs = (int32_t)rec[12] / 4;
  for (int32_t i = 0;; i++, q += 2, out += 2 * out_c) {
    if (i == npairs) {
      q += (int32_t)rec[13] / 2, out += (int32_t)rec[14], i = 0;
      if (--rec[15] == 0) return;
    }
    int32_t a0 = (int32_t)rec[4], a1 = (int32_t)rec[5];
    for (int32_t ky = 0; ky < 3; ky++) {
      uint32_t A, B;
      __builtin_memcpy(&A, q + ky * PW, 4);
      __builtin_memcpy(&B, q + ky * PW + 2, 4);
      const uint32_t wa = rec[6 + 2 * ky], wb = rec[7 + 2 * ky];
      a0 = ts_smlad(A, wa, a0);
      a0 = (int32_t)((uint32_t)a0 + (uint32_t)(lo16s(B) * hi16s(wb)));
      a1 = (int32_t)((uint32_t)a1 + (uint32_t)(hi16s(A) * lo16s(wa)));
      a1 = ts_smlad(B, wb, a1);
    }
    out[0] = (int8_t)ts_rq_words(a0, rec);
    out[out_c] = (int8_t)ts_rq_words(a1, rec);
  }
}

void ts_cm4_dw_widen(int16_t *d, const int8_t *s, const int32_t *g) {
  for (int32_t r = 0; r < g[2]; r++, d += PW, s += g[3])
    for (int32_t i = 0; i < g[1]; i++, s += g[0]) d[i] = *s;
}
#endif

static inline uint32_t pack16(int32_t lo, int32_t hi) {
  return (uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16;
}

/* stride_w 2 (in C): output pixel x of a row reads plane columns 2x .. 2x + 2, per kernel
 * row one SMLAD (w0, w1) and one multiply-add (w2); rec as for ts_cm4_dw3 (the rows of the
 * plane sh * PW apart). */
static void dw3_s2(const int16_t *q, const uint32_t *rec, int8_t *out, int32_t out_w,
                   int32_t sh, int32_t rows) {
  const int32_t out_c = (int32_t)rec[3], bias = (int32_t)rec[4];
  const uint32_t w0 = rec[6], w1 = rec[8], w2 = rec[10]; /* (w0, w1) of kernel rows 0..2 */
  const int32_t v0 = (int16_t)(rec[7] >> 16), v1 = (int16_t)(rec[9] >> 16),
                v2 = (int16_t)(rec[11] >> 16); /* w2 of kernel rows 0..2 */
  for (int32_t r = 0; r < rows; r++, q += sh * PW)
    for (int32_t x = 0; x < out_w; x++, out += out_c) {
      const int16_t *t = q + 2 * x;
      uint32_t a = (uint32_t)ts_smlad(ts_ld32(t), w0, bias) + (uint32_t)(t[2] * v0);
      a = (uint32_t)ts_smlad(ts_ld32(t + PW), w1, (int32_t)a) + (uint32_t)(t[PW + 2] * v1);
      a = (uint32_t)ts_smlad(ts_ld32(t + 2 * PW), w2, (int32_t)a) + (uint32_t)(t[2 * PW + 2] * v2);
      *out = (int8_t)ts_rq_words((int32_t)a, rec); /* wrapping sums, as the reference's */
    }
}

void ts_opt_depthwise_conv2d_s8(const ts_dw_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output) {
  const int32_t out_w = p->out_w, out_c = p->out_c, in_c = p->in_c, dm = p->depth_multiplier;
  const int32_t sh = p->stride_h, s2 = p->stride_w == 2;
  const int32_t n = s2 ? 2 * out_w + 1 : out_w + 3; /* plane columns the pixels read */
  int ok = p->k_h == 3 && p->k_w == 3 && p->stride_w <= 2 && p->dil_h == 1 && p->dil_w == 1 &&
           n <= PW && p->act_min == -128 && p->act_max == 127;
  for (int32_t c = 0; c < out_c; c++) ok &= p->shift[c] <= -2 && p->shift[c] >= -23;
  if (!ok) {
    ts_ref_depthwise_conv2d_s8(p, input, filter, bias, output);
    return;
  }
  __attribute__((aligned(8))) int16_t plane[NROWS * PW];
  uint32_t rec[16];
  int8_t tail[PW];
  const int8_t zp = (int8_t)-p->input_offset; /* the plane holds x; the offset is in the bias */
  const int32_t per = (NROWS - 3) / sh + 1; /* output rows per stripe */
  const int32_t e = p->pad_w + p->in_w < n ? p->pad_w + p->in_w : n; /* input columns end */
  for (int32_t b = 0; b < p->batches; b++) {
    const int8_t *in_b = input + b * p->in_h * p->in_w * in_c;
    for (int32_t oy0 = 0; oy0 < p->out_h; oy0 += per) {
      const int32_t no = p->out_h - oy0 < per ? p->out_h - oy0 : per;
      const int32_t rows = (no - 1) * sh + 3, y0 = oy0 * sh - p->pad_h;
      int8_t *out_s = output + ((b * p->out_h + oy0) * out_w) * out_c;
      /* the padding, the same for every channel; rows ra..rb - 1, columns pad_w..e - 1 are
       * the input's (widened per channel) */
      const int32_t ra = y0 < 0 ? -y0 : 0, rb = p->in_h - y0 < rows ? p->in_h - y0 : rows;
      const int32_t z[4] = {0, n, rows, 0}; /* every value zp (step 0), then the input */
      ts_cm4_dw_widen(plane, &zp, z);
      const int32_t g[4] = {in_c, e - p->pad_w, rb - ra, (p->in_w - (e - p->pad_w)) * in_c};
      /* an odd row computes a phantom pixel into the next row's first (computed after it);
       * the very last row of the output goes through tail */
      const int last = !s2 && (out_w & 1) && b == p->batches - 1 && oy0 + no == p->out_h;
      for (int32_t ic = 0; ic < in_c; ic++) {
        if (g[1] > 0 && g[2] > 0)
          ts_cm4_dw_widen(plane + ra * PW + p->pad_w, in_b + (y0 + ra) * p->in_w * in_c + ic, g);
        for (int32_t oc = ic * dm; oc < (ic + 1) * dm; oc++) {
          const int8_t *f = filter + oc;
          uint32_t sw = 0; /* sum (x + off) w = sum x w + off * sum w (int32, wrapping) */
          for (int32_t k = 0; k < 9; k++) sw += (uint32_t)f[k * out_c];
          const int32_t rs = -p->shift[oc] - 1;
          rec[0] = (uint32_t)p->mult[oc];
          rec[1] = (uint32_t)(((INT32_C(1) << rs) >> 1) + p->output_offset * (INT32_C(1) << rs));
          rec[2] = (uint32_t)rs;
          rec[3] = (uint32_t)out_c;
          rec[4] = rec[5] = (uint32_t)(bias ? bias[oc] : 0) + sw * (uint32_t)p->input_offset;
          for (int32_t ky = 0; ky < 3; ky++) {
            const int8_t *w = f + 3 * ky * out_c;
            rec[6 + 2 * ky] = pack16(w[0], w[out_c]);
            rec[7 + 2 * ky] = pack16(w[out_c], w[2 * out_c]);
          }
          rec[12] = (uint32_t)((out_w + 1) >> 1) * 4;
          rec[13] = (uint32_t)(sh * PW * 2) - rec[12];
          rec[14] = (uint32_t)(-(out_w & 1) * out_c);
          rec[15] = (uint32_t)(no - last);
          int8_t *o = out_s + oc;
          if (s2) {
            dw3_s2(plane, rec, o, out_w, sh, no);
            continue;
          }
          if (rec[15]) ts_cm4_dw3(plane, rec, o);
          if (last) {
            rec[3] = rec[15] = 1;
            ts_cm4_dw3(plane + (no - 1) * sh * PW, rec, tail);
            o += (no - 1) * out_w * out_c;
            for (int32_t x = 0; x < out_w; x++) o[x * out_c] = tail[x];
          }
        }
      }
    }
  }
}
