/* TANH int8 (TFLM tanh.cc): the input preparation of LOGISTIC (ops/logistic.c), gemmlowp's
 * tanh, output on 1/128 steps around zero point 0 (what the converter gives). In place. */
#include "ts_internal.h"

ts_status_t ts_tanh_prepare(ts_loader_t *L, ts_oprec_t *o) {
  return ts_sigmoid_like_prepare(L, o);
}

ts_status_t ts_tanh_eval(const ts_eval_t *e) {
  ts_ref_tanh_s8(e->params, e->in0, e->out);
  return TS_OK;
}
