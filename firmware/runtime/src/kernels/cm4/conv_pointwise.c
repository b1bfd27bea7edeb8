/* CONV_2D int8 1x1 (pointwise: stride 1, no padding, so output pixel i reads input pixel
 * i), in_c a multiple of 4, Cortex-M4: bit-exact with ts_ref_conv2d_s8 (kernels/ref/conv.c).
 *
 * The same routine as the other convs (ts_cm4_conv2x3, conv.c: 2 output channels x 3 pixels,
 * 8 instructions per 12 MACs, 5 per requantized output), fed differently:
 *  - the input offset and the routine's factor 2 go into the activations: each im2col word
 *    holds 2 (x + off) per int16 lane (|2 (x + off)| <= 510), two SXTAB16 per word, built
 *    once per pixel for every output channel. The weights are then only sign-extended
 *    (LDR, SXTB16, SXTB16 ROR 8 per 4; no sum for folding the offset into the bias), and the
 *    bias word is 2 bias.
 *  - loop order: a tile of 3-pixel groups next to one block of channel-pair records in the
 *    buffer; per tile, the blocks' records are built and every group of the tile runs
 *    through them. When every channel's record fits beside the tile they are built once
 *    per call; otherwise once per tile. The split (groups per tile, pairs per block) is the
 *    one with the fewest estimated instructions of widening and routine calls.
 * Outputs the routine cannot store (a group of fewer than 3 pixels, an odd last channel, a
 * shift outside [-23, -1]) come back as accumulators and are finished in C (ts_conv_finish).
 * The buffer is the general path's (the same stack bound). */
#include "ts_dsp.h"
#include "ts_kernels.h"

enum { WORDS = TS_OPT_CONV_WBUF / 2 + TS_OPT_CONV_ROWBUF / 2 };

/* Group of 3 pixels (x0, x1, x2: in_c values each) into d: for values 4j..4j+3, words 6j + s
 * = 2 (x + off) of values (4j, 4j + 2) of pixel s, 6j + 3 + s = values (4j + 1, 4j + 3);
 * off1 = (off, off). On the M4: 3 LDR, 6 SXTAB16 and 6 SADD16 (the doubling), one STM per
 * 12 values. */
__attribute__((noinline)) static void pw_group(uint32_t *d, const int8_t *x0,
                                               const int8_t *x1, const int8_t *x2,
                                               int32_t in_c, uint32_t off1) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
  {
    const int8_t *const end = x0 + in_c;
    register uint32_t e0 __asm__("r4"), e1 __asm__("r5"), e2 __asm__("r6");
    register uint32_t o0 __asm__("r7"), o1 __asm__("r8"), o2 __asm__("r9");
    __asm__ volatile(
        "1:\n\t"
        "ldr %[o2], [%[x2]], #4\n\t"
        "ldr %[o1], [%[x1]], #4\n\t"
        "ldr %[o0], [%[x]], #4\n\t"
        "sxtab16 %[e0], %[off], %[o0]\n\t"
        "sxtab16 %[e1], %[off], %[o1]\n\t"
        "sxtab16 %[e2], %[off], %[o2]\n\t"
        "sxtab16 %[o0], %[off], %[o0], ror #8\n\t"
        "sxtab16 %[o1], %[off], %[o1], ror #8\n\t"
        "sxtab16 %[o2], %[off], %[o2], ror #8\n\t"
        "sadd16 %[e0], %[e0], %[e0]\n\t"
        "sadd16 %[e1], %[e1], %[e1]\n\t"
        "sadd16 %[e2], %[e2], %[e2]\n\t"
        "sadd16 %[o0], %[o0], %[o0]\n\t"
        "sadd16 %[o1], %[o1], %[o1]\n\t"
        "sadd16 %[o2], %[o2], %[o2]\n\t"
        "stm %[d]!, {%[e0], %[e1], %[e2], %[o0], %[o1], %[o2]}\n\t"
        "cmp %[x], %[end]\n\t"
        "bne 1b\n\t"
        : [x] "+&r"(x0), [x1] "+&r"(x1), [x2] "+&r"(x2), [d] "+&r"(d), [e0] "=&r"(e0),
          [e1] "=&r"(e1), [e2] "=&r"(e2), [o0] "=&r"(o0), [o1] "=&r"(o1), [o2] "=&r"(o2)
        : [end] "r"(end), [off] "r"(off1)
        : "cc", "memory");
  }
