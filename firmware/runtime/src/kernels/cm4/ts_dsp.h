/* The few Cortex-M4 DSP instructions the optimized kernels use, and the exact
 * requantization they share.
 *
 * On a core with the DSP extension (__ARM_FEATURE_DSP) these are the ACLE intrinsics of
 * <arm_acle.h>; elsewhere (the native host build the tests run) they are portable C with
 * the same results, so the host tests exercise the very code path the M4 runs. */
#ifndef TS_DSP_H
#define TS_DSP_H

#include <stdint.h>
#include <string.h>

#include "ts_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
/* SXTB16: bytes 0 and 2 sign-extended into two int16 halves. */
static inline uint32_t ts_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int32_t)x); }
/* SXTB16 of x rotated right by 8: bytes 1 and 3. */
static inline uint32_t ts_sxtb16_ror8(uint32_t x) {
  uint32_t r; /* one instruction; GCC 12 would emit a separate ROR for the ACLE form */
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
/* SADD16: two independent int16 additions (wrapping). */
static inline uint32_t ts_sadd16(uint32_t a, uint32_t b) {
  return (uint32_t)__sadd16((int32_t)a, (int32_t)b);
}
/* SXTAB16: a + SXTB16(x), lane by lane (int16, wrapping); and the same of x rotated by 8. */
static inline uint32_t ts_sxtab16(uint32_t a, uint32_t x) {
  return (uint32_t)__sxtab16((int32_t)a, (int32_t)x);
}
static inline uint32_t ts_sxtab16_ror8(uint32_t a, uint32_t x) {
  uint32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r;
}
/* SMLAD: acc + a.lo * b.lo + a.hi * b.hi. */
static inline int32_t ts_smlad(uint32_t a, uint32_t b, int32_t acc) {
  return __smlad((int32_t)a, (int32_t)b, acc);
}
#else
static inline uint32_t ts_sxtb16(uint32_t x) {
  return (uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xffu) |
         ((uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xffu) << 16);
}
static inline uint32_t ts_sxtb16_ror8(uint32_t x) { return ts_sxtb16((x >> 8) | (x << 24)); }
static inline uint32_t ts_sadd16(uint32_t a, uint32_t b) {
  return (uint32_t)(uint16_t)(a + b) | (((a >> 16) + (b >> 16)) << 16);
}
static inline uint32_t ts_sxtab16(uint32_t a, uint32_t x) { return ts_sadd16(a, ts_sxtb16(x)); }
static inline uint32_t ts_sxtab16_ror8(uint32_t a, uint32_t x) {
  return ts_sadd16(a, ts_sxtb16_ror8(x));
}
static inline int32_t ts_smlad(uint32_t a, uint32_t b, int32_t acc) {
  const int32_t lo = (int32_t)(int16_t)(a & 0xffffu) * (int32_t)(int16_t)(b & 0xffffu);
  const int32_t hi = (int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16);
  return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi);
}
#endif

