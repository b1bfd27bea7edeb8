/* Requantization helpers; see ts_quant.h. Written from the semantics of TFLM's
 * quantization_util.cc and gemmlowp's fixedpoint.h, without libm. */
#include "ts_quant.h"

#include <string.h>

int ts_quantize_multiplier(double m, int32_t *mult, int32_t *shift) {
  if (m == 0.0) {
    *mult = 0;
    *shift = 0;
    return 0;
  }
  uint64_t bits;
  memcpy(&bits, &m, sizeof bits);
  if (bits >> 63) return -1; /* negative */
  int32_t biased = (int32_t)((bits >> 52) & 0x7ff);
  uint64_t frac = bits & ((UINT64_C(1) << 52) - 1);
  if (biased == 0x7ff) return -1; /* inf / nan */
  int32_t exp;
  if (biased == 0) {
    /* subnormal: normalize the fraction (the multiplier ends up flushed to 0 anyway). */
    exp = -1022;
    while (!(frac & (UINT64_C(1) << 52))) {
      frac <<= 1;
      exp--;
    }
  } else {
    frac |= UINT64_C(1) << 52;
    exp = biased - 1023;
  }
  /* m = frac * 2^(exp - 52), frac in [2^52, 2^53). frexp gives q = frac / 2^53 in [0.5, 1)
   * and e = exp + 1. q * 2^31 = frac / 2^22: round half away from zero (q > 0). */
  int32_t e = exp + 1;
  int64_t q_fixed = (int64_t)((frac + (UINT64_C(1) << 21)) >> 22);
  if (q_fixed == (INT64_C(1) << 31)) {
    q_fixed /= 2;
    e++;
  }
  if (e < -31) {
    e = 0;
    q_fixed = 0;
  }
  *mult = (int32_t)q_fixed;
  *shift = e;
  return 0;
}

int32_t ts_mbqm_call(int32_t x, int32_t mult, int32_t shift) { return ts_mbqm(x, mult, shift); }

int32_t ts_roundf_to_i32(float f) {
  if (f >= 2147483520.0f) return INT32_MAX; /* largest float below 2^31 */
  if (f <= -2147483648.0f) return INT32_MIN;
  const int32_t t = (int32_t)f; /* truncation toward zero; f - t is exact, in (-1, 1) */
  /* 2 (f - t) is exact too: its truncation is 1 from r = 0.5 up, -1 from -0.5 down, else 0 */
  return t + (int32_t)(2.0f * (f - (float)t));
}

/* zero_point + q without signed overflow (q saturates at INT32_MIN/MAX for extreme
 * scales; found by fuzz_model: -37 + INT32_MIN), saturated to int32. */
static int32_t zp_add(int32_t zero_point, int32_t q) {
  const int64_t v = (int64_t)zero_point + q;
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

int ts_activation_range_s8(int32_t activation, float scale, int32_t zero_point,
                           int32_t *act_min, int32_t *act_max) {
  /* NONE, RELU, RELU_N1_TO_1, RELU6: the real bounds (lower, upper) and which of them apply
   * (bit 0: the lower, bit 1: the upper), quantized as TFLM does: zero_point + round(bound /
   * scale), within [-128, 127]. */
  static const int8_t real[4][2] = {{0, 0}, {0, 0}, {-1, 1}, {0, 6}};
  static const uint8_t applies[4] = {0, 1, 3, 3};
  if (activation < 0 || activation > 3) return -1;
  int32_t r[2] = {-128, 127};
  for (int k = 0; k < 2; k++)
    if (applies[activation] >> k & 1) {
      const int32_t q = zp_add(zero_point, ts_roundf_to_i32((float)real[activation][k] / scale));
      if (k ? q < r[1] : q > r[0]) r[k] = q;
    }
  *act_min = r[0];
  *act_max = r[1];
  return 0;
}

/* ---- gemmlowp fixed point, int32 raw values. Qm.n = m integer bits, n = 31 - m fraction
 * bits. A product of Qa and Qb values is SRDHM(a, b) in Q(a+b). ---- */

/* exp(a) for a in [-1/4, 0), a and result in Q0.31: Taylor expansion around -1/8:
 * exp(a) = exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24), x = a + 1/8. */
/* (always inlined: SOFTMAX's exp and reciprocal keep their single-caller code) */
#define TS_INLINE static inline __attribute__((always_inline))
TS_INLINE int32_t exp_quarter_interval(int32_t a) {
  const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) in Q0.31 */
  const int32_t one_third = 715827883;             /* 1/3 in Q0.31 */
  const int32_t x = a + (1 << 28);                 /* + 1/8 */
  const int32_t x2 = ts_srdhm(x, x);
  const int32_t x3 = ts_srdhm(x2, x);
  const int32_t x4 = ts_srdhm(x2, x2);
  const int32_t x4_over_4 = ts_rounding_divide_by_pot(x4, 2);
  const int32_t poly =
      ts_rounding_divide_by_pot(ts_srdhm(x4_over_4 + x3, one_third) + x2, 1);
  return exp_minus_one_eighth + ts_srdhm(exp_minus_one_eighth, x + poly);
}

/* exp(-2^k) in Q0.31 for k = -2 .. 4 (Q4 inputs use the first 6, Q5 inputs all 7) */
static const int32_t exp_neg_pot[7] = {1672461947, 1302514674, 790015084, 290630308,
                                       39332535,   720401,     242};

