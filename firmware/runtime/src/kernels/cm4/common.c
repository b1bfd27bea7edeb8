/* Helpers the Cortex-M4 kernels share (conv.c, depthwise_conv.c, fully_connected.c,
 * mean.c): the out-of-line requantization of their rare outputs and the plain loop nest of
 * the convolution shapes no fast path takes. */
#include "ts_dsp.h"
#include "ts_kernels.h"

/* The one out-of-line copy of ts_requant (the kernels' rare paths: C-finished outputs, FC). */
int32_t ts_requant_slow(int32_t acc, int32_t mult, int32_t shift) {
  return ts_requant(acc, mult, shift);
}

/* The rare shapes' plain loop nest, the reference's arithmetic (wrapping uint32 sums, the
 * same int32 bits; ts_out_slow's requantization), for CONV_2D (dm 0) and DEPTHWISE_CONV_2D (dm its
 * depth multiplier; p is the ts_conv_params_t its parameters start with): one out-of-line
 * copy instead of linking ts_ref_conv2d_s8 and ts_ref_depthwise_conv2d_s8 for these cases. */
void ts_plain_conv(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                   const int32_t *bias, int8_t *output, int32_t dm) {
  const int32_t nic = dm ? 1 : p->in_c, ftap = dm ? p->out_c : p->in_c; /* per tap */
  const int32_t fstep = dm ? 1 : p->k_h * p->k_w * nic; /* filter step per output channel */
  for (int32_t b = 0; b < p->batches; b++)
    for (int32_t oy = 0; oy < p->out_h; oy++)
      for (int32_t ox = 0; ox < p->out_w; ox++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
        for (int32_t oc = 0; oc < p->out_c; oc++) {
          uint32_t acc = bias ? (uint32_t)bias[oc] : 0;
          const int8_t *fo = filter + oc * fstep;
          const int32_t ic0 = dm ? oc / dm : 0;
          for (int32_t ky = 0; ky < p->k_h; ky++) {
            const int32_t iy = iy0 + p->dil_h * ky;
            if (iy < 0 || iy >= p->in_h) continue;
            const int8_t *row = input + ((b * p->in_h + iy) * p->in_w) * p->in_c + ic0;
            for (int32_t kx = 0; kx < p->k_w; kx++) {
              const int32_t ix = ix0 + p->dil_w * kx;
              if (ix < 0 || ix >= p->in_w) continue;
              const int8_t *in = row + ix * p->in_c, *f = fo + (ky * p->k_w + kx) * ftap;
              for (int32_t ic = 0; ic < nic; ic++)
                acc += (uint32_t)(f[ic] * (in[ic] + p->input_offset));
            }
          }
          *output++ = ts_out_slow((int32_t)acc, oc, p);
        }
      }
}

/* The sum of n int8 values (a filter's, for folding the input offset into the bias): 4 per
 * word, SXTB16 and SMLAD with (1, 1), i.e. about 2 instructions per value instead of 4. */
int32_t ts_sum_s8(const int8_t *v, int32_t n) {
  int32_t s = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32_t x = ts_ld32(v + i);
    s = ts_smlad(ts_sxtb16(x), 0x00010001u, s);
    s = ts_smlad(ts_sxtb16_ror8(x), 0x00010001u, s);
  }
  for (; i < n; i++) s += v[i];
  return s;
}

/* out[i] = clamp(out[i], lo, hi) for n int8 values, 4 per word (SSUB8 + SEL per side). The
 * fast paths store SSAT-8 outputs, clamp(v, -128, 127); with -128 <= lo <= hi <= 127,
 * clamp(clamp(v, -128, 127), lo, hi) == clamp(v, lo, hi): a fused activation (ReLU, ReLU6,
 * a narrow output range) applied afterwards is the reference's single clamp exactly.
 * On the M4 the aligned body runs 16 bytes per pass (LDM, 2 instructions per word and side,
 * STM, 2 of loop): 0.75 instructions per value for a one-sided clamp (ReLU: hi == 127),
 * 1.25 for both sides (was 2.25 with a word per pass), also taken for an upper bound alone. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
#define TS_SIDE(r, op) "ssub8 r12, " r ", %[b]\n\t" op
#define TS_MAX(r) TS_SIDE(r, "sel " r ", " r ", %[b]\n\t") /* r = max(r, b) */
#define TS_LOOP(side, side2)                                                         \
  __asm__ volatile("1:\n\t"                                                          \
                   "ldm %[w], {r4, r5, r6, r8}\n\t" side("r4") side("r5") side("r6")  \
                       side("r8") side2                                              \
                   "stmia %[w]!, {r4, r5, r6, r8}\n\t"                                 \
                   "cmp %[w], %[e]\n\t"                                               \
                   "bne 1b\n\t"                                                        \
                   : [w] "+r"(w)                                                     \
                   : [e] "r"(end), [b] "r"(b), [h] "r"(h4)                           \
                   : "r4", "r5", "r6", "r8", "r12", "cc", "memory")
#define TS_MIN_H(r) "ssub8 r12, " r ", %[h]\n\tsel " r ", %[h], " r "\n\t"
#endif
void ts_clamp_pass(int8_t *out, int32_t n, int32_t lo, int32_t hi) {
  const uint32_t l4 = (uint8_t)lo * 0x01010101u, h4 = (uint8_t)hi * 0x01010101u;
  int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
  for (; i < n && ((uintptr_t)(out + i) & 3u); i++) out[i] = ts_clamp_s8(out[i], lo, hi);
  if (n - i >= 16) {
    uint32_t *w = (uint32_t *)(void *)(out + i);
    const uint32_t *const end = w + ((n - i) >> 4) * 4;
    i += ((n - i) >> 4) * 16;
    if (hi == 127) {
      const uint32_t b = l4;
      TS_LOOP(TS_MAX, "");
    } else { /* both sides (an upper bound alone is rare: ReLU6's range is its output's) */
      const uint32_t b = l4;
      TS_LOOP(TS_MAX, TS_MIN_H("r4") TS_MIN_H("r5") TS_MIN_H("r6") TS_MIN_H("r8"));
    }
  }
#else /* (on the M4 the last n % 16 values, at most 15, go one by one) */
  for (; i + 4 <= n; i += 4) {
    uint32_t v = ts_ld32(out + i);
    v = ts_smin8x4(ts_smax8x4(v, l4), h4);
    __builtin_memcpy(out + i, &v, 4);
  }
#endif
  for (; i < n; i++) out[i] = ts_clamp_s8(out[i], lo, hi);
}
