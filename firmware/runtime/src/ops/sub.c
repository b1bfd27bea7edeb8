/* SUB: int8 - int8 -> int8 with 4-D broadcasting and a fused activation: ADD's arithmetic
 * and prepare (ops/add.c: 20 bits of headroom, both inputs on twice the larger scale; the
 * multipliers computed in float, as TFLM's sub_common.cc). */
#include "ts_internal.h"

ts_status_t ts_sub_prepare(ts_loader_t *L, ts_oprec_t *o) { return ts_add_like_prepare(L, o, 1); }

ts_status_t ts_sub_eval(const ts_eval_t *e) {
  ts_ref_sub_s8(e->params, e->in0, e->in1, e->out);
  return TS_OK;
}
