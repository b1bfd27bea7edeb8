/* DEPTHWISE_CONV_2D: filter [1][k_h][k_w][out_c], out_c = in_c * depth_multiplier (taken
 * from the shapes, as TFLM); the rest as CONV_2D (ops/conv.c). */
#include "ts_internal.h"

ts_status_t ts_depthwise_conv_prepare(ts_loader_t *L, ts_oprec_t *o) {
  return ts_conv_like_prepare(L, o, 1);
}

ts_status_t ts_depthwise_conv_eval(const ts_eval_t *e) {
  KERNEL_DW(e->params, e->in0, e->in1, e->in2, e->out);
  return TS_OK;
}
