/* CONV_2D int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_conv2d_s8 (kernels/ref/conv.c).
 *
 * No per-pixel im2col. For each output row (in tiles of output columns that fit the row
 * buffer), the k_h input rows the tile reads are widened once to int16 with the input
 * offset added, padding columns/rows as 0 (0 * w adds nothing, as the reference skips
 * them): row r holds span = (tw - 1) * stride_w + k_w pixels of in_c values, so the taps of
 * output pixel x on kernel row r are the k_w * in_c consecutive values at x * stride_w * in_c.
 * The weights of a block of output channels are widened once per call to int16, each
 * kernel row padded to an even length Lp with a zero weight (so taps go in pairs; the
 * extra tap reads the next buffered value and multiplies it by 0).
 *
 * Inner loop: 2 output channels x 2 neighbouring pixels, per 2 taps 2 LDR weights + 2 LDR
 * inputs + 4 SMLAD (8 MACs). Requantization: ts_rq_apply (TFLM's double rounding exactly,
 * SMLAL-based). Scratch on the stack: 2 * TS_OPT_CONV_WBUF + 2 * TS_OPT_CONV_ROWBUF bytes.
 * Falls back to the reference kernel for dil_w != 1 or a kernel too large for the buffers
 * (3 * k_h * Lp > TS_OPT_CONV_WBUF or k_h * k_w * in_c > TS_OPT_CONV_ROWBUF - 1). */
#include "ts_dsp.h"
#include "ts_kernels.h"

/* n int8 values + offset -> int16, natural order. */
static void widen(const int8_t *src, int32_t n, int32_t offset, int16_t *dst) {
  const uint32_t off2 = (uint32_t)(uint16_t)offset * 0x10001u;
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32_t w = ts_ld32(src + i);
    const uint32_t e = ts_sadd16(ts_sxtb16(w), off2), o = ts_sadd16(ts_sxtb16_ror8(w), off2);
    const uint32_t lo = (e & 0xffffu) | (o << 16), hi = (e >> 16) | (o & 0xffff0000u);
    __builtin_memcpy(dst + i, &lo, 4);
    __builtin_memcpy(dst + i + 2, &hi, 4);
  }
  for (; i < n; i++) dst[i] = (int16_t)(src[i] + offset);
}

static void zero16(int16_t *dst, int32_t n) {
  for (int32_t i = 0; i < n; i++) dst[i] = 0;
}

