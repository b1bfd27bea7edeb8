/* CONV_2D int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_conv2d_s8 (kernels/ref/conv.c).
 *
 * Buffer layout (no per-pixel im2col). For each output row, in tiles of output columns that
 * fit the buffer, the input the tile reads is widened once to int16 with the input offset
 * added (padding as 0: 0 * w adds nothing, as the reference skips those taps), column by
 * column: buffer position c holds the k_h kernel rows' in_c values of input column c,
 *   buf[(c * k_h + ky) * in_c + ic].
 * So the whole receptive field of output pixel x is ONE contiguous run of K = k_w * k_h *
 * in_c values starting at x * stride_w * k_h * in_c, in (kx, ky, ic) order. The weights of
 * a block of output channels are widened once per call to int16 in the same order, padded
 * with zero weights to Kp (a multiple of 4), and two channels are interleaved by tap pair.
 *
 * Loops: per output row tile, per pair of output channels (their requantization records in
 * registers), per pair of neighbouring pixels, one flat loop over the taps: per 4 taps
 * 4 weight words + 4 LDR inputs + 8 SMLAD (16 MACs). Requantization: ts_rq_apply
 * (TFLM's double rounding exactly, SMLAL-based). Scratch on the stack:
 * 2 * (TS_OPT_CONV_WBUF + TS_OPT_CONV_ROWBUF) bytes + the per-channel records. Falls back
 * to the reference kernel for dil_w != 1 or a kernel too large for the buffers
 * (3 * Kp > TS_OPT_CONV_WBUF or k_w * k_h * in_c + 3 > TS_OPT_CONV_ROWBUF). */
#include "ts_dsp.h"
#include "ts_kernels.h"

/* n int8 values + offset -> int16. Each group of 4 is stored in SXTB16 order
 * (v0, v2, v1, v3): inputs and weights are widened by this same function in segments of
 * in_c values at the same offsets of a receptive field, so both carry the same permutation
 * and the dot product is unchanged. */
static inline __attribute__((always_inline)) void widen4(const int8_t *src, uint32_t off2,
                                                         int16_t *dst) {
  const uint32_t w = ts_ld32(src);
  const uint32_t e = ts_sadd16(ts_sxtb16(w), off2), o = ts_sadd16(ts_sxtb16_ror8(w), off2);
  __builtin_memcpy(dst, &e, 4);
  __builtin_memcpy(dst + 2, &o, 4);
}

static void widen(const int8_t *src, int32_t n, int32_t offset, int16_t *dst) {
  const uint32_t off2 = (uint32_t)(uint16_t)offset * 0x10001u;
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) widen4(src + i, off2, dst + i);
  for (; i < n; i++) dst[i] = (int16_t)(src[i] + offset);
}

static void zero16(int16_t *dst, int32_t n) {
  for (int32_t i = 0; i < n; i++) dst[i] = 0;
}

