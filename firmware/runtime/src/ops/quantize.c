/* QUANTIZE int8 -> int8 (requantize: reference_ops::Requantize), safe in place. */
#include "ts_internal.h"

ts_status_t ts_quantize_prepare(ts_loader_t *L, ts_oprec_t *o) {
  CHECK(ts_need_s8_io(L, o));
  const int32_t ii = op_in(L, o, 0), oi = op_out(L, o, 0);
  const ts_trec_t *in = &L->t[ii], *out = &L->t[oi];
  if (ts_elems(in) != ts_elems(out))
    return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  ts_requant_params_t *p = PARAMS(o, ts_requant_params_t);
  p->size = ts_elems(in);
  p->input_zp = rec_zp(in, 0);
  p->output_zp = rec_zp(out, 0);
  o->flags |= TS_OPF_IN_PLACE; /* element i from element i */
  return ts_quant_mult(L, (double)rec_scale(in, 0) / (double)rec_scale(out, 0), &p->mult,
                       &p->shift);
}

ts_status_t ts_quantize_eval(const ts_eval_t *e) {
  ts_ref_requantize_s8(e->params, e->in0, e->out);
  return TS_OK;
}