#else
  for (int32_t i = 0; i < in_c; i += 4, d += 6) {
    const uint32_t v0 = ts_ld32(x0 + i), v1 = ts_ld32(x1 + i), v2 = ts_ld32(x2 + i);
    const uint32_t w[6] = {ts_sxtab16(off1, v0), ts_sxtab16(off1, v1), ts_sxtab16(off1, v2),
                           ts_sxtab16_ror8(off1, v0), ts_sxtab16_ror8(off1, v1),
                           ts_sxtab16_ror8(off1, v2)};
    for (int32_t k = 0; k < 6; k++) d[k] = ts_sadd16(w[k], w[k]);
  }
#endif
}

/* The records of channels oc, oc + 1 (nc = 1: the second is a phantom, a copy of the first,
 * computed and never stored) at r. */
static void pw_record(uint32_t *r, const ts_conv_params_t *p, const int8_t *filter,
                      const int32_t *bias, int32_t oc, int32_t nc, int fast) {
  const int32_t in_c = p->in_c, ob = oc + nc - 1;
  const int8_t *fa = filter + oc * in_c, *fb = filter + ob * in_c;
  r[0] = r[2] = r[4] = bias ? 2 * (uint32_t)bias[oc] : 0;
  r[1] = r[3] = r[5] = bias ? 2 * (uint32_t)bias[ob] : 0;
  uint32_t *d = r + TS_CONV_HEAD;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
  { /* LDR, LDR, 4 SXTB16, STM: 9 instructions per 8 weights */
    const int8_t *const end = fa + in_c;
    /* the STM's list must be ascending: fixed registers */
    register uint32_t t0 __asm__("r4"), t1 __asm__("r5"), t2 __asm__("r6"), t3 __asm__("r7");
    uint32_t va, vb;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[va], [%[fa]], #4\n\t"
        "ldr %[vb], [%[fb]], #4\n\t"
        "sxtb16 %[t0], %[va]\n\t"
        "sxtb16 %[t1], %[vb]\n\t"
        "sxtb16 %[t2], %[va], ror #8\n\t"
        "sxtb16 %[t3], %[vb], ror #8\n\t"
        "stm %[d]!, {%[t0], %[t1], %[t2], %[t3]}\n\t"
        "cmp %[fa], %[end]\n\t"
        "bne 1b\n\t"
        : [fa] "+&r"(fa), [fb] "+&r"(fb), [d] "+&r"(d), [t0] "=&r"(t0), [t1] "=&r"(t1),
          [t2] "=&r"(t2), [t3] "=&r"(t3), [va] "=&r"(va), [vb] "=&r"(vb)
        : [end] "r"(end)
        : "cc", "memory");
  }
#else
  for (int32_t i = 0; i < in_c; i += 4, d += 4) {
    const uint32_t va = ts_ld32(fa + i), vb = ts_ld32(fb + i);
    d[0] = ts_sxtb16(va);
    d[1] = ts_sxtb16(vb);
    d[2] = ts_sxtb16_ror8(va);
    d[3] = ts_sxtb16_ror8(vb);
  }
#endif
  for (int32_t c = 0; c < 2; c++, d += 3) {
    const int32_t o = c ? ob : oc, e = -p->shift[o];
    d[0] = (uint32_t)p->mult[o];
    d[1] = fast ? ts_rq_dbl_round(e, p->output_offset) : 0;
    d[2] = (uint32_t)e;
  }
}

/* 8 input channels (MobileNet's 48x48 8->16 layer: 4 tap pairs per output, where the 2x3
 * routine's per-pair set-up and requantization outweigh its 12 MACs per 8 instructions):
 * pixel by pixel, its 8 inputs widened once into 4 registers (LDM, 4 SXTB16), then every
 * output channel from an 8-word record loaded by one LDM:
 *   [w (0, 2), w (1, 3), w (4, 6), w (5, 7) doubled | bias word | mult, rnd, e]
 * (the bias word 2 bias + off sum 2 w: the input offset folded in, so the inputs are only
 * sign-extended), 4 SMLAD into the bias word, then SMMLAR, ASR, SSAT, STRB: 9 instructions
 * per 8 MACs. Only for layers whose act_min >= the output offset and every shift in
 * [-23, -1] (ts_rq_dbl_relu); out_c a multiple of 4 (4 channels per loop pass); the last
 * record's e carries bit 8 (ASR reads e's low byte), which ends a pixel's channel loop. */
void ts_cm4_pw8(const int8_t *in, const uint32_t *recs, int8_t *out, int32_t npix,
                int32_t out_c);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
