/* SOFTMAX int8 -> int8 over the last dimension (output scale 1/256, zero point -128), as
 * TFLM softmax.cc: PreprocessSoftmaxScaling with 5 integer bits for the scaled difference. */
#include "ts_internal.h"

ts_status_t ts_softmax_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const ts_trec_t *r[2];
  CHECK(ts_need_s8_io(L, o, r));
  const ts_trec_t *in = r[0], *out = r[1];
  if (rec_zp(out, 0) != -128 || rec_scale(out, 0) != 1.0f / 256.0f)
    return ts_ofail(L, TS_ERR_UNSUPPORTED,
                    "int8 softmax output must have scale 1/256, zero point -128");
  if (in->ndims < 1 || ts_elems(in) != ts_elems(out))
    return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  int32_t beta_bits; /* SoftmaxOptions: beta (float32; 0 when absent) */
  int present;
  float beta;
  CHECK(ts_options(L, "i", &beta_bits, &present));
  memcpy(&beta, &beta_bits, 4);
  ts_softmax_params_t *p = PARAMS(o, ts_softmax_params_t);
  p->depth = DIM(in, in->ndims - 1);
  p->outer = ts_elems(in) / p->depth;
  double real = (double)beta * (double)rec_scale(in, 0) * (double)(1 << 26);
  if (real > 2147483647.0) real = 2147483647.0;
  if (!(real > 1.0) ||
      ts_quantize_multiplier(real, &p->input_multiplier, &p->input_left_shift) ||
      p->input_left_shift < 0 || p->input_left_shift > 31)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "softmax beta * scale out of range");
  /* diff_min = -floor(31 * 2^26 / 2^left_shift) (CalculateInputRadius). */
  p->diff_min = -(int32_t)((INT64_C(31) << 26) >> p->input_left_shift);
  return TS_OK;
}

ts_status_t ts_softmax_eval(const ts_eval_t *e) {
  KERNEL_SOFTMAX(e->params, e->in0, e->out);
  return TS_OK;
}
