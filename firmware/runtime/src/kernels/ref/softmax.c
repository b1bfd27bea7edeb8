/* SOFTMAX int8 -> int8 reference kernel, as TFLM's reference_ops::Softmax for quantized
 * types (gemmlowp fixed point, no lookup table for int8):
 *   d = in - max(row), kept only if d >= diff_min (else the output is -128);
 *   x = d * beta * input_scale in Q5.26 = SRDHM(d << input_left_shift, input_multiplier);
 *   sum = sum of exp(x) in Q12.19 (each exp rounded from Q0.31 by >> 12);
 *   out = round(exp(x) / sum * 256) - 128, via the Newton-Raphson reciprocal of sum. */
#include "ts_kernels.h"
#include "ts_quant.h"

void ts_ref_softmax_s8(const ts_softmax_params_t *p, const int8_t *input, int8_t *output) {
  for (int32_t i = 0; i < p->outer; i++) {
    const int8_t *in = input + i * p->depth;
    int8_t *out = output + i * p->depth;
    const int32_t mx = ts_max_s8(in, p->depth);
    int32_t sum_q12 = 0;
    for (int32_t c = 0; c < p->depth; c++) {
      const int32_t d = (int32_t)in[c] - mx;
      if (d >= p->diff_min) {
        const int32_t e = ts_softmax_exp(d, p->input_left_shift, p->input_multiplier);
        sum_q12 += ts_rounding_divide_by_pot(e, 12);
      }
    }
    int32_t bits_over_unit;
    const int32_t recip = ts_reciprocal_q12(sum_q12, &bits_over_unit);
    for (int32_t c = 0; c < p->depth; c++) {
      const int32_t d = (int32_t)in[c] - mx;
      if (d >= p->diff_min) {
        const int32_t e = ts_softmax_exp(d, p->input_left_shift, p->input_multiplier);
        int32_t v = ts_rounding_divide_by_pot(ts_srdhm(recip, e), bits_over_unit + 31 - 8);
        v -= 128;
        if (v > 127) v = 127;
        if (v < -128) v = -128;
        out[c] = (int8_t)v;
      } else {
        out[c] = -128;
      }
    }
  }
}
