/* LOGISTIC int8 (TFLM logistic_common.cc): output zero point -128 (scale 1/256); the input
 * (x - zp) enters Q4.27 by the multiplier frexp(s_in * 2^27), inputs beyond the radius
 * where the result saturates are clamped first. In place. */
#include "ts_internal.h"

ts_status_t ts_sigmoid_like_prepare(ts_loader_t *L, ts_oprec_t *o) {
  ts_sigmoid_params_t *p = PARAMS(o, ts_sigmoid_params_t);
  const ts_trec_t *r[2];
  CHECK(ts_unary_prepare(L, o, p, r));
  CHECK(ts_frexp_multiplier(L, (double)rec_scale(r[0], 0) * (double)(1 << 27), &p->input_mult,
                            &p->input_left_shift));
  p->range_radius = ts_input_radius(4, p->input_left_shift);
  return TS_OK;
}

ts_status_t ts_logistic_prepare(ts_loader_t *L, ts_oprec_t *o) {
  CHECK(ts_sigmoid_like_prepare(L, o));
  if (rec_zp(&L->t[op_out(L, o, 0)], 0) != -128)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "int8 LOGISTIC output must have zero point -128");
  return TS_OK;
}

ts_status_t ts_logistic_eval(const ts_eval_t *e) {
  ts_ref_logistic_s8(e->params, e->in0, e->out);
  return TS_OK;
}