/* r0 = in (4-byte aligned), r1 = records, r2 = out, r3 = npix (>= 1), [sp] = out_c.
 * Frame: [sp] in, [sp, #4] records, [sp, #8] the end of out. Inputs in r0-r3, a record in
 * r4-r11, the record pointer in r12, out in lr. */
#define TS_PW8_CH                  \
  "ldm r12!, {r4-r11}\n\t"         \
  "smlad r8, r0, r4, r8\n\t"       \
  "smlad r8, r1, r5, r8\n\t"       \
  "smlad r8, r2, r6, r8\n\t"       \
  "smlad r8, r3, r7, r8\n\t"       \
  "smmlar r8, r8, r9, r10\n\t"     \
  "asr r8, r8, r11\n\t"            \
  "ssat r8, #8, r8\n\t"            \
  "strb r8, [lr], #1\n\t"
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_pw8,\"ax\",%progbits\n\t"
    ".global ts_cm4_pw8\n\t"
    ".hidden ts_cm4_pw8\n\t"
    ".type ts_cm4_pw8, %function\n\t"
    ".thumb\n\t"
    ".p2align 2\n\t"
    ".thumb_func\n"
    "ts_cm4_pw8:\n\t"
    "push {r4-r11, lr}\n\t"
    "sub sp, sp, #16\n\t"
    "ldr r4, [sp, #52]\n\t" /* out_c */
    "mul r3, r3, r4\n\t"
    "add r3, r3, r2\n\t"
    "mov lr, r2\n\t"
    "strd r0, r1, [sp]\n\t"
    "str r3, [sp, #8]\n"
    "1:\n\t"
    "ldr r4, [sp]\n\t"
    "ldm r4!, {r5, r6}\n\t"
    "str r4, [sp]\n\t"
    "sxtb16 r0, r5\n\t"
    "sxtb16 r1, r5, ror #8\n\t"
    "sxtb16 r2, r6\n\t"
    "sxtb16 r3, r6, ror #8\n\t"
    "ldr r12, [sp, #4]\n"
    "2:\n\t"
    TS_PW8_CH TS_PW8_CH TS_PW8_CH TS_PW8_CH
    "tst r11, #256\n\t"
    "beq 2b\n\t"
    "ldr r4, [sp, #8]\n\t"
    "cmp lr, r4\n\t"
    "bne 1b\n\t"
    "add sp, sp, #16\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size ts_cm4_pw8, .-ts_cm4_pw8\n\t"
    ".text\n");
#undef TS_PW8_CH
#else
void ts_cm4_pw8(const int8_t *in, const uint32_t *recs, int8_t *out, int32_t npix,
                int32_t out_c) {
  for (; npix > 0; npix--, in += 8) {
    const uint32_t v0 = ts_ld32(in), v1 = ts_ld32(in + 4);
    const uint32_t x[4] = {ts_sxtb16(v0), ts_sxtb16_ror8(v0), ts_sxtb16(v1), ts_sxtb16_ror8(v1)};
    for (const uint32_t *r = recs; r < recs + 8 * out_c; r += 8) {
      int32_t acc = (int32_t)r[4];
      for (int32_t k = 0; k < 4; k++) acc = ts_smlad(x[k], r[k], acc);
      const uint32_t q[3] = {r[5], r[6], r[7] & 255u};
      *out++ = (int8_t)ts_rq_dbl_relu(acc, q);
    }
  }
}
#endif

/* ts_cm4_pw8's records of every output channel at r (8 words each). */
static void pw8_records(uint32_t *r, const ts_conv_params_t *p, const int8_t *filter,
                        const int32_t *bias) {
  for (int32_t oc = 0; oc < p->out_c; oc++, r += 8, filter += 8) {
    int32_t sum = 0;
    for (int32_t k = 0; k < 2; k++) {
      const uint32_t v = ts_ld32(filter + 4 * k), lo = ts_sxtb16(v), hi = ts_sxtb16_ror8(v);
      r[2 * k] = ts_sadd16(lo, lo);
      r[2 * k + 1] = ts_sadd16(hi, hi);
      sum = ts_smlad(r[2 * k + 1], 0x00010001u, ts_smlad(r[2 * k], 0x00010001u, sum));
    }
    const int32_t e = -p->shift[oc];
    r[4] = 2 * (uint32_t)(bias ? bias[oc] : 0) + (uint32_t)sum * (uint32_t)p->input_offset;
    r[5] = (uint32_t)p->mult[oc];
    r[6] = ts_rq_dbl_round(e, p->output_offset);
    r[7] = (uint32_t)e | (oc == p->out_c - 1 ? 256u : 0u);
  }
}

