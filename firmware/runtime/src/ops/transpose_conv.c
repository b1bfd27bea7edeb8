/* TRANSPOSE_CONV (Keras Conv2DTranspose): inputs output_shape (constant int32[4]), filter
 * (constant int8 [out_c][k_h][k_w][in_c], per-channel scales on dimension 0), int8 input,
 * optional int32 bias; SAME/VALID padding computed from the output size as TFLM
 * (ComputePaddingHeightWidth on the output), strides, fused activation. Its int32
 * accumulators are arena scratch (the output's size), planned like an activation that
 * lives only while the operator runs. */
#include "ts_internal.h"

ts_status_t ts_transpose_conv_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const int32_t si = op_in(L, o, 0), fi = op_in(L, o, 1), ii = op_in(L, o, 2),
                bi = op_in(L, o, 3), oi = op_out(L, o, 0);
  CHECK(ts_need_s8(L, ii, "input"));
  CHECK(ts_need_s8(L, oi, "output"));
  CHECK(ts_need_const_filter(L, fi));
  CHECK(ts_need_rank(L, ii, 4, "input"));
  CHECK(ts_need_rank(L, fi, 4, "filter"));
  CHECK(ts_need_rank(L, oi, 4, "output"));
  const ts_trec_t *in = &L->t[ii], *f = &L->t[fi], *out = &L->t[oi];
  int32_t id[4], fd[4], od[4], shape[4], n;
  ts_pad4(L, in, id);
  ts_pad4(L, f, fd);
  ts_pad4(L, out, od);
  CHECK(ts_const_ints(L, si, shape, 4, &n));
  if (n != 4 || shape[0] != od[0] || shape[1] != od[1] || shape[2] != od[2] ||
      shape[3] != od[3])
    return ts_ofail(L, TS_ERR_BAD_MODEL, "output shape does not match");
  const int32_t oc = od[3];
  if (id[0] != od[0] || fd[0] != oc || fd[3] != id[3])
    return ts_ofail(L, TS_ERR_BAD_MODEL, "filter shape does not match");
  if (f->num_quant != 1 && (int32_t)f->num_quant != oc)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "filter has %u scales for %d channels", f->num_quant,
                    oc);
  int32_t v[4]; /* TransposeConvOptions: padding, stride_w, stride_h, activation */
  int present;
  CHECK(ts_options(L, "biib", v, &present));
  if (!present) return ts_ofail(L, TS_ERR_BAD_MODEL, "lacks its options");
  const int32_t padding = v[0], sw = v[1], sh = v[2];
  ts_conv_params_t *p = PARAMS(o, ts_conv_params_t);
  /* The padding of a convolution from the output (size od) back to the input (size id). */
  CHECK(ts_spatial(L, padding, od[1], fd[1], sh, 1, id[1], &p->pad_h));
  CHECK(ts_spatial(L, padding, od[2], fd[2], sw, 1, id[2], &p->pad_w));
  const int32_t *bias;
  CHECK(ts_bias_of(L, bi, oc, &bias));
  CHECK(ts_act_range(L, v[3], out, &p->act_min, &p->act_max));
  CHECK(ts_channel_mults(L, in, f, out, oc, &p->mult, &p->shift));
  p->batches = id[0], p->in_h = id[1], p->in_w = id[2], p->in_c = id[3];
  p->out_h = od[1], p->out_w = od[2], p->out_c = oc, p->k_h = fd[1], p->k_w = fd[2];
  p->stride_h = sh, p->stride_w = sw, p->dil_h = 1, p->dil_w = 1;
  p->input_offset = -rec_zp(in, 0), p->output_offset = rec_zp(out, 0);
  if (R_BYTES(out) > TS_MAX_TENSOR_BYTES / 4)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "output too large");
  return ts_request_scratch(L, o, 4 * R_BYTES(out));
}

ts_status_t ts_transpose_conv_eval(const ts_eval_t *e) {
  ts_ref_transpose_conv_s8(e->params, e->in2, e->in1, ts_eval_input(e, 3), e->scratch, e->out);
  return TS_OK;
}