/* Per-byte signed max / min of 4 packed int8 (SSUB8 sets the GE flags, SEL picks). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
static inline uint32_t ts_smax8x4(uint32_t a, uint32_t b) {
  (void)__ssub8((int32_t)a, (int32_t)b);
  return (uint32_t)__sel((int32_t)a, (int32_t)b);
}
static inline uint32_t ts_smin8x4(uint32_t a, uint32_t b) {
  (void)__ssub8((int32_t)a, (int32_t)b);
  return (uint32_t)__sel((int32_t)b, (int32_t)a);
}
#else
static inline uint32_t ts_bytewise(uint32_t a, uint32_t b, int max) {
  uint32_t r = 0;
  for (int i = 0; i < 32; i += 8) {
    const int8_t x = (int8_t)(a >> i), y = (int8_t)(b >> i);
    const int8_t m = max ? (x >= y ? x : y) : (x >= y ? y : x);
    r |= (uint32_t)(uint8_t)m << i;
  }
  return r;
}
static inline uint32_t ts_smax8x4(uint32_t a, uint32_t b) { return ts_bytewise(a, b, 1); }
static inline uint32_t ts_smin8x4(uint32_t a, uint32_t b) { return ts_bytewise(a, b, 0); }
#endif

/* An unaligned 32-bit load (one LDR on the M4, which allows unaligned word loads). */
static inline uint32_t ts_ld32(const void *p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

/* Exactly ts_mbqm(acc, mult, shift) (TFLM's double rounding), in one 64-bit multiply-add
 * and one shift (SMLAL + ASR on the M4) instead of ~25 instructions:
 *  - SRDHM(a, m) = trunc((a*m + nudge) / 2^31), nudge = +-2^30 by the sign of a*m, equals
 *    floor((a*m + 2^30) / 2^31) for every a*m (m >= 0 never hits the saturating case);
 *  - RoundingDivideByPOT(x, e), rounding half away from zero, equals
 *    floor((x + 2^(e-1) - [x < 0]) / 2^e) for e >= 1; and floor(floor(y/2^31) + c)/2^e)
 *    = floor((y + c*2^31) / 2^(31+e)), so both roundings fold into one nudge:
 *      out = (a*m + 2^30 + 2^(30+e) - [a < 0]*2^31) >> (31 + e).
 *    [x < 0] may be replaced by [a < 0]: they differ only when x = 0, where the result is
 *    0 either way. The 64-bit value is taken >> 32 then >> (e - 1).
 * mult must be >= 0 (ts_quantize_multiplier's output), shift in [-31, 30]. The host test
 * compares it with ts_mbqm on millions of random and edge-case triples. */
static inline int32_t ts_requant(int32_t acc, int32_t mult, int32_t shift) {
  if (__builtin_expect(shift <= -2, 1)) {
    /* e >= 2: 2^(30+e) is a multiple of 2^32, i.e. 2^(e-2) added after the >> 32. The
     * remaining nudge 2^30 - [a < 0] 2^31 is +-2^30. SMLAL, ADD, ASR on the M4. */
    const int32_t e = -shift;
    const int64_t r = (int64_t)acc * mult + (acc < 0 ? -(INT64_C(1) << 30) : (INT64_C(1) << 30));
    return ((int32_t)(r >> 32) + (INT32_C(1) << (e - 2))) >> (e - 1);
  }
  if (shift == -1) /* e = 1 */
    return (int32_t)(((int64_t)acc * mult + (INT64_C(1) << 30) +
                      (acc < 0 ? 0 : (INT64_C(1) << 31))) >> 32);
  /* shift >= 0: multiplier >= 0.5: left shift (wrapping, as TFLM), SRDHM, no division */
  const int32_t a = (int32_t)((uint32_t)acc << shift);
  return (int32_t)(((int64_t)a * mult + (INT64_C(1) << 30)) >> 31);
}

/* SSAT #8: saturate to [-128, 127]. */
static inline int32_t ts_ssat8(int32_t v) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  return __ssat(v, 8);
#else
  return v < -128 ? -128 : v > 127 ? 127 : v;
#endif
}

static inline int8_t ts_clamp_s8(int32_t v, int32_t lo, int32_t hi) {
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return (int8_t)v;
}

/* DEPTHWISE_CONV_2D's planes path (depthwise_conv.c): 3x3, no dilation, stride_w 1, out_w
 * <= TS_DW_PLANES_MAX_W, every shift in [-23, -2]; no clamp (the caller's ts_clamp_pass).
 * Tap (ky, kx) of output channel oc is filter[(3 ky + kx) fk + oc fc]. */
enum { TS_DW_PLANES_MAX_W = 61 };
void ts_cm4_dw_planes(const ts_dw_params_t *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output, int32_t fk, int32_t fc);
/* s[k] = sum over npix pixels (depth apart) of input[pixel * depth + k], k < 4: SXTAB16
 * into int16 partial sums in runs of 256 pixels (mean.c; MEAN and AVERAGE_POOL_2D). */
