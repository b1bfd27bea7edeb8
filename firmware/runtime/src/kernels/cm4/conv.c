/* CONV_2D int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_conv2d_s8 (kernels/ref/conv.c).
 *
 * Two output pixels at a time: each pixel's receptive field is copied once (im2col) into an
 * int16 column with the input offset added (taps in the padding become 0, so they add
 * nothing, as in the reference). The column is stored "reordered": every group of 4
 * consecutive taps k..k+3 is laid out as (x0, x2, x1, x3), which is what SXTB16 and
 * SXTB16-ROR8 produce from 4 packed int8 weights. The inner loop then computes 2 output
 * channels x 2 pixels with 4 SXTB16 (weights) + 4 LDR (columns) + 8 SMLAD per 4 taps.
 * The last K % 4 taps are kept in natural order and done with plain multiply-adds.
 *
 * The two columns live on the stack (2 * K int16); a layer with K = k_h * k_w * in_c above
 * TS_OPT_CONV_MAX_K runs the reference kernel instead. */
#include "ts_dsp.h"
#include "ts_kernels.h"

/* Position of flat tap k inside a reordered column. */
static inline int32_t col_pos(int32_t k, int32_t k4) {
  static const uint8_t swap[4] = {0, 2, 1, 3};
  return k < k4 ? (k & ~3) | swap[k & 3] : k;
}

/* The receptive field of output pixel (b, oy, ox) into col[K]. */
static void im2col(const ts_conv_params_t *p, const int8_t *input, int32_t b, int32_t oy,
                   int32_t ox, int16_t *col, int32_t k4) {
  const int32_t in_c = p->in_c;
  const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
  const uint32_t off2 = (uint32_t)(uint16_t)p->input_offset * 0x10001u;
  int32_t k = 0;
  for (int32_t ky = 0; ky < p->k_h; ky++) {
    const int32_t iy = y0 + p->dil_h * ky;
    for (int32_t kx = 0; kx < p->k_w; kx++) {
      const int32_t ix = x0 + p->dil_w * kx;
      if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
        for (int32_t c = 0; c < in_c; c++, k++) col[col_pos(k, k4)] = 0;
        continue;
      }
      const int8_t *in = input + ((b * p->in_h + iy) * p->in_w + ix) * in_c;
      int32_t c = 0;
      if ((k & 3) == 0) { /* group-aligned: 4 taps per word, already reordered */
        for (; c + 4 <= in_c && k + 4 <= k4; c += 4, k += 4) {
          const uint32_t w = ts_ld32(in + c);
          const uint32_t lo = ts_sadd16(ts_sxtb16(w), off2);
          const uint32_t hi = ts_sadd16(ts_sxtb16_ror8(w), off2);
          __builtin_memcpy(col + k, &lo, 4);
          __builtin_memcpy(col + k + 2, &hi, 4);
        }
      }
      for (; c < in_c; c++, k++) col[col_pos(k, k4)] = (int16_t)(in[c] + p->input_offset);
    }
  }
}

static inline int8_t finish(const ts_conv_params_t *p, int32_t acc, int32_t oc) {
  return ts_clamp_s8(ts_requant(acc, p->mult[oc], p->shift[oc]) + p->output_offset,
                     p->act_min, p->act_max);
}

void ts_opt_conv2d_s8(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output) {
  const int32_t K = p->k_h * p->k_w * p->in_c;
  if (K > TS_OPT_CONV_MAX_K) {
    ts_ref_conv2d_s8(p, input, filter, bias, output);
    return;
  }
  const int32_t k4 = K & ~3, out_c = p->out_c;
  const int32_t pixels = p->out_h * p->out_w;
  int16_t cols[2 * TS_OPT_CONV_MAX_K];
  int16_t *const c0 = cols, *const c1 = cols + K;
  for (int32_t b = 0; b < p->batches; b++) {
    int8_t *out_b = output + b * pixels * out_c;
    for (int32_t px = 0; px < pixels; px += 2) {
      const int two = px + 1 < pixels;
      im2col(p, input, b, px / p->out_w, px % p->out_w, c0, k4);
      if (two) im2col(p, input, b, (px + 1) / p->out_w, (px + 1) % p->out_w, c1, k4);
      else __builtin_memcpy(c1, c0, (size_t)K * sizeof(int16_t)); /* computed, not stored */
      int8_t *o0 = out_b + px * out_c, *o1 = o0 + out_c;
      int32_t oc = 0;
      for (; oc + 2 <= out_c; oc += 2) {
        const int8_t *fa = filter + oc * K, *fb = fa + K;
        int32_t a0 = bias ? bias[oc] : 0, b0 = bias ? bias[oc + 1] : 0;
        int32_t a1 = a0, b1 = b0; /* aN: channel oc, bN: oc + 1; N = pixel */
        const int16_t *x0 = c0, *x1 = c1;
        for (int32_t k = 0; k < k4; k += 4, fa += 4, fb += 4, x0 += 4, x1 += 4) {
          const uint32_t wa = ts_ld32(fa), wb = ts_ld32(fb);
          const uint32_t wa02 = ts_sxtb16(wa), wa13 = ts_sxtb16_ror8(wa);
          const uint32_t wb02 = ts_sxtb16(wb), wb13 = ts_sxtb16_ror8(wb);
          const uint32_t p02 = ts_ld32(x0), p13 = ts_ld32(x0 + 2);
          const uint32_t q02 = ts_ld32(x1), q13 = ts_ld32(x1 + 2);
          a0 = ts_smlad(wa02, p02, a0);
          a0 = ts_smlad(wa13, p13, a0);
          b0 = ts_smlad(wb02, p02, b0);
          b0 = ts_smlad(wb13, p13, b0);
          a1 = ts_smlad(wa02, q02, a1);
          a1 = ts_smlad(wa13, q13, a1);
          b1 = ts_smlad(wb02, q02, b1);
          b1 = ts_smlad(wb13, q13, b1);
        }
        for (int32_t k = k4; k < K; k++, fa++, fb++, x0++, x1++) {
          a0 += *fa * *x0;
          b0 += *fb * *x0;
          a1 += *fa * *x1;
          b1 += *fb * *x1;
        }
        o0[oc] = finish(p, a0, oc);
        o0[oc + 1] = finish(p, b0, oc + 1);
        if (two) {
          o1[oc] = finish(p, a1, oc);
          o1[oc + 1] = finish(p, b1, oc + 1);
        }
      }
      for (; oc < out_c; oc++) { /* odd channel count: the last one alone */
        const int8_t *fa = filter + oc * K;
        int32_t a0 = bias ? bias[oc] : 0, a1 = a0;
        for (int32_t k = 0; k < k4; k += 4) {
          const uint32_t wa = ts_ld32(fa + k);
          const uint32_t wa02 = ts_sxtb16(wa), wa13 = ts_sxtb16_ror8(wa);
          a0 = ts_smlad(wa02, ts_ld32(c0 + k), a0);
          a0 = ts_smlad(wa13, ts_ld32(c0 + k + 2), a0);
          a1 = ts_smlad(wa02, ts_ld32(c1 + k), a1);
          a1 = ts_smlad(wa13, ts_ld32(c1 + k + 2), a1);
        }
        for (int32_t k = k4; k < K; k++) {
          a0 += fa[k] * c0[k];
          a1 += fa[k] * c1[k];
        }
        o0[oc] = finish(p, a0, oc);
        if (two) o1[oc] = finish(p, a1, oc);
      }
    }
  }
}
