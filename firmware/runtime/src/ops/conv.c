/* CONV_2D (and the prepare DEPTHWISE_CONV_2D and TRANSPOSE_CONV share): int8 input and
 * output, constant int8 filter [out_c][k_h][k_w][in_c] with per-tensor or per-channel
 * scales, optional int32 bias, SAME/VALID padding, strides, dilation, fused activation. As
 * TFLM conv.cc / depthwise_conv.cc Prepare: per-channel multipliers in_scale *
 * filter_scale / out_scale. */
#include "ts_internal.h"

_Static_assert(offsetof(ts_dw_params_t, shift) == offsetof(ts_conv_params_t, shift) &&
                   offsetof(ts_dw_params_t, depth_multiplier) >= sizeof(ts_conv_params_t),
               "ts_dw_params_t must start with ts_conv_params_t's layout");

/* mode: TS_CONV_2D, TS_CONV_DW or TS_CONV_TRANSPOSE (ts_internal.h). TRANSPOSE_CONV's inputs
 * are the output shape, the filter, the input and the bias; its padding is that of a
 * convolution from its output back to its input, without dilation. */
ts_status_t ts_conv_like_prepare(ts_loader_t *L, ts_oprec_t *o, int mode) {
  const int dw_model = mode == TS_CONV_DW, tr = mode == TS_CONV_TRANSPOSE;
  const int32_t ii = op_in(L, o, tr ? 2 : 0), fi = op_in(L, o, 1), bi = op_in(L, o, tr ? 3 : 2),
                oi = op_out(L, o, 0);
  int32_t id[4], fd[4], od[4], v[7]; /* rank 4: the dims themselves */
  CHECK(ts_need_4d_io(L, ii, oi, id, od));
  CHECK(ts_need_const_filter(L, fi));
  CHECK(ts_need_rank(L, fi, 4, "filter"));
  const ts_trec_t *in = &L->t[ii], *f = &L->t[fi], *out = &L->t[oi];
  ts_pad4(L, f, fd);
  int present;
  if (tr) { /* the constant output shape */
    int32_t n;
    CHECK(ts_const_ints(L, o, 0, v, 4, &n));
    if (n != 4 || memcmp(v, od, sizeof od) != 0)
      return ts_ofail(L, TS_ERR_BAD_MODEL, "output shape does not match");
  }
  /* Conv2DOptions: padding, stride_w, stride_h, activation, dilation_w, dilation_h;
   * DepthwiseConv2DOptions: the same with depth_multiplier (derived from the shapes
   * instead, as TFLM) before the activation; TransposeConvOptions: padding, stride_w,
   * stride_h, activation. */
  static const char *const spec[3] = {"biibII", "biiIbII", "biib"};
  CHECK(ts_options(L, spec[mode], v, &present));
  if (!present) return ts_ofail(L, TS_ERR_BAD_MODEL, "lacks its options");
  const int32_t padding = v[0], sw = v[1], sh = v[2], act = v[3 + dw_model],
                dw = tr ? 1 : v[4 + dw_model], dh = tr ? 1 : v[5 + dw_model];
  const int32_t oc = od[3];
  if (id[0] != od[0])
    return ts_ofail(L, TS_ERR_BAD_MODEL, tr ? "filter shape does not match" : "batch mismatch");
  if (dw_model) {
    if (fd[0] != 1 || fd[3] != oc || oc % id[3] != 0)
      return ts_ofail(L, TS_ERR_BAD_MODEL, "filter shape does not match");
  } else {
    if (fd[0] != oc) return ts_ofail(L, TS_ERR_BAD_MODEL, "filter shape does not match");
    if (fd[3] != id[3])
      return ts_ofail(L, tr ? TS_ERR_BAD_MODEL : TS_ERR_UNSUPPORTED,
                      tr ? "filter shape does not match" : "grouped convolution");
  }
  if (f->num_quant != 1 && (int32_t)f->num_quant != oc)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "filter has %u scales for %d channels", f->num_quant,
                    oc);
  const int32_t *bias;
  ts_conv_params_t *p = PARAMS(o, ts_conv_params_t); /* a ts_dw_params_t starts as one */
  CHECK(ts_bias_of(L, bi, oc, &bias));
  const int32_t *from = tr ? od : id, *to = tr ? id : od;
  CHECK(ts_spatial(L, padding, from[1], fd[1], sh, dh, to[1], &p->pad_h));
  CHECK(ts_spatial(L, padding, from[2], fd[2], sw, dw, to[2], &p->pad_w));
  CHECK(ts_act_range(L, act, out, &p->act_min, &p->act_max));
  CHECK(ts_channel_mults(L, in, f, out, oc, &p->mult, &p->shift));
  p->batches = id[0], p->in_h = id[1], p->in_w = id[2], p->in_c = id[3];
  p->out_h = od[1], p->out_w = od[2], p->out_c = oc, p->k_h = fd[1], p->k_w = fd[2];
  p->stride_h = sh, p->stride_w = sw, p->dil_h = dh, p->dil_w = dw;
  p->input_offset = -rec_zp(in, 0), p->output_offset = rec_zp(out, 0);
  if (dw_model) PARAMS(o, ts_dw_params_t)->depth_multiplier = oc / id[3];
  if (!tr) return TS_OK;
  /* TRANSPOSE_CONV's int32 accumulators: arena scratch of the output's size */
  if (R_BYTES(out) > TS_MAX_TENSOR_BYTES / 4)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "output too large");
  return ts_request_scratch(L, o, 4 * R_BYTES(out));
}

ts_status_t ts_conv_prepare(ts_loader_t *L, ts_oprec_t *o) {
  return ts_conv_like_prepare(L, o, TS_CONV_2D);
}

ts_status_t ts_conv_eval(const ts_eval_t *e) {
  KERNEL_CONV(e->params, e->in0, e->in1, e->in2, e->out);
  return TS_OK;
}