void ts_cm4_sum_pixels4(const int8_t *input, int32_t npix, int32_t depth, int32_t *s);
int32_t ts_requant_slow(int32_t acc, int32_t mult, int32_t shift); /* ts_requant, not inlined */
int32_t ts_sum_s8(const int8_t *v, int32_t n); /* sum of n int8 values (common.c) */
/* A fused activation's clamp applied to n stored outputs (common.c). */
void ts_clamp_pass(int8_t *out, int32_t n, int32_t lo, int32_t hi);
/* CONV_2D (dm 0) or DEPTHWISE_CONV_2D (dm = its depth multiplier, p = the ts_conv_params_t
 * its parameters start with) as a plain loop nest, for the shapes the fast paths do not take
 * (kernels/cm4/common.c). */
void ts_plain_conv(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                   const int32_t *bias, int8_t *output, int32_t dm);

/* A conv output the fast paths did not store (a partial pixel group, an odd last channel, a
 * fused activation narrower than int8, a shift outside [-23, -2]): the plain sequence. */
static inline int8_t ts_out_slow(int32_t acc, int32_t oc, const ts_conv_params_t *p) {
  return ts_clamp_s8(ts_requant_slow(acc, p->mult[oc], p->shift[oc]) + p->output_offset,
                     p->act_min, p->act_max);
}

/* The assemblies' requantization of one output from a channel's words q = (mult, rnd, sh),
 * rnd = 2^(e-2) + (output offset << sh), sh = e - 1 for a shift -e in [-23, -2]: the 64-bit
 * nudge (hi = sign + rnd, lo = 2^30 | sign bit), SMLAL, ASR, SSAT. The C twin the host
 * builds run in place of the Thumb-2 routines. */
static inline int32_t ts_rq_words(int32_t acc, const uint32_t *q) {
  const int64_t hi_lo = (int64_t)(((uint64_t)(uint32_t)(acc >> 31) << 32) |
                                  (0x40000000u | ((uint32_t)acc & 0x80000000u)));
  const int32_t hi = (int32_t)((uint32_t)((hi_lo + (int64_t)acc * (int32_t)q[0]) >> 32) + q[1]);
  return ts_ssat8(hi >> (int32_t)q[2]);
}

/* The same requantization from a doubled accumulator acc2 = 2 acc (|acc| < 2^30, e.g. from
 * weights and bias stored doubled) and words q = (mult, rnd2, e), rnd2 = 2^(e-1) + (output
 * offset << e), e = -shift in [1, 23]: SRDHM(acc, m) = floor((acc m + 2^30) / 2^31) (the
 * proof above) = floor((acc2 m + 2^31) / 2^32), i.e. SMMLAR's rounding, and the second
 * rounding with the offset folded is floor((x + rnd2 - [acc < 0]) / 2^e). On the M4: ADD
 * (rnd2 + acc2 ASR 31), SMMLAR, ASR, SSAT; 4 instructions instead of 6. No int32 sum
 * overflows for |acc| < 2^30: |x| < 2^30 and |rnd2| <= 2^30. The C twin of the assembly. */
static inline int32_t ts_rq_dbl(int32_t acc2, const uint32_t *q) {
  const int64_t prod = (int64_t)acc2 * (int32_t)q[0] + (INT64_C(1) << 31);
  const uint32_t t = (uint32_t)(int32_t)(prod >> 32) + q[1] + (uint32_t)(acc2 >> 31);
  return ts_ssat8((int32_t)t >> (int32_t)q[2]);
}

/* ts_rq_dbl without the sign term: the same output as ts_rq_dbl after a clamp to act_min
 * whenever act_min >= the output offset (a fused ReLU / ReLU6 / ReLU_N1 as TFLM computes
 * it: act_min = the output zero point). Proof: the terms differ only for acc < 0, where
 * x = SRDHM(acc, m) <= 0 (m >= 0), so both roundings of x / 2^e are <= 0 and both outputs
 * are <= the output offset <= act_min (SSAT keeps them so): the clamp gives act_min to
 * both. One instruction less per output (SMMLAR, ASR, SSAT). */
static inline int32_t ts_rq_dbl_relu(int32_t acc2, const uint32_t *q) {
  const int64_t prod = (int64_t)acc2 * (int32_t)q[0] + (INT64_C(1) << 31);
  const uint32_t t = (uint32_t)(int32_t)(prod >> 32) + q[1];
  return ts_ssat8((int32_t)t >> (int32_t)q[2]);
}

