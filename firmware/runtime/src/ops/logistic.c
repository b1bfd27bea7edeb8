/* LOGISTIC int8 (TFLM logistic_common.cc): output zero point -128 (scale 1/256); the input
 * (x - zp) enters Q4.27 by the multiplier frexp(s_in * 2^27), inputs beyond the radius
 * where the result saturates are clamped first. In place. */
#include "ts_internal.h"

ts_status_t ts_sigmoid_like_prepare(ts_loader_t *L, ts_oprec_t *o) {
  CHECK(ts_need_s8_io(L, o));
  const ts_trec_t *in = &L->t[op_in(L, o, 0)], *out = &L->t[op_out(L, o, 0)];
  if (ts_elems(in) != ts_elems(out)) return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  ts_sigmoid_params_t *p = PARAMS(o, ts_sigmoid_params_t);
  p->size = ts_elems(in);
  p->input_zp = rec_zp(in, 0);
  CHECK(ts_frexp_multiplier(L, (double)rec_scale(in, 0) * (double)(1 << 27), &p->input_mult,
                            &p->input_left_shift));
  p->range_radius = ts_input_radius(4, p->input_left_shift);
  o->flags |= TS_OPF_IN_PLACE;
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
