/* RELU and RELU6 as standalone operators (as TFLM's activations.cc, one file for both).
 * RELU requantizes (s_in / s_out, float division widened to double) and clamps at the
 * output zero point; RELU6 clamps the raw values to [zp_in, zp_in + round(6 / s_in)] and
 * keeps the input's quantization. Both are safe in place. */
#include "ts_internal.h"

static ts_status_t flat_io(ts_loader_t *L, ts_oprec_t *o, ts_relu_params_t *p) {
  CHECK(ts_need_s8_io(L, o));
  const ts_trec_t *in = &L->t[op_in(L, o, 0)], *out = &L->t[op_out(L, o, 0)];
  if (ts_elems(in) != ts_elems(out)) return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  p->size = ts_elems(in);
  p->input_zp = rec_zp(in, 0);
  p->output_zp = rec_zp(out, 0);
  o->flags |= TS_OPF_IN_PLACE;
  return TS_OK;
}

ts_status_t ts_relu_prepare(ts_loader_t *L, ts_oprec_t *o) {
  ts_relu_params_t *p = PARAMS(o, ts_relu_params_t);
  CHECK(flat_io(L, o, p));
  const ts_trec_t *in = &L->t[op_in(L, o, 0)], *out = &L->t[op_out(L, o, 0)];
  CHECK(ts_quant_mult(L, (double)(rec_scale(in, 0) / rec_scale(out, 0)), &p->mult, &p->shift));
  p->act_min = p->output_zp; /* zp + round(0 / scale) */
  p->act_max = 127;
  return TS_OK;
}

ts_status_t ts_relu_eval(const ts_eval_t *e) {
  ts_ref_relu_s8(e->params, e->in0, e->out);
  return TS_OK;
}

ts_status_t ts_relu6_prepare(ts_loader_t *L, ts_oprec_t *o) {
  ts_relu_params_t *p = PARAMS(o, ts_relu_params_t);
  CHECK(flat_io(L, o, p));
  const ts_trec_t *in = &L->t[op_in(L, o, 0)];
  /* FloatToQuantizedType(6, s_in, zp_in): round(6 / s) + zp, clamped to int8 */
  int64_t six = (int64_t)ts_roundf_to_i32(6.0f / rec_scale(in, 0)) + p->input_zp;
  p->act_min = p->input_zp;
  p->act_max = (int32_t)(six > 127 ? 127 : six < -128 ? -128 : six);
  return TS_OK;
}

ts_status_t ts_relu6_eval(const ts_eval_t *e) {
  ts_ref_relu6_s8(e->params, e->in0, e->out);
  return TS_OK;
}