void ts_opt_conv2d_s8(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output) {
  const int32_t in_c = p->in_c, k_h = p->k_h, k_w = p->k_w, out_c = p->out_c;
  const int32_t L = k_w * in_c, Lp = (L + 1) & ~1, Kp = k_h * Lp;
  const int32_t sx = p->stride_w * in_c; /* buffer values between neighbouring pixels */
  /* output columns per tile: k_h rows of span pixels + 1 slack value fit the row buffer */
  const int32_t room = (TS_OPT_CONV_ROWBUF - 1) / (k_h * in_c) - k_w;
  if (p->dil_w != 1 || 3 * Kp > TS_OPT_CONV_WBUF || room < 0) {
    ts_ref_conv2d_s8(p, input, filter, bias, output);
    return;
  }
  int32_t tw = room / p->stride_w + 1;
  if (tw > p->out_w) tw = p->out_w;
  int32_t block = TS_OPT_CONV_WBUF / Kp - 1; /* output channels per weight block */
  if (block > TS_OPT_CONV_BLOCK) block = TS_OPT_CONV_BLOCK;
  block = block >= out_c ? out_c : block & ~1;
  const int32_t out_off = p->output_offset, lo = p->act_min, hi = p->act_max;
  __attribute__((aligned(8))) int16_t wbuf[TS_OPT_CONV_WBUF];
  __attribute__((aligned(8))) int16_t rows[TS_OPT_CONV_ROWBUF];
  ts_rq_t rq[TS_OPT_CONV_BLOCK + 1]; /* per channel of the block: bias and requantization */
  for (int32_t oc0 = 0; oc0 < out_c; oc0 += block) {
    const int32_t nb = out_c - oc0 < block ? out_c - oc0 : block;
    for (int32_t j = 0; j < nb; j++) {
      for (int32_t r = 0; r < k_h; r++) {
        int16_t *w = wbuf + j * Kp + r * Lp;
        widen(filter + ((oc0 + j) * k_h + r) * L, L, 0, w);
        if (Lp != L) w[L] = 0;
      }
      rq[j] = ts_rq_make(p->mult[oc0 + j], p->shift[oc0 + j], bias ? bias[oc0 + j] : 0);
    }
    if (nb & 1) { /* odd block: a phantom channel of zero weights, computed, not stored */
      zero16(wbuf + nb * Kp, Kp);
      rq[nb] = rq[nb - 1];
    }
    for (int32_t b = 0; b < p->batches; b++) {
      for (int32_t oy = 0; oy < p->out_h; oy++) {
        int8_t *out_row = output + ((b * p->out_h + oy) * p->out_w) * out_c;
        for (int32_t tx = 0; tx < p->out_w; tx += tw) {
          const int32_t n = p->out_w - tx < tw ? p->out_w - tx : tw;
          const int32_t span = (n - 1) * p->stride_w + k_w, rs = span * in_c;
          const int32_t x0 = tx * p->stride_w - p->pad_w;
          /* input columns [a, e) of the span are inside the image */
          const int32_t a = x0 < 0 ? -x0 : 0;
          const int32_t e = x0 + span > p->in_w ? p->in_w - x0 : span;
          for (int32_t r = 0; r < k_h; r++) {
            const int32_t iy = oy * p->stride_h - p->pad_h + r * p->dil_h;
            int16_t *row = rows + r * rs;
            if (iy < 0 || iy >= p->in_h || a >= e) {
              zero16(row, rs);
              continue;
            }
            zero16(row, a * in_c);
            widen(input + ((b * p->in_h + iy) * p->in_w + x0 + a) * in_c, (e - a) * in_c,
                  p->input_offset, row + a * in_c);
            zero16(row + e * in_c, (span - e) * in_c);
          }
          rows[k_h * rs] = 0; /* slack read by the zero weight of an odd-length row */
          for (int32_t px = 0; px < n; px += 2) {
            const int two = px + 1 < n;
            const int16_t *xp = rows + px * sx;
            const int32_t sy = two ? sx : 0; /* pixel 1's taps, relative to pixel 0's */
            int8_t *o0 = out_row + (tx + px) * out_c, *o1 = two ? o0 + out_c : o0;
            for (int32_t j = 0; j < nb; j += 2) {
              const ts_rq_t *qa = &rq[j], *qb = &rq[j + 1];
              const int16_t *w = wbuf + j * Kp, *x = xp;
              int32_t a0 = qa->bias, b0 = qb->bias, a1 = a0, b1 = b0; /* b: channel +1 */
              for (int32_t r = 0; r < k_h; r++, x += rs - Lp) {
                const int16_t *const xe = x + Lp;
                do {
                  const uint32_t va = ts_ld32(w), vb = ts_ld32(w + Kp);
                  const uint32_t vx = ts_ld32(x), vy = ts_ld32(x + sy);
                  a0 = ts_smlad(va, vx, a0);
                  b0 = ts_smlad(vb, vx, b0);
                  a1 = ts_smlad(va, vy, a1);
                  b1 = ts_smlad(vb, vy, b1);
                  w += 2;
                  x += 2;
                } while (x < xe);
              }
              const int32_t oc = oc0 + j;
              /* o1 == o0 for a lone last pixel: write pixel 1 first so pixel 0 wins. */
              o1[oc] = ts_clamp_s8(ts_rq_apply(a1, qa) + out_off, lo, hi);
              o0[oc] = ts_clamp_s8(ts_rq_apply(a0, qa) + out_off, lo, hi);
              if (j + 1 < nb) {
                o1[oc + 1] = ts_clamp_s8(ts_rq_apply(b1, qb) + out_off, lo, hi);
                o0[oc + 1] = ts_clamp_s8(ts_rq_apply(b0, qb) + out_off, lo, hi);
              }
            }
          }
        }
      }
    }
  }
}
