/* MUL: int8 * int8 -> int8 with 4-D broadcasting (squeeze-and-excite's 1x1xC against
 * HxWxC) and a fused activation; multiplier s1 * s2 / s_out in double (TFLM mul_common.cc). */
#include "ts_internal.h"

ts_status_t ts_mul_prepare(ts_loader_t *L, ts_oprec_t *o) {
  ts_mul_params_t *p = PARAMS(o, ts_mul_params_t);
  const ts_trec_t *r[3];
  CHECK(ts_binary_prepare(L, o, p, "b", r)); /* MulOptions: activation */
  return ts_quant_mult(L, (double)rec_scale(r[0], 0) * (double)rec_scale(r[1], 0) /
                              (double)rec_scale(r[2], 0),
                       &p->output_mult, &p->output_shift);
}

ts_status_t ts_mul_eval(const ts_eval_t *e) {
  ts_ref_mul_s8(e->params, e->in0, e->in1, e->out);
  return TS_OK;
}
