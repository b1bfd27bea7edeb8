/* DEPTHWISE_CONV_2D int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_depthwise_conv2d_s8.
 *
 * With depth_multiplier 1, four channels at a time: per tap one LDR of 4 input bytes and one
 * of 4 weights, SXTB16/SXTB16-ROR8 to int16 pairs (input + offset with SADD16), then the
 * four per-channel products with SMLABB/SMLATT (plain C the compiler maps to them).
 * Taps in the padding are skipped (they add nothing, as in the reference). Remaining
 * channels, and other depth multipliers, take the same arithmetic one channel at a time. */
#include "ts_dsp.h"
#include "ts_kernels.h"

static inline int32_t lo16(uint32_t v) { return (int32_t)(int16_t)(v & 0xffffu); }
static inline int32_t hi16(uint32_t v) { return (int32_t)v >> 16; }

void ts_opt_depthwise_conv2d_s8(const ts_dw_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output) {
  const uint32_t off2 = (uint32_t)(uint16_t)p->input_offset * 0x10001u;
  const int32_t in_c = p->in_c, out_c = p->out_c, dm = p->depth_multiplier;
  const int32_t quads = dm == 1 ? in_c & ~3 : 0;
  for (int32_t b = 0; b < p->batches; b++) {
    for (int32_t oy = 0; oy < p->out_h; oy++) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      int32_t ky0 = 0, ky1 = p->k_h; /* taps inside the input rows */
      while (ky0 < ky1 && y0 + p->dil_h * ky0 < 0) ky0++;
      while (ky1 > ky0 && y0 + p->dil_h * (ky1 - 1) >= p->in_h) ky1--;
      for (int32_t ox = 0; ox < p->out_w; ox++) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        int32_t kx0 = 0, kx1 = p->k_w;
        while (kx0 < kx1 && x0 + p->dil_w * kx0 < 0) kx0++;
        while (kx1 > kx0 && x0 + p->dil_w * (kx1 - 1) >= p->in_w) kx1--;
        int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * out_c;
        const int8_t *in_px = input + (b * p->in_h * p->in_w) * in_c;
        for (int32_t c = 0; c < quads; c += 4) {
          int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
          for (int32_t ky = ky0; ky < ky1; ky++) {
            const int32_t iy = y0 + p->dil_h * ky;
            const int8_t *row = in_px + iy * p->in_w * in_c + c;
            const int8_t *frow = filter + ky * p->k_w * out_c + c;
            for (int32_t kx = kx0; kx < kx1; kx++) {
              const uint32_t x = ts_ld32(row + (x0 + p->dil_w * kx) * in_c);
              const uint32_t w = ts_ld32(frow + kx * out_c);
              const uint32_t x02 = ts_sadd16(ts_sxtb16(x), off2);
              const uint32_t x13 = ts_sadd16(ts_sxtb16_ror8(x), off2);
              const uint32_t w02 = ts_sxtb16(w), w13 = ts_sxtb16_ror8(w);
              a0 += lo16(x02) * lo16(w02);
              a2 += hi16(x02) * hi16(w02);
              a1 += lo16(x13) * lo16(w13);
              a3 += hi16(x13) * hi16(w13);
            }
          }
          const int32_t acc[4] = {a0, a1, a2, a3};
          for (int32_t j = 0; j < 4; j++) {
            const int32_t oc = c + j;
            const int32_t v = acc[j] + (bias ? bias[oc] : 0);
            out[oc] = ts_clamp_s8(ts_requant(v, p->mult[oc], p->shift[oc]) + p->output_offset,
                                  p->act_min, p->act_max);
          }
        }
        for (int32_t oc = quads; oc < out_c; oc++) {
          const int32_t ic = oc / dm;
          int32_t acc = bias ? bias[oc] : 0;
          for (int32_t ky = ky0; ky < ky1; ky++) {
            const int32_t iy = y0 + p->dil_h * ky;
            for (int32_t kx = kx0; kx < kx1; kx++) {
              const int32_t ix = x0 + p->dil_w * kx;
              acc += filter[(ky * p->k_w + kx) * out_c + oc] *
                     (in_px[(iy * p->in_w + ix) * in_c + ic] + p->input_offset);
            }
          }
          out[oc] = ts_clamp_s8(ts_requant(acc, p->mult[oc], p->shift[oc]) + p->output_offset,
                                p->act_min, p->act_max);
        }
      }
    }
  }
}
