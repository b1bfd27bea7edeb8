/* MAXIMUM and MINIMUM (as TFLM's maximum_minimum.cc, one file for both): the larger /
 * smaller raw int8 value with 4-D broadcasting; no requantization (the converter gives the
 * inputs and the output one quantization). */
#include "ts_internal.h"

static ts_status_t minmax_prepare(ts_loader_t *L, ts_oprec_t *o, int32_t is_max) {
  const int32_t ai = op_in(L, o, 0), bi = op_in(L, o, 1), oi = op_out(L, o, 0);
  CHECK(ts_need_s8(L, ai, "first input"));
  CHECK(ts_need_s8(L, bi, "second input"));
  CHECK(ts_need_s8(L, oi, "output"));
  ts_minmax_params_t *p = PARAMS(o, ts_minmax_params_t);
  p->is_max = is_max;
  o->flags |= TS_OPF_IN_PLACE | TS_OPF_IN_PLACE_ANY; /* element-wise: as ADD (ops/add.c) */
  return ts_broadcast4(L, &L->t[ai], &L->t[bi], &L->t[oi], p->out_dims, p->in1_strides,
                       p->in2_strides);
}

ts_status_t ts_maximum_prepare(ts_loader_t *L, ts_oprec_t *o) {
  return minmax_prepare(L, o, 1);
}

ts_status_t ts_minimum_prepare(ts_loader_t *L, ts_oprec_t *o) {
  return minmax_prepare(L, o, 0);
}

ts_status_t ts_maximum_eval(const ts_eval_t *e) {
  ts_ref_minmax_s8(e->params, e->in0, e->in1, e->out);
  return TS_OK;
}

ts_status_t ts_minimum_eval(const ts_eval_t *e) { return ts_maximum_eval(e); }