static inline uint32_t pack16(int32_t lo, int32_t hi) {
  return (uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16;
}

/* ts_rq_apply for a channel known to have shift <= -2 (no slow path). */
static inline int32_t rq_fast(int32_t acc, int32_t mult, int32_t rnd, int32_t sh) {
  const uint32_t s = (uint32_t)(acc >> 31);
  const int64_t nudge = (int64_t)(((uint64_t)s << 32) | (0x40000000u | (s << 31)));
  const int64_t r = (int64_t)acc * mult + nudge;
  return ((int32_t)(r >> 32) + rnd) >> sh;
}

/* The first layer: 1 input channel, 3x3, stride_w 1, dil_w 1, every shift in [-23, -2].
 * The input tile is column-interleaved as in the general path (value c * 3 + ky), so pixel
 * x's 9 taps are values 3x .. 3x+8 in (kx, ky) order and pixel x+1's start 3 later. For an
 * even x, the 6 words at value 3x hold both pixels' taps: pixel x uses words 0-4 with the
 * weight pairs A = (w0,w1) (w2,w3) (w4,w5) (w6,w7) (w8,0), pixel x+1 words 1-5 with
 * B = (0,w0) (w1,w2) (w3,w4) (w5,w6) (w7,w8): 10 SMLAD per channel for 2 outputs, no
 * padded taps. Per channel a record of 14 words: bias, A0 B0 .. A4 B4, mult, rnd, sh.
 * An odd last pixel computes a phantom neighbour, stored into a sink. */
enum { R1 = 14 };
/* All channels of one pixel pair (conv_1ch3x3); `narrow` is a constant at each call. */
static inline __attribute__((always_inline)) void channels_1ch3x3(
    const uint32_t *r, const uint32_t *rend, const int16_t *xs, int8_t *o0, int8_t *o1,
    int32_t lo, int32_t hi, const int narrow) {
  for (; r < rend; r += R1) {
    __asm__("" : "+r"(xs)); /* reload the inputs per channel: fewer live registers */
    int32_t a = (int32_t)r[0], c = a;
    uint32_t u = ts_ld32(xs), v = ts_ld32(xs + 2);
    a = ts_smlad(r[1], u, a);
    c = ts_smlad(r[2], v, c);
    u = ts_ld32(xs + 4);
    a = ts_smlad(r[3], v, a);
    c = ts_smlad(r[4], u, c);
    v = ts_ld32(xs + 6);
    a = ts_smlad(r[5], u, a);
    c = ts_smlad(r[6], v, c);
    u = ts_ld32(xs + 8);
    a = ts_smlad(r[7], v, a);
    c = ts_smlad(r[8], u, c);
    v = ts_ld32(xs + 10);
    a = ts_smlad(r[9], u, a);
    c = ts_smlad(r[10], v, c);
    const int32_t m = (int32_t)r[11], rn = (int32_t)r[12], sh = (int32_t)r[13];
    *o0++ = ts_out_s8(rq_fast(a, m, rn, sh), lo, hi, narrow);
    *o1++ = ts_out_s8(rq_fast(c, m, rn, sh), lo, hi, narrow);
  }
}

static __attribute__((noinline)) void conv_1ch3x3(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                        const int32_t *bias, int8_t *output, uint32_t *wbuf, int16_t *buf) {
  const int32_t out_c = p->out_c, ioff = p->input_offset, out_off = p->output_offset;
  const int32_t lo = p->act_min, hi = p->act_max;
  const int narrow = lo > -128 || hi < 127;
  int32_t block = (TS_OPT_CONV_WBUF / 2) / R1;
  if (block > TS_OPT_CONV_BLOCK) block = TS_OPT_CONV_BLOCK;
  int32_t tw = TS_OPT_CONV_ROWBUF / 3 - 3; /* output columns per tile: 3 (n + 3) values */
  if (tw > p->out_w) tw = p->out_w;
  int8_t sink[TS_OPT_CONV_BLOCK];
  for (int32_t oc0 = 0; oc0 < out_c; oc0 += block) {
    const int32_t nb = out_c - oc0 < block ? out_c - oc0 : block;
    for (int32_t j = 0; j < nb; j++) {
      const int8_t *f = filter + (oc0 + j) * 9;
      int32_t w[10]; /* taps in (kx, ky) order, w[9] = 0 */
      for (int32_t t = 0; t < 9; t++) w[t] = f[(t % 3) * 3 + t / 3];
      w[9] = 0;
      uint32_t *r = wbuf + j * R1;
      for (int32_t k = 0; k < 5; k++) {
        r[2 * k + 1] = pack16(w[2 * k], w[2 * k + 1]);
        r[2 * k + 2] = pack16(k ? w[2 * k - 1] : 0, w[2 * k]);
      }
      const ts_rq_t q = ts_rq_make(p->mult[oc0 + j], p->shift[oc0 + j], bias ? bias[oc0 + j] : 0);
      r[0] = (uint32_t)q.bias;
      r[11] = (uint32_t)q.mult;
      /* the output offset folded into the rounding term: (v + rnd) >> sh + out_off =
       * (v + rnd + (out_off << sh)) >> sh, no overflow for |v| <= 2^30, sh <= 22 */
      r[12] = (uint32_t)(q.rnd + out_off * (INT32_C(1) << q.sh));
      r[13] = (uint32_t)q.sh;
    }
    const uint32_t *const rend = wbuf + nb * R1;
    for (int32_t b = 0; b < p->batches; b++)
      for (int32_t oy = 0; oy < p->out_h; oy++) {
        int8_t *out_row = output + ((b * p->out_h + oy) * p->out_w) * out_c + oc0;
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        for (int32_t tx = 0; tx < p->out_w; tx += tw) {
          const int32_t n = p->out_w - tx < tw ? p->out_w - tx : tw;
          const int32_t x0 = tx - p->pad_w;
          /* columns [c0, c1) of the tile's n + 3 are inside the input */
          const int32_t c0 = x0 < 0 ? -x0 : 0;
          int32_t c1 = p->in_w - x0;
          if (c1 > n + 3) c1 = n + 3;
          for (int32_t ky = 0; ky < 3; ky++) {
            const int32_t iy = y0 + ky * p->dil_h;
            int16_t *d = buf + ky;
            if (iy < 0 || iy >= p->in_h || c1 <= c0) {
              for (int32_t c = 0; c < n + 3; c++) d[3 * c] = 0;
              continue;
            }
            const int8_t *src = input + (b * p->in_h + iy) * p->in_w + x0;
            int32_t c = 0;
            for (; c < c0; c++) d[3 * c] = 0;
            for (; c < c1; c++) d[3 * c] = (int16_t)(src[c] + ioff);
            for (; c < n + 3; c++) d[3 * c] = 0;
          }
          int8_t *o = out_row + tx * out_c;
          for (int32_t px = 0; px < n; px += 2, o += 2 * out_c) {
            const int16_t *xs = buf + 3 * px; /* word aligned: 3 * px is even */
            int8_t *o1 = px + 1 < n ? o + out_c : sink;
            if (narrow) channels_1ch3x3(wbuf, rend, xs, o, o1, lo, hi, 1);
            else channels_1ch3x3(wbuf, rend, xs, o, o1, lo, hi, 0);
          }
        }
      }
  }
}

/* 4 taps of a channel pair (accumulators a: channel j, b: j + 1) for 2 pixels (0: x,
 * 1: x + sy): 2 LDRD (weights), 4 LDR (inputs), 8 SMLAD. */
static inline __attribute__((always_inline)) void mac4(const int16_t *x, const uint32_t *w,
                                                      int32_t sy, int32_t *a0, int32_t *b0,
                                                      int32_t *a1, int32_t *b1) {
  uint64_t wp; /* the channel pair's weights of 2 taps: one LDRD */
  __builtin_memcpy(&wp, w, 8);
  uint32_t v = ts_ld32(x + sy);
  *a1 = ts_smlad((uint32_t)wp, v, *a1);
  *b1 = ts_smlad((uint32_t)(wp >> 32), v, *b1);
  v = ts_ld32(x);
  *a0 = ts_smlad((uint32_t)wp, v, *a0);
  *b0 = ts_smlad((uint32_t)(wp >> 32), v, *b0);
  __builtin_memcpy(&wp, w + 2, 8);
  v = ts_ld32(x + 2 + sy);
  *a1 = ts_smlad((uint32_t)wp, v, *a1);
  *b1 = ts_smlad((uint32_t)(wp >> 32), v, *b1);
  v = ts_ld32(x + 2);
  *a0 = ts_smlad((uint32_t)wp, v, *a0);
  *b0 = ts_smlad((uint32_t)(wp >> 32), v, *b0);
}

/* One output: requantize, offset, clamp. `fast`: every channel has shift in [-23, -2] and
 * the output offset is folded into q->rnd (see conv_1ch3x3). */
static inline __attribute__((always_inline)) int8_t out1(int32_t acc, const ts_rq_t *q,
                                                         int32_t out_off, int32_t lo,
                                                         int32_t hi, const int narrow,
                                                         const int fast) {
  if (fast) return ts_out_s8(rq_fast(acc, q->mult, q->rnd, q->sh), lo, hi, narrow);
  return ts_out_s8(ts_rq_apply(acc, q) + out_off, lo, hi, narrow);
}

/* The general path's pairs of channels x pairs of pixels of one row tile; `narrow` and
 * `fast` are constants at the call that matters (fewer live registers, no branches). */
static inline __attribute__((always_inline)) void conv_pairs(
    const int16_t *buf, const uint32_t *wbuf, const ts_rq_t *rq, int32_t nb, int32_t n,
    int32_t sx, int32_t Kp, int32_t out_c, int8_t *ob, int32_t out_off, int32_t lo, int32_t hi,
    const int narrow, const int fast) {
  for (int32_t j = 0; j < nb; j += 2) {
    const ts_rq_t qa = rq[j], qb = rq[j + 1];
    const uint32_t *const wj = wbuf + (j >> 1) * Kp;
    const int store_b = j + 1 < nb; /* else channel j + 1 is a phantom */
    int8_t *o = ob + j;
    int32_t px = 0;
    for (; px + 1 < n; px += 2, o += 2 * out_c) { /* pairs of pixels */
      const int16_t *x = buf + px * sx;
      const int16_t *const xe = x + Kp, *const x8 = x + (Kp & ~7);
      const uint32_t *w = wj;
      int32_t a0 = qa.bias, b0 = qb.bias, a1 = a0, b1 = b0; /* b: channel +1 */
      for (; x < x8; x += 8, w += 8) { /* 8 taps */
        mac4(x, w, sx, &a0, &b0, &a1, &b1);
        mac4(x + 4, w + 4, sx, &a0, &b0, &a1, &b1);
      }
      if (x < xe) mac4(x, w, sx, &a0, &b0, &a1, &b1); /* Kp % 8 == 4 */
      o[0] = out1(a0, &qa, out_off, lo, hi, narrow, fast);
      o[out_c] = out1(a1, &qa, out_off, lo, hi, narrow, fast);
      if (store_b) {
        o[1] = out1(b0, &qb, out_off, lo, hi, narrow, fast);
        o[out_c + 1] = out1(b1, &qb, out_off, lo, hi, narrow, fast);
      }
    }
    if (px < n) { /* an odd last pixel */
      const int16_t *x = buf + px * sx;
      const int16_t *const xe = x + Kp;
      const uint32_t *w = wj;
      int32_t a0 = qa.bias, b0 = qb.bias;
      for (; x < xe; x += 4, w += 4) {
        uint64_t wp;
        __builtin_memcpy(&wp, w, 8);
        uint32_t v = ts_ld32(x);
        a0 = ts_smlad((uint32_t)wp, v, a0);
        b0 = ts_smlad((uint32_t)(wp >> 32), v, b0);
        __builtin_memcpy(&wp, w + 2, 8);
        v = ts_ld32(x + 2);
        a0 = ts_smlad((uint32_t)wp, v, a0);
        b0 = ts_smlad((uint32_t)(wp >> 32), v, b0);
      }
      o[0] = out1(a0, &qa, out_off, lo, hi, narrow, fast);
      if (store_b) o[1] = out1(b0, &qb, out_off, lo, hi, narrow, fast);
    }
  }
}

void ts_opt_conv2d_s8(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output) {
  const int32_t in_c = p->in_c, k_h = p->k_h, k_w = p->k_w, out_c = p->out_c;
  const int32_t col = k_h * in_c;           /* buffer values per input column */
  const int32_t K = k_w * col, Kp = (K + 3) & ~3;
  const int32_t sx = p->stride_w * col;     /* buffer values between neighbouring pixels */
  const int32_t room = (TS_OPT_CONV_ROWBUF - 3) / col - k_w; /* spare columns in a tile */
  if (p->dil_w != 1 || 3 * Kp > TS_OPT_CONV_WBUF || room < 0) {
    ts_ref_conv2d_s8(p, input, filter, bias, output);
    return;
  }
  __attribute__((aligned(8))) uint32_t wbuf[TS_OPT_CONV_WBUF / 2]; /* int16 pairs */
  __attribute__((aligned(8))) int16_t buf[TS_OPT_CONV_ROWBUF];
  int fast = 1; /* every shift in [-23, -2]: rq_fast with the output offset folded */
  for (int32_t j = 0; j < out_c; j++) fast &= p->shift[j] <= -2 && p->shift[j] >= -23;
  if (fast && in_c == 1 && k_h == 3 && k_w == 3 && p->stride_w == 1) {
    conv_1ch3x3(p, input, filter, bias, output, wbuf, buf);
    return;
  }
  int32_t tw = room / p->stride_w + 1; /* output columns per tile */
  if (tw > p->out_w) tw = p->out_w;
  int32_t block = TS_OPT_CONV_WBUF / Kp - 1; /* output channels per weight block */
  if (block > TS_OPT_CONV_BLOCK) block = TS_OPT_CONV_BLOCK;
  block = block >= out_c ? out_c : block & ~1;
  const int32_t out_off = p->output_offset, lo = p->act_min, hi = p->act_max;
  const int narrow = lo > -128 || hi < 127; /* clamp beyond SSAT's [-128, 127] */
  ts_rq_t rq[TS_OPT_CONV_BLOCK + 1]; /* per channel of the block: bias and requantization */
  for (int32_t oc0 = 0; oc0 < out_c; oc0 += block) {
    const int32_t nb = out_c - oc0 < block ? out_c - oc0 : block;
    /* Widen the block's weights in (kx, ky, ic) order; pair (j, j+1) is stored interleaved
     * by tap pair: word (j/2) * Kp + 2 * t + (j & 1) holds tap pair t of channel j. An odd
     * block gets a phantom channel of zero weights (computed, never stored). */
    for (int32_t j = 0; j < nb + (nb & 1); j++) {
      int16_t *tmp = buf; /* free here: one channel's Kp taps */
      tmp[Kp - 1] = tmp[Kp - 2] = tmp[Kp - 3] = 0;
      for (int32_t kx = 0; kx < k_w; kx++)
        for (int32_t ky = 0; ky < k_h; ky++) {
          int16_t *d = tmp + (kx * k_h + ky) * in_c;
          if (j < nb) widen(filter + (((oc0 + j) * k_h + ky) * k_w + kx) * in_c, in_c, 0, d);
          else zero16(d, in_c);
        }
      uint32_t *w = wbuf + (j >> 1) * Kp + (j & 1);
      for (int32_t t = 0; t < Kp; t += 2) __builtin_memcpy(&w[t], tmp + t, 4);
      rq[j] = j < nb ? ts_rq_make(p->mult[oc0 + j], p->shift[oc0 + j], bias ? bias[oc0 + j] : 0)
                     : rq[j - 1];
      if (fast && j < nb) rq[j].rnd += out_off * (INT32_C(1) << rq[j].sh);
    }
    for (int32_t b = 0; b < p->batches; b++) {
      for (int32_t oy = 0; oy < p->out_h; oy++) {
        int8_t *out_row = output + ((b * p->out_h + oy) * p->out_w) * out_c;
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        for (int32_t tx = 0; tx < p->out_w; tx += tw) {
          const int32_t n = p->out_w - tx < tw ? p->out_w - tx : tw;
          const int32_t span = (n - 1) * p->stride_w + k_w;
          const int32_t x0 = tx * p->stride_w - p->pad_w;
          const uint32_t off2 = (uint32_t)(uint16_t)p->input_offset * 0x10001u;
          for (int32_t ky = 0; ky < k_h; ky++) {
            const int32_t iy = y0 + ky * p->dil_h;
            const int row_in = iy >= 0 && iy < p->in_h;
            const int8_t *src = input + ((b * p->in_h + (row_in ? iy : 0)) * p->in_w) * in_c;
            int16_t *d = buf + ky * in_c;
            for (int32_t c = 0, ix = x0; c < span; c++, ix++, d += col) {
              if (!row_in || ix < 0 || ix >= p->in_w) zero16(d, in_c);
              else if ((in_c & 3) == 0) /* whole groups: widen inline, no call */
                for (int32_t i = 0; i < in_c; i += 4) widen4(src + ix * in_c + i, off2, d + i);
              else if (in_c == 1) d[0] = (int16_t)(src[ix] + p->input_offset);
              else widen(src + ix * in_c, in_c, p->input_offset, d);
            }
          }
          for (int32_t i = 0; i < 3; i++) buf[span * col + i] = 0; /* read by zero weights past K */
          int8_t *const ob = out_row + tx * out_c + oc0;
          if (fast && !narrow) conv_pairs(buf, wbuf, rq, nb, n, sx, Kp, out_c, ob, out_off, lo, hi, 0, 1);
          else conv_pairs(buf, wbuf, rq, nb, n, sx, Kp, out_c, ob, out_off, lo, hi, narrow, fast);
        }
      }
    }
  }
}
