/* PAD of an int8 tensor of up to 4 dims with constant paddings; the pad value is the
 * output zero point (a real 0), as TFLM pad.cc. */
#include "ts_internal.h"

ts_status_t ts_pad_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const ts_trec_t *r[2];
  CHECK(ts_need_s8_io(L, o, r));
  const ts_trec_t *in = r[0], *out = r[1];
  ts_pad_params_t *p = PARAMS(o, ts_pad_params_t);
  int32_t v[8], n, od[4];
  CHECK(ts_const_ints(L, o, 1, v, 8, &n));
  if (ts_pad4(L, in, p->in_dims) || ts_pad4(L, out, od) || n != 2 * in->ndims ||
      out->ndims != in->ndims)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "unsupported padding shape");
  for (int k = 0; k < 4; k++) {
    const int j = k - (4 - in->ndims);
    p->before[k] = j >= 0 ? v[2 * j] : 0;
    p->after[k] = j >= 0 ? v[2 * j + 1] : 0;
    if (p->before[k] < 0 || p->after[k] < 0 || p->before[k] > od[k] - p->in_dims[k] ||
        p->after[k] != od[k] - p->in_dims[k] - p->before[k]) /* (dims >= 1: no overflow) */
      return ts_ofail(L, TS_ERR_BAD_MODEL, "padding does not match output");
  }
  p->pad_value = rec_zp(out, 0);
  return TS_OK;
}

ts_status_t ts_pad_eval(const ts_eval_t *e) {
  ts_ref_pad_s8(e->params, e->in0, e->out);
  return TS_OK;
}
