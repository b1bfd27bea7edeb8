/* DEPTHWISE_CONV_2D int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_depthwise_conv2d_s8.
 *
 * Four output channels at a time: per tap, the 4 inputs (one LDR when depth_multiplier is 1)
 * and the 4 weights (one LDR) become int16 pairs with SXTB16/SXTB16-ROR8 (+ the input
 * offset with SADD16), then four per-channel products with SMLABB/SMLATT (plain C the
 * compiler maps to them). Taps in the padding are skipped (they add nothing, as in the
 * reference). The last out_c % 4 channels (and other depth multipliers' inputs) are
 * gathered byte by byte into the same words. */
#include "ts_dsp.h"
#include "ts_kernels.h"

/* The one out-of-line copy of ts_requant (rare shifts in ts_rq_apply, FC outputs). */
int32_t ts_requant_slow(int32_t acc, int32_t mult, int32_t shift) {
  return ts_requant(acc, mult, shift);
}

static inline int32_t lo16(uint32_t v) { return (int32_t)(int16_t)(v & 0xffffu); }
static inline int32_t hi16(uint32_t v) { return (int32_t)v >> 16; }

void ts_opt_depthwise_conv2d_s8(const ts_dw_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output) {
  const uint32_t off2 = (uint32_t)(uint16_t)p->input_offset * 0x10001u;
  const int32_t in_c = p->in_c, out_c = p->out_c, dm = p->depth_multiplier;
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
        const int8_t *in_b = input + b * p->in_h * p->in_w * in_c;
        for (int32_t c = 0; c < out_c; c += 4) {
          const int32_t n = out_c - c < 4 ? out_c - c : 4;
          const int fast = n == 4 && dm == 1;
          int32_t acc[4] = {0, 0, 0, 0};
          for (int32_t ky = ky0; ky < ky1; ky++) {
            const int32_t iy = y0 + p->dil_h * ky;
            for (int32_t kx = kx0; kx < kx1; kx++) {
              const int8_t *px = in_b + (iy * p->in_w + x0 + p->dil_w * kx) * in_c;
              const int8_t *fw = filter + (ky * p->k_w + kx) * out_c + c;
              uint32_t x = 0, w = 0;
              if (fast) {
                x = ts_ld32(px + c);
                w = ts_ld32(fw);
              } else {
                for (int32_t i = 0; i < n; i++) {
                  x |= (uint32_t)(uint8_t)px[(c + i) / dm] << (8 * i);
                  w |= (uint32_t)(uint8_t)fw[i] << (8 * i);
                }
              }
              const uint32_t x02 = ts_sadd16(ts_sxtb16(x), off2);
              const uint32_t x13 = ts_sadd16(ts_sxtb16_ror8(x), off2);
              const uint32_t w02 = ts_sxtb16(w), w13 = ts_sxtb16_ror8(w);
              acc[0] += lo16(x02) * lo16(w02);
              acc[2] += hi16(x02) * hi16(w02);
              acc[1] += lo16(x13) * lo16(w13);
              acc[3] += hi16(x13) * hi16(w13);
            }
          }
          for (int32_t j = 0; j < n; j++) {
            const int32_t oc = c + j;
            /* wrapping add: an extreme bias is not C undefined behaviour (as kernels/ref) */
            const int32_t v = (int32_t)((uint32_t)acc[j] + (uint32_t)(bias ? bias[oc] : 0));
            out[oc] = ts_clamp_s8(ts_requant(v, p->mult[oc], p->shift[oc]) + p->output_offset,
                                  p->act_min, p->act_max);
          }
        }
      }
    }
  }
}
