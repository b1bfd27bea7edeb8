/* MEAN int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_mean_s8 (kernels/ref/mean.c).
 *
 * The common case, a spatial mean of NHWC (axes 1 and 2 reduced, channels kept: global
 * average pooling), sums 4 channels per input word: SXTAB16 and SXTAB16 ROR #8 add bytes
 * (0, 2) and (1, 3) into two pairs of int16 partial sums, 3 instructions per 4 elements.
 * An int16 partial sum holds 256 int8 values without overflow (-128 * 256 = -32768), so the
 * pixels are summed in runs of at most 256 and each run is added into int32 sums. The
 * requantization is the reference kernel's (the sums are the same integers). Any other set
 * of axes, or a depth that is not a multiple of 4, takes a plain loop nest here, int32 sums
 * in the reference's order of outputs (calling ts_ref_mean_s8 would link its 400 bytes into
 * the optimized firmware for this rare case). */
#include "ts_dsp.h"
#include "ts_kernels.h"

enum { RUN = 256 }; /* int8 values an int16 partial sum holds */

/* As the reference kernel: ts_requant_slow is ts_mbqm (TFLM's MultiplyByQuantizedMultiplier),
 * out of line. */
static __attribute__((noinline)) int8_t mean_out(const ts_mean_params_t *p, int32_t sum) {
  const int32_t shifted = (int32_t)((int64_t)sum - (int64_t)p->input_zp * p->count);
  return ts_clamp_s8(ts_requant_slow(shifted, p->mult, p->shift) + p->output_zp, -128, 127);
}

/* Any other axes: per output (kept coordinates, the last axis fastest) the int32 sum over
 * the reduced ones; an axis loop a steps over a reduced axis at once (n = its extent). Out of
 * line, so that the spatial path keeps its registers. */
static __attribute__((noinline)) void mean_any(const ts_mean_params_t *p, const int8_t *input,
                                               int8_t *output) {
  const int32_t *d = p->in_dims;
  int32_t n[4], st[4], s = 1;
  for (int k = 3; k >= 0; k--) st[k] = s, s *= d[k], n[k] = p->reduce[k] ? d[k] : 1;
  for (int32_t a0 = 0; a0 < d[0]; a0 += n[0])
    for (int32_t a1 = 0; a1 < d[1]; a1 += n[1])
      for (int32_t a2 = 0; a2 < d[2]; a2 += n[2])
        for (int32_t a3 = 0; a3 < d[3]; a3 += n[3]) {
          const int8_t *x = input + a0 * st[0] + a1 * st[1] + a2 * st[2] + a3;
          int32_t sum = 0;
          for (int32_t r0 = 0; r0 < n[0]; r0++)
            for (int32_t r1 = 0; r1 < n[1]; r1++)
              for (int32_t r2 = 0; r2 < n[2]; r2++)
                for (int32_t r3 = 0; r3 < n[3]; r3++)
                  sum += x[r0 * st[0] + r1 * st[1] + r2 * st[2] + r3];
          *output++ = mean_out(p, sum);
        }
}

void ts_opt_mean_s8(const ts_mean_params_t *p, const int8_t *input, int8_t *output) {
  const int32_t *d = p->in_dims;
  if (p->reduce[3] || !p->reduce[1] || !p->reduce[2] || (p->reduce[0] && d[0] != 1) ||
      (d[3] & 3)) {
    mean_any(p, input, output);
    return;
  }
  const int32_t depth = d[3], npix = d[1] * d[2];
  for (int32_t b = 0; b < d[0]; b++, input += npix * depth, output += depth) {
    for (int32_t c = 0; c < depth; c += 4) {
      int32_t s[4];
      ts_cm4_sum_pixels4(input + c, npix, depth, s);
      for (int32_t k = 0; k < 4; k++) output[c + k] = mean_out(p, s[k]);
    }
  }
}

void ts_cm4_sum_pixels4(const int8_t *input, int32_t npix, int32_t depth, int32_t *s) {
  s[0] = s[1] = s[2] = s[3] = 0;
  for (int32_t p0 = 0; p0 < npix; p0 += RUN) {
    const int8_t *x = input + p0 * depth;
    const int8_t *const end = x + (npix - p0 < RUN ? npix - p0 : RUN) * depth;
    uint32_t e = 0, o = 0; /* (c, c + 2) and (c + 1, c + 3) partial sums */
    for (; x < end; x += depth) {
      const uint32_t v = ts_ld32(x);
      e = ts_sxtab16(e, v);
      o = ts_sxtab16_ror8(o, v);
    }
    s[0] += (int16_t)e, s[2] += (int16_t)(e >> 16);
    s[1] += (int16_t)o, s[3] += (int16_t)(o >> 16);
  }
}
