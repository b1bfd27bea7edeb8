/* MEAN over a constant set of axes of an int8 tensor of up to 4 dims (TFLM reduce.cc,
 * QuantizedMeanOrSum: 1/count folded into the multiplier). */
#include "ts_internal.h"

ts_status_t ts_mean_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const ts_trec_t *r[2];
  CHECK(ts_need_s8_io(L, o, r));
  const ts_trec_t *in = r[0], *out = r[1];
  ts_mean_params_t *p = PARAMS(o, ts_mean_params_t);
  int32_t axes[8], n;
  CHECK(ts_const_ints(L, o, 1, axes, 8, &n));
  if (ts_pad4(L, in, p->in_dims))
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "more than 4 dimensions");
  memset(p->reduce, 0, sizeof p->reduce);
  for (int32_t k = 0; k < n; k++) {
    int32_t a = axes[k] < 0 ? axes[k] + in->ndims : axes[k];
    if (a < 0 || a >= in->ndims)
      return ts_ofail(L, TS_ERR_BAD_MODEL, "axis %d out of range", axes[k]);
    p->reduce[4 - in->ndims + a] = 1;
  }
  int32_t kept = 1;
  p->count = 1;
  for (int k = 0; k < 4; k++) {
    if (p->reduce[k]) p->count *= p->in_dims[k];
    else kept *= p->in_dims[k];
  }
  if (kept != ts_elems(out))
    return ts_ofail(L, TS_ERR_BAD_MODEL, "output shape does not match");
  int32_t m, s;
  CHECK(ts_quant_mult(L, (double)rec_scale(in, 0) / (double)rec_scale(out, 0), &m, &s));
  /* Fold 1/count into the multiplier as TFLM's QuantizedMeanOrSum does. */
  int32_t sh = 31 - __builtin_clz((uint32_t)p->count); /* floor(log2(count)), count >= 1 */
  if (sh > 31 + s) sh = 31 + s;
  p->mult = (int32_t)(((int64_t)m << sh) / p->count);
  p->shift = s - sh;
  p->input_zp = rec_zp(in, 0);
  p->output_zp = rec_zp(out, 0);
  return TS_OK;
}

ts_status_t ts_mean_eval(const ts_eval_t *e) {
  KERNEL_MEAN(e->params, e->in0, e->out);
  return TS_OK;
}
