/* QUANTIZE: int8 -> int8 (requantize, reference_ops::Requantize: MBQM by s_in / s_out in
 * double) or float32 -> int8 (reference_ops::AffineQuantize: the input edge of a float-I/O
 * model). Both are safe in place (element i is written after element i, at a byte offset
 * not after the bytes it was read from). */
#include "ts_internal.h"

ts_status_t ts_quantize_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const int32_t ii = op_in(L, o, 0), oi = op_out(L, o, 0);
  if (ii < 0) return ts_ofail(L, TS_ERR_BAD_MODEL, "lacks its input");
  ts_quantize_params_t *p = PARAMS(o, ts_quantize_params_t);
  const ts_trec_t *in = &L->t[ii];
  p->from_float = in->dtype == TS_FLOAT32;
  if (!p->from_float) CHECK(ts_need_s8(L, ii, "input"));
  CHECK(ts_need_s8(L, oi, "output"));
  const ts_trec_t *out = &L->t[oi];
  if (ts_elems(in) != ts_elems(out)) return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  o->flags |= TS_OPF_IN_PLACE;
  if (p->from_float) {
    p->u.aq.size = ts_elems(in);
    p->u.aq.zero_point = rec_zp(out, 0);
    p->u.aq.scale = rec_scale(out, 0);
    if (!(p->u.aq.scale > 0.0f))
      return ts_ofail(L, TS_ERR_BAD_MODEL, "output scale not positive");
    return TS_OK;
  }
  p->u.rq.size = ts_elems(in);
  p->u.rq.input_zp = rec_zp(in, 0);
  p->u.rq.output_zp = rec_zp(out, 0);
  return ts_requant_mult(L, (double)rec_scale(in, 0) / (double)rec_scale(out, 0), &p->u.rq);
}

ts_status_t ts_quantize_eval(const ts_eval_t *e) {
  const ts_quantize_params_t *p = e->params;
  if (p->from_float)
    ts_ref_quantize_f32_s8(&p->u.aq, e->in0, e->out);
  else
    ts_ref_requantize_s8(&p->u.rq, e->in0, e->out);
  return TS_OK;
}
