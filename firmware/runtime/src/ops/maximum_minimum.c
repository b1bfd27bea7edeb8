/* MAXIMUM and MINIMUM (as TFLM's maximum_minimum.cc, one file for both): the larger /
 * smaller raw int8 value with 4-D broadcasting; no requantization (the converter gives the
 * inputs and the output one quantization). */
#include "ts_internal.h"

static __attribute__((noinline)) ts_status_t minmax_prepare(ts_loader_t *L, ts_oprec_t *o,
                                                          int32_t is_max) {
  ts_minmax_params_t *p = PARAMS(o, ts_minmax_params_t);
  const ts_trec_t *r[3];
  CHECK(ts_binary_prepare(L, o, p, NULL, r)); /* no options: no activation */
  p->is_max = is_max;
  return TS_OK;
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
