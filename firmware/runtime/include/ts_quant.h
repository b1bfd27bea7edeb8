/*
 * Integer requantization arithmetic, bit-exact with TFLM's defaults
 * (tensorflow/lite/kernels/internal/common.h, quantization_util.cc, gemmlowp fixedpoint.h).
 *
 * A real multiplier M > 0 is represented as M = mult * 2^(shift - 31), mult in [2^30, 2^31)
 * (a Q31 mantissa) - see ts_quantize_multiplier(). Applying it to an int32 x rounds twice,
 * as TFLM's reference kernels do (not TFLITE_SINGLE_ROUNDING):
 *   1. SaturatingRoundingDoublingHighMul: (x * mult * 2 + 2^31/2) >> 32, rounded half away
 *      from zero, saturating the single overflow case INT32_MIN * INT32_MIN;
 *   2. RoundingDivideByPOT: arithmetic shift right by -shift, rounded half away from zero.
 * Optimized kernels must call these (or equivalent code) to stay bit-exact.
 */
#ifndef TS_QUANT_H
#define TS_QUANT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Split a double multiplier into a Q31 mantissa and a power-of-two exponent exactly as
 * TFLM's QuantizeMultiplier: frexp, round(q * 2^31) half away from zero, renormalize
 * 2^31, and flush exponents below -31 to (0, 0). No libm. Returns 0, or -1 for a
 * negative, NaN or infinite multiplier. */
int ts_quantize_multiplier(double m, int32_t *mult, int32_t *shift);

static inline int32_t ts_srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  /* gemmlowp: (ab + nudge) / 2^31 truncated toward zero, nudge 2^30 (1 - 2^30 for ab < 0).
   * That is one floor shift, (ab + 2^30) >> 31: for ab < 0 the truncation adds 2^31 - 1,
   * which with the nudge is 2^30 (SMULL, ADDS, ADC and two shifts on the M4; the kernel
   * check compares it with gemmlowp's form). */
  return (int32_t)(((int64_t)a * (int64_t)b + (INT64_C(1) << 30)) >> 31);
}

/* x / 2^exponent rounded half away from zero (0 <= exponent <= 31). */
static inline int32_t ts_rounding_divide_by_pot(int32_t x, int32_t exponent) {
  const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^e with saturation, e in 0..31 (gemmlowp SaturatingRoundingMultiplyByPOT, e > 0). */
static inline int32_t ts_saturating_shl(int32_t x, int32_t e) {
  if (e == 0) return x;
  const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - e)) - 1u);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return (int32_t)((uint32_t)x << e);
}

/* TFLM MultiplyByQuantizedMultiplier (double rounding). shift in [-31, 30]. */
static inline int32_t ts_mbqm(int32_t x, int32_t mult, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  return ts_rounding_divide_by_pot(ts_srdhm((int32_t)((uint32_t)x << left), mult), right);
}

/* ts_mbqm out of line: one copy for the reference kernels whose loops are not hot in the
 * optimized firmware (element-wise activations, QUANTIZE, the broadcast binary operators,
 * TRANSPOSE_CONV); the convolutions' reference kernels keep the inline one. */
int32_t ts_mbqm_call(int32_t x, int32_t mult, int32_t shift);

/* round(f) half away from zero for |f| < 2^31 (TfLiteRound on float). */
int32_t ts_roundf_to_i32(float f);

/* Fused activation (TFLite ActivationFunctionType) to an int8 clamp range, as TFLM's
 * CalculateActivationRangeQuantized: act_min/max = zp + round(limit / scale), clamped to
 * [-128, 127]. Returns 0, or -1 for an activation without an int8 range (TANH, SIGN_BIT). */
int ts_activation_range_s8(int32_t activation, float scale, int32_t zero_point,
                           int32_t *act_min, int32_t *act_max);

/* The gemmlowp fixed-point pieces TFLM's int8 softmax uses (raw int32 values). */
int32_t ts_exp_on_negative_values_5(int32_t a_q5_26);       /* exp(a), a <= 0, Q0.31 out */
int32_t ts_logistic_q4(int32_t a_q4_27);                     /* 1 / (1 + exp(-a)), Q0.31 */
int32_t ts_tanh_q4(int32_t a_q4_27);                         /* tanh(a), Q0.31 */
int32_t ts_reciprocal_q12(int32_t x_q12_19, int32_t *num_bits_over_unit); /* GetReciprocal */

/* SOFTMAX's pieces, shared by the reference and the optimized kernel: a row's maximum, and
 * exp(d * beta * input_scale) in Q0.31 for d = x - max <= 0 (input_multiplier and
 * input_left_shift as TFLM's PreprocessSoftmaxScaling gives them). */
static inline int32_t ts_max_s8(const int8_t *x, int32_t n) {
  int32_t mx = -128;
  for (int32_t i = 0; i < n; i++)
    if (x[i] > mx) mx = x[i];
  return mx;
}
static inline int32_t ts_softmax_exp(int32_t d, int32_t left_shift, int32_t multiplier) {
  return ts_exp_on_negative_values_5(ts_srdhm((int32_t)((uint32_t)d << left_shift), multiplier));
}

#ifdef __cplusplus
}
#endif

#endif /* TS_QUANT_H */
