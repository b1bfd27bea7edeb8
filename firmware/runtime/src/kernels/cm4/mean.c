/* MEAN int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_mean_s8 (kernels/ref/mean.c).
 *
 * The common case, a spatial mean of NHWC (axes 1 and 2 reduced, channels kept: global
 * average pooling), sums 4 channels per input word: SXTAB16 and SXTAB16 ROR #8 add bytes
 * (0, 2) and (1, 3) into two pairs of int16 partial sums, 3 instructions per 4 elements.
 * An int16 partial sum holds 256 int8 values without overflow (-128 * 256 = -32768), so the
 * pixels are summed in runs of at most 256 and each run is added into int32 sums. The
 * requantization is the reference kernel's (the sums are the same integers). Any other set
 * of axes, or a depth that is not a multiple of 4, runs the reference kernel. */
#include "ts_dsp.h"
#include "ts_kernels.h"

enum { RUN = 256 }; /* int8 values an int16 partial sum holds */

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
static inline uint32_t sxtab16(uint32_t acc, uint32_t x) {
  return (uint32_t)__sxtab16((int32_t)acc, (int32_t)x);
}
static inline uint32_t sxtab16_ror8(uint32_t acc, uint32_t x) {
  uint32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
  return r;
}
#else
static inline uint32_t sxtab16(uint32_t acc, uint32_t x) { return ts_sadd16(acc, ts_sxtb16(x)); }
static inline uint32_t sxtab16_ror8(uint32_t acc, uint32_t x) {
  return ts_sadd16(acc, ts_sxtb16_ror8(x));
}
#endif

/* As the reference kernel: ts_requant_slow is ts_mbqm (TFLM's MultiplyByQuantizedMultiplier),
 * out of line. */
static int8_t mean_out(const ts_mean_params_t *p, int32_t sum) {
  const int32_t shifted = (int32_t)((int64_t)sum - (int64_t)p->input_zp * p->count);
  return ts_clamp_s8(ts_requant_slow(shifted, p->mult, p->shift) + p->output_zp, -128, 127);
}

void ts_opt_mean_s8(const ts_mean_params_t *p, const int8_t *input, int8_t *output) {
  const int32_t *d = p->in_dims;
  if (p->reduce[3] || !p->reduce[1] || !p->reduce[2] || (p->reduce[0] && d[0] != 1) ||
      (d[3] & 3)) {
    ts_ref_mean_s8(p, input, output);
    return;
  }
  const int32_t depth = d[3], npix = d[1] * d[2];
  for (int32_t b = 0; b < d[0]; b++, input += npix * depth, output += depth) {
    for (int32_t c = 0; c < depth; c += 4) {
      int32_t s[4] = {0, 0, 0, 0};
      for (int32_t p0 = 0; p0 < npix; p0 += RUN) {
        const int8_t *x = input + p0 * depth + c;
        const int8_t *const end = x + (npix - p0 < RUN ? npix - p0 : RUN) * depth;
        uint32_t e = 0, o = 0; /* (c, c + 2) and (c + 1, c + 3) partial sums */
        for (; x < end; x += depth) {
          const uint32_t v = ts_ld32(x);
          e = sxtab16(e, v);
          o = sxtab16_ror8(o, v);
        }
        s[0] += (int16_t)e, s[2] += (int16_t)(e >> 16);
        s[1] += (int16_t)o, s[3] += (int16_t)(o >> 16);
      }
      for (int32_t k = 0; k < 4; k++) output[c + k] = mean_out(p, s[k]);
    }
  }
}
