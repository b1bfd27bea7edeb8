/* TRANSPOSE_CONV (Keras Conv2DTranspose): inputs output_shape (constant int32[4]), filter
 * (constant int8 [out_c][k_h][k_w][in_c], per-channel scales on dimension 0), int8 input,
 * optional int32 bias; SAME/VALID padding computed from the output size as TFLM
 * (ComputePaddingHeightWidth on the output), strides, fused activation. Its int32
 * accumulators are arena scratch (the output's size), planned like an activation that
 * lives only while the operator runs. */
#include "ts_internal.h"

/* CONV_2D's prepare (ops/conv.c) with the transposed geometry. */
ts_status_t ts_transpose_conv_prepare(ts_loader_t *L, ts_oprec_t *o) {
  return ts_conv_like_prepare(L, o, TS_CONV_TRANSPOSE);
}

ts_status_t ts_transpose_conv_eval(const ts_eval_t *e) {
  ts_ref_transpose_conv_s8(e->params, e->in2, e->in1, ts_eval_input(e, 3), e->scratch, e->out);
  return TS_OK;
}
