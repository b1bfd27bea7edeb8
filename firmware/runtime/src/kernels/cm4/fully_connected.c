/* FULLY_CONNECTED int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_fully_connected_s8.
 *
 * Four output rows at a time, no scratch: per 4 inputs, one LDR + SXTB16/SXTB16-ROR8 +
 * 2 SADD16 (input offset) give the inputs as int16 pairs (x0, x2), (x1, x3), shared by the
 * four rows; each row's 4 weights are one LDR + SXTB16/SXTB16-ROR8 in the same order, and
 * 2 SMLAD. A filter offset (0 for int8 weights, which are symmetric) is folded in exactly:
 * sum (f + fo)(x + xo) = sum f (x + xo) + fo * sum (x + xo). */
#include "ts_dsp.h"
#include "ts_kernels.h"


void ts_opt_fully_connected_s8(const ts_fc_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output) {
  const int32_t depth = p->accum_depth, d4 = depth & ~3, xo = p->input_offset;
  const uint32_t off2 = (uint32_t)(uint16_t)xo * 0x10001u;
  for (int32_t b = 0; b < p->batches; b++) {
    const int8_t *in = input + b * depth;
    int32_t xsum = 0; /* sum (x + xo), only needed for a filter offset */
    if (p->filter_offset)
      for (int32_t d = 0; d < depth; d++) xsum += in[d] + xo;
    const uint32_t fcorr = (uint32_t)p->filter_offset * (uint32_t)xsum; /* wraps, as TFLM */
    for (int32_t o = 0; o < p->out_depth; o += 4) {
      const int32_t rows = p->out_depth - o < 4 ? p->out_depth - o : 4;
      /* fewer than 4 rows left: the missing ones repeat the last row (not stored) */
      const int8_t *f0 = filter + o * depth;
      const int8_t *f1 = rows > 1 ? f0 + depth : f0, *f2 = rows > 2 ? f0 + 2 * depth : f0;
      const int8_t *f3 = rows > 3 ? f0 + 3 * depth : f0;
      int32_t acc[4] = {0, 0, 0, 0};
      int32_t d = 0;
      for (; d < d4; d += 4) {
        const uint32_t x = ts_ld32(in + d);
        const uint32_t x02 = ts_sadd16(ts_sxtb16(x), off2);
        const uint32_t x13 = ts_sadd16(ts_sxtb16_ror8(x), off2);
        const uint32_t w0 = ts_ld32(f0 + d), w1 = ts_ld32(f1 + d);
        const uint32_t w2 = ts_ld32(f2 + d), w3 = ts_ld32(f3 + d);
        acc[0] = ts_smlad(ts_sxtb16(w0), x02, acc[0]);
        acc[0] = ts_smlad(ts_sxtb16_ror8(w0), x13, acc[0]);
        acc[1] = ts_smlad(ts_sxtb16(w1), x02, acc[1]);
        acc[1] = ts_smlad(ts_sxtb16_ror8(w1), x13, acc[1]);
        acc[2] = ts_smlad(ts_sxtb16(w2), x02, acc[2]);
        acc[2] = ts_smlad(ts_sxtb16_ror8(w2), x13, acc[2]);
        acc[3] = ts_smlad(ts_sxtb16(w3), x02, acc[3]);
        acc[3] = ts_smlad(ts_sxtb16_ror8(w3), x13, acc[3]);
      }
      for (; d < depth; d++) {
        const int32_t x = in[d] + xo;
        acc[0] += f0[d] * x;
        acc[1] += f1[d] * x;
        acc[2] += f2[d] * x;
        acc[3] += f3[d] * x;
      }
      for (int32_t j = 0; j < rows; j++) {
        const int32_t c = p->per_channel ? o + j : 0;
        /* wrapping adds: an extreme bias is not C undefined behaviour (as kernels/ref) */
        const int32_t v = (int32_t)((uint32_t)acc[j] + fcorr + (uint32_t)(bias ? bias[o + j] : 0));
        output[b * p->out_depth + o + j] = ts_clamp_s8(
            ts_requant_slow(v, p->mult[c], p->shift[c]) + p->output_offset, p->act_min, p->act_max);
      }
    }
  }
}