/* CONV_2D's shared pieces (conv.c, conv_pointwise.c). ts_cm4_conv2x3: npairs channel
 * pairs (records r, r + rec, ...: consecutive, rec = HEAD + 2 np + TAIL words:
 * [bias a, bias b, bias a, bias b, bias a, bias b | a pair 0, b pair 0, a pair 1, ... |
 * mult a, rnd a, e a, mult b, rnd b, e b]) x pixels 0..2 of the im2col x (word 3 t + s =
 * int16 pair t of pixel s): A = bias word + sum over np tap pairs t of SMLAD(x[3t + s],
 * weight pair t), where the caller has doubled one side (A = 2 acc, |acc| < 2^29). Then, if
 * out_c != 0, out[s * out_c + 2q] = ts_rq_dbl(A, words of channel a) for channel a of
 * pair q, and out[s * out_c + 2q + 1] likewise for b; if out_c == 0, pair q's accumulators
 * (a0, b0, a1, b1, a2, b2) are stored as int32 at out + 24 q (4-byte aligned). */
enum { TS_CONV_HEAD = 6, TS_CONV_TAIL = 6 };
void ts_cm4_conv2x3(const uint32_t *x, const uint32_t *r, int32_t np, int8_t *out,
                    int32_t out_c, int32_t npairs);
/* The same, requantizing with ts_rq_dbl_relu: for layers whose act_min >= output offset. */
void ts_cm4_conv2x3_relu(const uint32_t *x, const uint32_t *r, int32_t np, int8_t *out,
                         int32_t out_c, int32_t npairs);
typedef void ts_conv2x3_fn(const uint32_t *x, const uint32_t *r, int32_t np, int8_t *out,
                           int32_t out_c, int32_t npairs);
/* The routine a layer's stored outputs take (its raw mode is the same in both). */
static inline ts_conv2x3_fn *ts_conv2x3_pick(const ts_conv_params_t *p) {
  return p->act_min >= p->output_offset ? ts_cm4_conv2x3_relu : ts_cm4_conv2x3;
}
/* One group of nv (1..3) output pixels (im2col tb) through nb output channels from oc0
 * (records recs, rec words per pair), outputs at o: the routine requantizes and stores the
 * whole pairs when it can (fast: every shift in [-23, -1], nv == 3); the channels from c on
 * come back as accumulators and are finished in C (ts_conv_rest, out of line: ts_out_slow). */
void ts_conv_rest(const uint32_t *tb, const uint32_t *recs, int32_t np, int32_t rec,
                  int8_t *o, int32_t nv, int32_t oc0, int32_t nb, int32_t c,
                  const ts_conv_params_t *p);
static inline void ts_conv_group(ts_conv2x3_fn *run, const uint32_t *tb, const uint32_t *recs,
                                 int32_t np, int32_t rec, int8_t *o, int32_t nv, int32_t oc0,
                                 int32_t nb, int fast, const ts_conv_params_t *p) {
  int32_t c = 0;
  if (fast && nv == 3 && nb >= 2) {
    run(tb, recs, np, o, p->out_c, nb >> 1);
    c = nb & ~1;
  }
  if (c < nb) ts_conv_rest(tb, recs, np, rec, o, nv, oc0, nb, c, p);
}
/* 1x1, stride 1, unpadded convs with in_c % 4 == 0 (conv_pointwise.c); 0: not taken. */
int ts_cm4_conv_pointwise(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, int8_t *output);

/* Every shift in [-23, -1]: ts_cm4_conv2x3 requantizes and stores (ts_rq_dbl). */
static inline int ts_conv_rq_fast(const ts_conv_params_t *p) {
  int fast = 1;
  for (int32_t c = 0; c < p->out_c; c++) fast &= p->shift[c] <= -1 && p->shift[c] >= -23;
  return fast;
}

/* ts_rq_dbl's rounding word for e = -shift in [1, 23]: 2^(e-1) + (output offset << e). */
static inline uint32_t ts_rq_dbl_round(int32_t e, int32_t out_off) {
  return (uint32_t)((INT32_C(1) << (e - 1)) + out_off * (INT32_C(1) << e));
}

#endif /* TS_DSP_H */
