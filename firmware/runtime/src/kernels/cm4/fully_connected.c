/* FULLY_CONNECTED int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_fully_connected_s8.
 *
 * The input (+ input offset) is widened once per batch to int16 on the stack, in SXTB16
 * order: per 4 inputs the words (x0, x2) and (x1, x3) (chunks of TS_OPT_FC_XBUF inputs,
 * re-widened per row block only for longer inputs). Four output rows at a time: per 4
 * inputs one LDRD of inputs, per row one LDR + SXTB16/SXTB16-ROR8 of weights (the same
 * order) and 2 SMLAD; the last out_depth % 4 rows one at a time (nothing computed twice).
 * A filter offset (0 for int8 weights, which are symmetric) is folded in exactly:
 * sum (f + fo)(x + xo) = sum f (x + xo) + fo * sum (x + xo). */
#include "ts_dsp.h"
#include "ts_kernels.h"

/* 4 weights of a row against the widened inputs xv = (x0, x2 | x1, x3). */
static inline __attribute__((always_inline)) int32_t dot4(const int8_t *f, uint64_t xv,
                                                          int32_t acc) {
  const uint32_t w = ts_ld32(f);
  acc = ts_smlad(ts_sxtb16(w), (uint32_t)xv, acc);
  return ts_smlad(ts_sxtb16_ror8(w), (uint32_t)(xv >> 32), acc);
}

void ts_opt_fully_connected_s8(const ts_fc_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output) {
  const int32_t depth = p->accum_depth, xo = p->input_offset, nrows = p->out_depth;
  const uint32_t off2 = (uint32_t)(uint16_t)xo * 0x10001u;
  __attribute__((aligned(8))) int16_t xb[TS_OPT_FC_XBUF];
  for (int32_t b = 0; b < p->batches; b++) {
    const int8_t *in = input + b * depth;
    int32_t xsum = 0; /* sum (x + xo), only needed for a filter offset */
    if (p->filter_offset)
      for (int32_t d = 0; d < depth; d++) xsum += in[d] + xo;
    const uint32_t fcorr = (uint32_t)p->filter_offset * (uint32_t)xsum; /* wraps, as TFLM */
    for (int32_t o = 0; o < nrows;) {
      const int32_t rows = nrows - o >= 4 ? 4 : 1;
      int32_t acc[4] = {0, 0, 0, 0};
      for (int32_t c0 = 0; c0 < depth; c0 += TS_OPT_FC_XBUF) {
        const int32_t n = depth - c0 < TS_OPT_FC_XBUF ? depth - c0 : TS_OPT_FC_XBUF;
        const int32_t n4 = n & ~3;
        if (o == 0 || depth > TS_OPT_FC_XBUF) {
          for (int32_t i = 0; i < n4; i += 4) {
            const uint32_t x = ts_ld32(in + c0 + i);
            const uint32_t e = ts_sadd16(ts_sxtb16(x), off2);
            const uint32_t od = ts_sadd16(ts_sxtb16_ror8(x), off2);
            __builtin_memcpy(xb + i, &e, 4);
            __builtin_memcpy(xb + i + 2, &od, 4);
          }
          for (int32_t i = n4; i < n; i++) xb[i] = (int16_t)(in[c0 + i] + xo);
        }
        const int8_t *f0 = filter + o * depth + c0;
        int32_t i = 0;
        if (rows == 4) {
          const int8_t *f1 = f0 + depth, *f2 = f1 + depth, *f3 = f2 + depth;
          int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
          for (; i < n4; i += 4) {
            uint64_t xv; /* one LDRD */
            __builtin_memcpy(&xv, xb + i, 8);
            a0 = dot4(f0 + i, xv, a0);
            a1 = dot4(f1 + i, xv, a1);
            a2 = dot4(f2 + i, xv, a2);
            a3 = dot4(f3 + i, xv, a3);
          }
          for (; i < n; i++) {
            a0 += f0[i] * xb[i];
            a1 += f1[i] * xb[i];
            a2 += f2[i] * xb[i];
            a3 += f3[i] * xb[i];
          }
          acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
        } else {
          int32_t a0 = acc[0];
          for (; i < n4; i += 4) {
            uint64_t xv;
            __builtin_memcpy(&xv, xb + i, 8);
            a0 = dot4(f0 + i, xv, a0);
          }
          for (; i < n; i++) a0 += f0[i] * xb[i];
          acc[0] = a0;
        }
      }
      for (int32_t j = 0; j < rows; j++) {
        const int32_t c = p->per_channel ? o + j : 0;
        /* wrapping adds: an extreme bias is not C undefined behaviour (as kernels/ref) */
        const int32_t v = (int32_t)((uint32_t)acc[j] + fcorr + (uint32_t)(bias ? bias[o + j] : 0));
        output[b * nrows + o + j] = ts_clamp_s8(
            ts_requant_slow(v, p->mult[c], p->shift[c]) + p->output_offset, p->act_min, p->act_max);
      }
      o += rows;
    }
  }
}
