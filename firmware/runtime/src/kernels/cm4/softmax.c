/* SOFTMAX int8 -> int8, bit-exact with ts_ref_softmax_s8 (kernels/ref/softmax.c): the same
 * fixed-point steps (gemmlowp exp in Q5.26, sum in Q12.19, Newton-Raphson reciprocal), with
 * each element's exp computed once instead of twice, and exp's products by a shorter form of
 * SaturatingRoundingDoublingHighMul (mul_q31). The reference computes exp(x) for the
 * sum and again for the output; here the exps of the first ROW_BUF elements of a row are
 * kept on the stack (512 B) between the two passes, and a row's maximum (x = 0, exp = 1.0,
 * INT32_MAX) costs no exp at all. exp is ~85 % of the reference's instructions on a
 * 10-class row. Longer rows recompute the exps past ROW_BUF as the reference does. */
#include "ts_kernels.h"
#include "ts_quant.h"

#ifndef TS_OPT_SOFTMAX_ROW_BUF
#define TS_OPT_SOFTMAX_ROW_BUF 128 /* exps kept per row (int32) */
#endif

/* gemmlowp's SaturatingRoundingDoublingHighMul (ts_srdhm) for operands that are never both
 * INT32_MIN: its nudge (2^30, or 1 - 2^30 for a negative product) and truncating division
 * by 2^31 are one floor shift, (a * b + 2^30) >> 31 (for ab < 0 the truncation adds
 * 2^31 - 1, which with the nudge is 2^30): SMULL, ADDS, ADC and two shifts on the M4. */
static inline int32_t mul_q31(int32_t a, int32_t b) {
  return (int32_t)(((int64_t)a * b + (INT64_C(1) << 30)) >> 31);
}

/* ts_exp_on_negative_values_5 (ts_quant.c) for a in Q5.26, a < 0, the same steps with
 * mul_q31: no operand reaches INT32_MIN (the polynomial's x lies in [-1/8, 1/8), results
 * and the exp(-2^k) constants in (0, 1)). Not static: the kernel check compares it with
 * the reference's exp on its own (a rounding tie in mul_q31 changes 1 exp in ~10^5, too
 * rarely to show in whole softmax rows). */
int32_t ts_opt_softmax_exp(int32_t a) {
  const int32_t a_mod_q_minus_q = (a & ((1 << 24) - 1)) - (1 << 24); /* [-1/4, 0) in Q5.26 */
  /* exp on [-1/4, 0): Taylor expansion around -1/8 of its Q0.31 value (x 2^5, no overflow) */
  const int32_t exp_minus_one_eighth = 1895147668, one_third = 715827883;
  const int32_t x = (int32_t)((uint32_t)a_mod_q_minus_q << 5) + (1 << 28);
  const int32_t x2 = mul_q31(x, x), x3 = mul_q31(x2, x), x4 = mul_q31(x2, x2);
  const int32_t poly = ts_rounding_divide_by_pot(
      mul_q31(ts_rounding_divide_by_pot(x4, 2) + x3, one_third) + x2, 1);
  int32_t result = exp_minus_one_eighth + mul_q31(exp_minus_one_eighth, x + poly);
  /* times exp(-2^k) for each set bit k = -2 .. 4 of the rest */
  const int32_t remainder = a_mod_q_minus_q - a;
  static const int32_t exp_neg_pot[7] = {1672461947, 1302514674, 790015084, 290630308,
                                         39332535,   720401,     242};
  for (int k = 0; k < 7; k++)
    if (remainder & (INT32_C(1) << (24 + k))) result = mul_q31(result, exp_neg_pot[k]);
  return result;
}

/* exp(d * beta * input_scale) in Q0.31 for d = in - max <= 0, d >= diff_min. */
static inline int32_t exp_of(const ts_softmax_params_t *p, int32_t d) {
  if (d == 0) return INT32_MAX; /* ts_exp_on_negative_values_5(0): exactly 1.0 */
  const int32_t x = ts_srdhm((int32_t)((uint32_t)d << p->input_left_shift), p->input_multiplier);
  return x == 0 ? INT32_MAX : ts_opt_softmax_exp(x);
}

void ts_opt_softmax_s8(const ts_softmax_params_t *p, const int8_t *input, int8_t *output) {
  int32_t ex[TS_OPT_SOFTMAX_ROW_BUF];
  for (int32_t i = 0; i < p->outer; i++) {
    const int8_t *in = input + i * p->depth;
    int8_t *out = output + i * p->depth;
    int32_t mx = -128;
    for (int32_t c = 0; c < p->depth; c++)
      if (in[c] > mx) mx = in[c];
    int32_t sum_q12 = 0;
    for (int32_t c = 0; c < p->depth; c++) {
      const int32_t d = (int32_t)in[c] - mx;
      if (d >= p->diff_min) {
        const int32_t e = exp_of(p, d);
        if (c < TS_OPT_SOFTMAX_ROW_BUF) ex[c] = e;
        sum_q12 += ts_rounding_divide_by_pot(e, 12);
      }
    }
    int32_t bits_over_unit;
    const int32_t recip = ts_reciprocal_q12(sum_q12, &bits_over_unit);
    const int32_t shift = bits_over_unit + 31 - 8;
    for (int32_t c = 0; c < p->depth; c++) {
      const int32_t d = (int32_t)in[c] - mx;
      int32_t v = -128;
      if (d >= p->diff_min) {
        const int32_t e = c < TS_OPT_SOFTMAX_ROW_BUF ? ex[c] : exp_of(p, d);
        v = ts_rounding_divide_by_pot(ts_srdhm(recip, e), shift) - 128;
        if (v > 127) v = 127;
      }
      out[c] = (int8_t)v;
    }
  }
}
