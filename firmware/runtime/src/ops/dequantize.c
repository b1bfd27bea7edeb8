/* DEQUANTIZE int8 -> float32 (the output edge of a float-I/O model): scale * (q - zp) in
 * double, stored as float, as TFLM's reference_ops::Dequantize. */
#include "ts_internal.h"

ts_status_t ts_dequantize_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const int32_t ii = op_in(L, o, 0), oi = op_out(L, o, 0);
  CHECK(ts_need_s8(L, ii, "input"));
  if (oi < 0 || L->t[oi].dtype != TS_FLOAT32)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "DEQUANTIZE output must be float32");
  const ts_trec_t *in = &L->t[ii];
  if (ts_elems(in) != ts_elems(&L->t[oi]))
    return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  ts_affine_params_t *p = PARAMS(o, ts_affine_params_t);
  p->size = ts_elems(in);
  p->zero_point = rec_zp(in, 0);
  p->scale = rec_scale(in, 0);
  return TS_OK;
}

ts_status_t ts_dequantize_eval(const ts_eval_t *e) {
  ts_ref_dequantize_s8_f32(e->params, e->in0, e->out);
  return TS_OK;
}