int ts_cm4_conv_pointwise(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, int8_t *output) {
  const int32_t in_c = p->in_c, out_c = p->out_c, np = in_c / 2;
  const int32_t R = TS_CONV_HEAD + 2 * np + TS_CONV_TAIL, Gw = 3 * np; /* words */
  if ((p->k_h | p->k_w | p->stride_h | p->stride_w) != 1 || (p->pad_h | p->pad_w) != 0 ||
      (in_c & 3) || R + Gw > WORDS)
    return 0;
  __attribute__((aligned(8))) uint32_t buf[WORDS];
  const int fast = ts_conv_rq_fast(p);
  ts_conv2x3_fn *const run = ts_conv2x3_pick(p);
  const int32_t npix = p->batches * p->out_h * p->out_w, ngroups = (npix + 2) / 3;
  if (in_c == 8 && !(out_c & 3) && 8 * out_c <= WORDS && fast &&
      p->act_min >= p->output_offset && !((uintptr_t)input & 3)) { /* ts_rq_dbl_relu holds */
    pw8_records(buf, p, filter, bias);
    ts_cm4_pw8(input, buf, output, npix, out_c);
    if (p->act_min > -128 || p->act_max < 127)
      ts_clamp_pass(output, npix * out_c, p->act_min, p->act_max);
    return 1;
  }
  const int32_t npairs = (out_c + 1) >> 1;
  /* G groups per tile (tiles of equal size), bp pairs per block: the split with the fewest
   * instructions spent outside the routine, estimated as ~9/4 per weight and ~30 per record
   * each time the records are built (once if they all fit, else once per tile) plus ~50 per
   * routine call (one per group and block). More tiles, smaller tiles, larger blocks. */
  int32_t G = 0, bp = 0;
  uint32_t best = UINT32_MAX;
  for (int32_t nt = (ngroups * Gw + (WORDS - R) - 1) / (WORDS - R), n = 0; n < 64; nt++, n++) {
    const int32_t g = (ngroups + nt - 1) / nt;
    int32_t b = (WORDS - g * Gw) / R;
    if (b > npairs) b = npairs;
    if (b < 1) continue; /* a rounded-up tile leaves no room for a pair */
    const uint32_t widen = (uint32_t)npairs * (uint32_t)(9 * in_c / 4 + 30);
    const uint32_t cost = (b == npairs ? 1 : (uint32_t)nt) * widen +
                          50u * (uint32_t)ngroups * (uint32_t)((npairs + b - 1) / b);
    if (cost < best) best = cost, G = g, bp = b;
    if (b == npairs || g == 1) break;
  }
  if (!bp) return 0; /* no split found (cannot happen: g = 1 fits) */
  const int once = bp == npairs; /* every record fits beside a tile: built once */
  uint32_t *const recs = buf + G * Gw;
  const uint32_t o1 = (uint32_t)(uint16_t)p->input_offset, off1 = o1 | o1 << 16;
  for (int32_t g0 = 0; g0 < ngroups; g0 += G) {
    const int32_t ng = ngroups - g0 < G ? ngroups - g0 : G;
    for (int32_t g = 0; g < ng; g++) { /* a short last group repeats its pixel: not stored */
      const int32_t P = 3 * (g0 + g), nv = npix - P < 3 ? npix - P : 3;
      const int8_t *x = input + P * in_c;
      pw_group(buf + g * Gw, x, x + (nv > 1) * in_c, x + (nv > 2) * 2 * in_c, in_c, off1);
    }
    for (int32_t q0 = 0; q0 < npairs; q0 += bp) {
      const int32_t nq = npairs - q0 < bp ? npairs - q0 : bp, oc0 = 2 * q0;
      const int32_t nb = out_c - oc0 < 2 * nq ? out_c - oc0 : 2 * nq; /* channels */
      if (!once || g0 == 0)
        for (int32_t q = 0; q < nq; q++)
          pw_record(recs + q * R, p, filter, bias, oc0 + 2 * q, nb - 2 * q < 2 ? 1 : 2, fast);
      for (int32_t g = 0; g < ng; g++) {
        const int32_t P = 3 * (g0 + g), nv = npix - P < 3 ? npix - P : 3;
        ts_conv_group(run, buf + g * Gw, recs, np, R, output + P * out_c + oc0, nv, oc0, nb, fast,
                      p);
      }
    }
  }
  if (p->act_min > -128 || p->act_max < 127)
    ts_clamp_pass(output, npix * out_c, p->act_min, p->act_max);
  return 1;
}
