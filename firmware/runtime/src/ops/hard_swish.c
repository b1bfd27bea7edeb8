/* HARD_SWISH int8 (TFLM hard_swish_common.cc): two Q15 multipliers, both computed in
 * float and widened to double: (s_in / 128) / s_out (its exponent must be <= 0) and
 * (s_in / 128) / (3 / 32768), each a QuantizeMultiplier result rounded to 16 bits. In
 * place. */
#include "ts_internal.h"

static int16_t to_q15(int32_t m) { /* DownScaleInt32ToInt16Multiplier */
  if (m >= INT32_MAX - (1 << 15)) return INT16_MAX;
  return (int16_t)((m + (1 << 15)) >> 16);
}

ts_status_t ts_hard_swish_prepare(ts_loader_t *L, ts_oprec_t *o) {
  ts_hard_swish_params_t *p = PARAMS(o, ts_hard_swish_params_t);
  const ts_trec_t *r[2];
  CHECK(ts_unary_prepare(L, o, p, r));
  const float hires = (1.0f / 128.0f) * rec_scale(r[0], 0);
  int32_t m;
  CHECK(ts_quant_mult(L, (double)(hires / rec_scale(r[1], 0)), &m, &p->output_exp));
  p->output_mult = to_q15(m);
  if (p->output_exp > 0)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "HARD_SWISH output scale too small");
  CHECK(ts_quant_mult(L, (double)(hires / (3.0f / 32768.0f)), &m, &p->reluish_exp));
  p->reluish_mult = to_q15(m);
  if (p->reluish_exp < -31) return ts_ofail(L, TS_ERR_UNSUPPORTED, "HARD_SWISH scale");
  return TS_OK;
}

ts_status_t ts_hard_swish_eval(const ts_eval_t *e) {
  ts_ref_hard_swish_s8(e->params, e->in0, e->out);
  return TS_OK;
}