/* exp(a) for a <= 0 with ib integer bits (Q4.27: LOGISTIC's input; Q5.26: SOFTMAX's), result
 * in Q0.31: gemmlowp's exp_on_negative_values. Split a = (a mod 1/4 - 1/4) - remainder; exp
 * of the first part by the polynomial, then multiply by exp(-2^k) for each set bit k of the
 * remainder (gemmlowp's barrel shifter stops at exp(-2^(ib-1)): for Q4 the last step would
 * test bit 31 of the remainder, which is 0 for every a < 0, and a == 0 is exactly 1.0). One
 * copy for both (ts_exp_on_negative_values_5 and LOGISTIC's Q4 call). */
static __attribute__((noinline)) int32_t exp_on_negative_values(int32_t a, int32_t ib) {
  const int32_t frac_bits = 31 - ib;
  const int32_t one_quarter = 1 << (frac_bits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_q_minus_q = (a & mask) - one_quarter;
  int32_t result = exp_quarter_interval(ts_saturating_shl(a_mod_q_minus_q, ib)); /* to Q0 */
  const uint32_t remainder = (uint32_t)(a_mod_q_minus_q - a);
  for (int k = 0; k < 7; k++)
    if ((remainder >> (frac_bits + k - 2)) & 1u) result = ts_srdhm(result, exp_neg_pot[k]);
  /* (Q5 inputs never reach the -32 clamp gemmlowp applies for more integer bits.) */
  if (a == 0) result = INT32_MAX; /* exactly 1.0 */
  return result;
}

int32_t ts_exp_on_negative_values_5(int32_t a) { return exp_on_negative_values(a, 5); }

static int32_t clz32(uint32_t x) { return x ? __builtin_clz(x) : 32; }

/* 2 / (1 + a) for a in [0, 1) (a in Q0.31, the result in Q2.29): 1 / half the denominator
 * by three Newton-Raphson steps in Q2.29, starting from 48/17 - 32/17 * d (gemmlowp's
 * one_over_one_plus_x_for_x_in_0_1 and one_minus_x_over_one_plus_x_for_x_in_0_1 share it). */
static __attribute__((noinline)) int32_t two_over_one_plus_x(int32_t a) {
  /* RoundingHalfSum(a, 1.0) */
  int64_t sum = (int64_t)a + (int64_t)INT32_MAX;
  int64_t sign = sum >= 0 ? 1 : -1;
  const int32_t half_den = (int32_t)((sum + sign) / 2);                 /* Q0.31 */
  const int32_t c48_17 = 1515870810;                                     /* Q2.29 */
  const int32_t cneg32_17 = -1010580540;                                 /* Q2.29 */
  int32_t x = c48_17 + ts_srdhm(half_den, cneg32_17);                    /* Q2.29 */
  for (int i = 0; i < 3; i++) {
    const int32_t hdx = ts_srdhm(half_den, x);                           /* Q2.29 */
    const int32_t one_minus = (1 << 29) - hdx;                           /* Q2.29 */
    x = x + ts_saturating_shl(ts_srdhm(x, one_minus), 2);                /* Q4 -> Q2 */
  }
  return x;
}

/* 1 / (1 + a) for a in [0, 1) (Q0.31 in and out): x / 2 in Q1.30 has the raw value of x;
 * rescaled Q1 -> Q0. */
static int32_t one_over_one_plus_x(int32_t a) {
  return ts_saturating_shl(two_over_one_plus_x(a), 1);
}

int32_t ts_reciprocal_q12(int32_t x, int32_t *num_bits_over_unit) {
  const int32_t headroom_plus_one = clz32((uint32_t)x);
  *num_bits_over_unit = 12 - headroom_plus_one;
  const int32_t shifted_minus_one =
      (int32_t)(((uint32_t)x << headroom_plus_one) - (UINT32_C(1) << 31));
  return one_over_one_plus_x(shifted_minus_one);
}

/* (1 - a) / (1 + a) for a in [0, 1): 2 / (1 + a) - 1 in Q2.29, rescaled Q2 -> Q0. */
static int32_t one_minus_x_over_one_plus_x(int32_t a) {
  return ts_saturating_shl(two_over_one_plus_x(a) - (1 << 29), 2);
}

int32_t ts_logistic_q4(int32_t a) {
  /* gemmlowp logistic: for |a|, 1 / (1 + exp(-|a|)); for a < 0, 1 minus that; 1/2 at 0. */
  if (a == 0) return 1 << 30;
  const int32_t abs_a = a > 0 ? a : -a;
  const int32_t pos = one_over_one_plus_x(exp_on_negative_values(-abs_a, 4));
  return a > 0 ? pos : INT32_MAX - pos;
}

int32_t ts_tanh_q4(int32_t a) {
  /* gemmlowp tanh: for n = -|a|, -tanh(n) = (1 - exp(2n)) / (1 + exp(2n)); exp(2n) is
   * exp on the same raw value read with one more integer bit (Q5). 0 at 0. */
  if (a == 0) return 0;
  const int32_t n = a < 0 ? a : -a;
  const int32_t t = one_minus_x_over_one_plus_x(ts_exp_on_negative_values_5(n));
  return a < 0 ? -t : t;
}
