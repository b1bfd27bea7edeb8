/* RELU and RELU6 as standalone operators (as TFLM's activations.cc, one file for both).
 * RELU requantizes (s_in / s_out, float division widened to double) and clamps at the
 * output zero point; RELU6 clamps the raw values to [zp_in, zp_in + round(6 / s_in)] and
 * keeps the input's quantization (the identity multiplier, exact). Both run QUANTIZE's
 * requantize-and-clamp kernel and are safe in place. */
#include "ts_internal.h"

ts_status_t ts_relu_prepare(ts_loader_t *L, ts_oprec_t *o) {
  ts_relu_params_t *p = PARAMS(o, ts_relu_params_t);
  const ts_trec_t *r[2];
  CHECK(ts_unary_prepare(L, o, p, r));
  CHECK(ts_requant_mult(L, (double)(rec_scale(r[0], 0) / rec_scale(r[1], 0)), p));
  p->act_min = p->output_zp; /* zp + round(0 / scale) */
  return TS_OK;
}

ts_status_t ts_relu_eval(const ts_eval_t *e) {
  ts_ref_requantize_s8(e->params, e->in0, e->out);
  return TS_OK;
}

ts_status_t ts_relu6_prepare(ts_loader_t *L, ts_oprec_t *o) {
  ts_relu_params_t *p = PARAMS(o, ts_relu_params_t);
  const ts_trec_t *r[2];
  CHECK(ts_unary_prepare(L, o, p, r));
  /* MBQM(x, 2^30, 1) == x: the raw value, on the input's zero point */
  p->mult[0] = p->mult[1] = 1 << 30, p->shift[0] = p->shift[1] = 1;
  p->output_zp = p->input_zp;
  /* FloatToQuantizedType(6, s_in, zp_in): round(6 / s) + zp, clamped to int8 */
  int64_t six = (int64_t)ts_roundf_to_i32(6.0f / rec_scale(r[0], 0)) + p->input_zp;
  p->act_min = p->input_zp;
  p->act_max = (int32_t)(six > 127 ? 127 : six < -128 ? -128 : six);
  return TS_OK;
}

ts_status_t ts_relu6_eval(const ts_eval_t *e) { return ts_relu_eval(e); }
