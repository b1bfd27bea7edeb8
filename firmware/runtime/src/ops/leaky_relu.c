/* LEAKY_RELU: identity multiplier s_in / s_out for x >= 0, alpha * s_in / s_out below (both
 * products in float widened to double, TFLM leaky_relu_common.cc). A negative alpha is
 * refused (TFLM folds its sign separately; Keras slopes are positive). In place. */
#include "ts_internal.h"

ts_status_t ts_leaky_relu_prepare(ts_loader_t *L, ts_oprec_t *o) {
  CHECK(ts_need_s8_io(L, o));
  const ts_trec_t *in = &L->t[op_in(L, o, 0)], *out = &L->t[op_out(L, o, 0)];
  if (ts_elems(in) != ts_elems(out)) return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  int32_t bits; /* LeakyReluOptions: alpha (float32) */
  int present;
  float alpha;
  CHECK(ts_options(L, "i", &bits, &present));
  memcpy(&alpha, &bits, 4);
  if (!(alpha >= 0.0f)) return ts_ofail(L, TS_ERR_UNSUPPORTED, "negative or NaN alpha");
  ts_leaky_relu_params_t *p = PARAMS(o, ts_leaky_relu_params_t);
  const float si = rec_scale(in, 0), so = rec_scale(out, 0);
  p->size = ts_elems(in);
  p->input_zp = rec_zp(in, 0);
  p->output_zp = rec_zp(out, 0);
  CHECK(ts_quant_mult(L, (double)(si * alpha / so), &p->mult_alpha, &p->shift_alpha));
  CHECK(ts_quant_mult(L, (double)(si / so), &p->mult_identity, &p->shift_identity));
  o->flags |= TS_OPF_IN_PLACE;
  return TS_OK;
}

ts_status_t ts_leaky_relu_eval(const ts_eval_t *e) {
  ts_ref_leaky_relu_s8(e->params, e->in0, e->out);
  return TS_OK;
}
