/* LEAKY_RELU: identity multiplier s_in / s_out for x >= 0, alpha * s_in / s_out below (both
 * products in float widened to double, TFLM leaky_relu_common.cc). A negative alpha is
 * refused (TFLM folds its sign separately; Keras slopes are positive). QUANTIZE's
 * requantize-and-clamp kernel with a multiplier per sign. In place. */
#include "ts_internal.h"

ts_status_t ts_leaky_relu_prepare(ts_loader_t *L, ts_oprec_t *o) {
  ts_leaky_relu_params_t *p = PARAMS(o, ts_leaky_relu_params_t);
  const ts_trec_t *r[2];
  CHECK(ts_unary_prepare(L, o, p, r));
  int32_t bits; /* LeakyReluOptions: alpha (float32) */
  int present;
  float alpha;
  CHECK(ts_options(L, "i", &bits, &present));
  memcpy(&alpha, &bits, 4);
  if (!(alpha >= 0.0f)) return ts_ofail(L, TS_ERR_UNSUPPORTED, "negative or NaN alpha");
  const float si = rec_scale(r[0], 0), so = rec_scale(r[1], 0);
  p->act_min = -128, p->act_max = 127;
  CHECK(ts_quant_mult(L, (double)(si * alpha / so), &p->mult[1], &p->shift[1]));
  return ts_quant_mult(L, (double)(si / so), &p->mult[0], &p->shift[0]);
}

/* (RELU's eval: the same kernel and parameter record) */
ts_status_t ts_leaky_relu_eval(const ts_eval_t *e) { return ts_relu_eval(e); }
