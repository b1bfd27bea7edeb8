/* Element-wise int8 activations, as TFLM's reference kernels (RELU, RELU6 and LEAKY_RELU
 * are QUANTIZE's requantize and clamp, ts_ref_requantize_s8 in misc.c):
 *   LOGISTIC    reference_integer_ops::Logistic: (in - zp) to Q4.27 with the prepared
 *               multiplier (saturating outside +-range_radius), gemmlowp logistic, Q0.31
 *               -> 1/256 steps (>> 23, rounded), - 128
 *   TANH        reference_integer_ops::Tanh: the same with gemmlowp tanh, >> 24 (1/128)
 *   HARD_SWISH  reference_ops::HardSwish: int16 fixed point, see below. */
#include "ts_kernels.h"
#include "ts_quant.h"

static __attribute__((noinline)) int8_t clamp8(int32_t v) {
  return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

static void sigmoid_like(const ts_sigmoid_params_t *p, const int8_t *input, int8_t *output,
                         int tanh) {
  for (int32_t i = 0; i < p->size; i++) {
    const int32_t x = (int32_t)input[i] - p->input_zp;
    if (x <= -p->range_radius) {
      output[i] = -128;
    } else if (x >= p->range_radius) {
      output[i] = 127;
    } else {
      const int32_t q4 = ts_mbqm_call(x, p->input_mult, p->input_left_shift);
      output[i] = tanh ? clamp8(ts_rounding_divide_by_pot(ts_tanh_q4(q4), 24))
                       : clamp8(ts_rounding_divide_by_pot(ts_logistic_q4(q4), 23) - 128);
    }
  }
}

void ts_ref_logistic_s8(const ts_sigmoid_params_t *p, const int8_t *input, int8_t *output) {
  sigmoid_like(p, input, output, 0);
}

void ts_ref_tanh_s8(const ts_sigmoid_params_t *p, const int8_t *input, int8_t *output) {
  sigmoid_like(p, input, output, 1);
}

/* gemmlowp's int16 SaturatingRoundingDoublingHighMul: round(a * b / 2^15), half away from
 * zero; -32768 * -32768 saturates. */
static __attribute__((noinline)) int16_t srdhm16(int16_t a, int16_t b) {
  if (a == b && a == INT16_MIN) return INT16_MAX;
  const int32_t ab = (int32_t)a * (int32_t)b;
  const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
  return (int16_t)((ab + nudge) / (1 << 15));
}

/* The same truncating toward zero (ARM SQDMULH). */
static int16_t sdhm16(int16_t a, int16_t b) {
  if (a == b && a == INT16_MIN) return INT16_MAX;
  return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

/* gemmlowp RoundingDivideByPOT on int16 values: as the int32 one for exponents below 16;
 * from 16 on its mask (2^exponent - 1 cast to int16) is -1, which gives 1 for x >= 0 and -1
 * for x < 0 (what TFLM computes there too). */
static __attribute__((noinline)) int16_t rdbpot16(int16_t x, int32_t exponent) {
  if (exponent < 16) return (int16_t)ts_rounding_divide_by_pot(x, exponent);
  return (int16_t)(x >= 0 ? 1 : -1);
}

static __attribute__((noinline)) int16_t sat_shl16(int16_t v, int32_t amount) {
  const int32_t r = (int32_t)v * (1 << amount);
  return (int16_t)(r > INT16_MAX ? INT16_MAX : r < INT16_MIN ? INT16_MIN : r);
}

/* x * min(max(x + 3, 0), 6) / 6: x on a finer scale (x 2^7), the "relu-ish" factor
 * (x + 3) / 6 clamped to [0, 1] as a Q15 value from x on the scale where 3.0 is 2^15 (its
 * left shift saturating one bit short, then the last bit), times x on the pre-shift output
 * scale (truncating high multiply, which cancels the rounding bias), then the output
 * shift. The int16 wrap of `output + zero point` is TFLM's too. */
void ts_ref_hard_swish_s8(const ts_hard_swish_params_t *p, const int8_t *input,
                          int8_t *output) {
  for (int32_t i = 0; i < p->size; i++) {
    const int16_t x = (int16_t)((int32_t)input[i] - p->input_zp);
    const int16_t hires = (int16_t)(x * (1 << 7));
    const int16_t pre_out = srdhm16(hires, p->output_mult);
    int16_t reluish = hires;
    if (p->reluish_exp > 0) reluish = sat_shl16(reluish, p->reluish_exp - 1);
    reluish = srdhm16(reluish, p->reluish_mult);
    if (p->reluish_exp > 0) reluish = sat_shl16(reluish, 1);
    if (p->reluish_exp < 0)
      reluish = rdbpot16(reluish, -p->reluish_exp);
    reluish = (int16_t)(((int32_t)reluish + (1 << 15)) >> 1);
    const int16_t pre_shift = sdhm16(reluish, pre_out);
    int16_t out = rdbpot16(pre_shift, -p->output_exp);
    out = (int16_t)(out + p->output_zp);
    output[i] = clamp8(out);
  }
}
