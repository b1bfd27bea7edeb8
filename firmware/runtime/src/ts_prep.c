/* Helpers the operators' prepare functions share: tensor checks, options, requantization
 * multipliers, output sizes and padding, constant vectors, and scratch requests. */
#include "ts_internal.h"

int32_t ts_op_in(const ts_loader_t *L, const ts_oprec_t *o, int32_t k) {
  return k < o->n_in ? (int32_t)ts_le32(L->fb.buf + o->in_pos + 4 * (uint32_t)k) : -1;
}

int32_t ts_elems(const ts_trec_t *r) {
  return (int32_t)(r->plan.size / ts_dtype_size(r->dtype)); /* validated types only */
}

ts_status_t(ts_need_s8)(ts_loader_t *L, int32_t idx, const char *what) {
  if (idx < 0) return ts_ofail(L, TS_ERR_BAD_MODEL, "lacks its %s", what);
  const ts_trec_t *r = &L->t[idx];
  if (r->dtype != TS_INT8)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "%s tensor %d is %s, not int8", what, idx,
                    ts_dtype_name(r->dtype));
  if (r->num_quant != 1)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "%s tensor %d needs per-tensor quantization", what,
                    idx);
  return TS_OK;
}

ts_status_t ts_need_s8_io(ts_loader_t *L, const ts_oprec_t *o, const ts_trec_t *r[2]) {
  const int32_t ii = op_in(L, o, 0), oi = op_out(L, o, 0);
  CHECK(ts_need_s8(L, ii, "input"));
  CHECK(ts_need_s8(L, oi, "output"));
  r[0] = &L->t[ii];
  r[1] = &L->t[oi];
  return TS_OK;
}

ts_status_t ts_need_4d_io(ts_loader_t *L, int32_t ii, int32_t oi, int32_t id[4], int32_t od[4]) {
  CHECK(ts_need_s8(L, ii, "input"));
  CHECK(ts_need_s8(L, oi, "output"));
  CHECK(ts_need_rank(L, ii, 4, "input"));
  CHECK(ts_need_rank(L, oi, 4, "output"));
  ts_pad4(L, &L->t[ii], id);
  ts_pad4(L, &L->t[oi], od);
  return TS_OK;
}

ts_status_t(ts_need_rank)(ts_loader_t *L, int32_t idx, int rank, const char *what) {
  if (L->t[idx].ndims != rank)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "%s tensor %d must have %d dimensions", what, idx,
                    rank);
  return TS_OK;
}

ts_status_t ts_act_range(ts_loader_t *L, int32_t act, const ts_trec_t *out, int32_t *lo,
                         int32_t *hi) {
  if (ts_activation_range_s8(act, rec_scale(out, 0), rec_zp(out, 0), lo, hi))
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "unsupported fused activation %d", act);
  return TS_OK;
}

ts_status_t ts_quant_mult(ts_loader_t *L, double m, int32_t *mult, int32_t *shift) {
  if (ts_quantize_multiplier(m, mult, shift) || *shift > 30)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "requantization scale out of range");
  return TS_OK;
}

ts_status_t ts_requant_mult(ts_loader_t *L, double m, ts_requant_params_t *p) {
  p->act_min = -128, p->act_max = 127;
  CHECK(ts_quant_mult(L, m, &p->mult[0], &p->shift[0]));
  p->mult[1] = p->mult[0], p->shift[1] = p->shift[0];
  return TS_OK;
}

/* TFLite's output size and padding (ComputePaddingHeightWidth): SAME = 0, VALID = 1. In
 * int32 (k, in, out >= 1): an effective kernel size beyond int32 is refused, and once the
 * output size matches, (out - 1) * stride < in, so the total padding cannot overflow. */
ts_status_t ts_spatial(ts_loader_t *L, int32_t padding, int32_t in, int32_t k, int32_t stride,
                       int32_t dil, int32_t out, int32_t *pad) {
  if (stride < 1 || dil < 1 || padding < 0 || padding > 1 || k - 1 > (INT32_MAX - 1) / dil)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "has invalid stride/dilation/padding");
  const int32_t eff = (k - 1) * dil + 1;
  const int32_t span = padding == 0 ? in : in - eff + 1; /* ceil(span / stride) outputs */
  const int32_t expect = span > 0 ? (span - 1) / stride + 1 : 0;
  if (expect != out)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "output size %d, expected %d", out, expect);
  const int32_t total = (out - 1) * stride - in + eff;
  *pad = total > 0 ? total / 2 : 0;
  return TS_OK;
}

ts_status_t ts_bias_of(ts_loader_t *L, int32_t idx, int32_t n, const int32_t **b) {
  *b = NULL;
  if (idx < 0) return TS_OK;
  const ts_trec_t *r = &L->t[idx];
  if (r->dtype != TS_INT32 || !r->data_off || ts_elems(r) != n)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "bias must be a constant int32[%d]", n);
  *b = (const int32_t *)(const void *)CONST_DATA(r);
  return TS_OK;
}

ts_status_t ts_need_const_filter(ts_loader_t *L, int32_t idx) {
  if (idx < 0) return ts_ofail(L, TS_ERR_BAD_MODEL, "lacks its filter");
  const ts_trec_t *r = &L->t[idx];
  if (r->dtype != TS_INT8 || !r->data_off || r->num_quant < 1)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "filter tensor %d must be constant quantized int8",
                    idx);
  return TS_OK;
}

ts_status_t ts_channel_mults(ts_loader_t *L, const ts_trec_t *in, const ts_trec_t *f,
                             const ts_trec_t *out, int32_t n, const int32_t **mult,
                             const int32_t **shift) {
  if (L->chan + 2 * n > L->chan_end)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "inconsistent channel count");
  int32_t *m = L->chan, *s = L->chan + n;
  L->chan += 2 * n;
  const double is = (double)rec_scale(in, 0), os = (double)rec_scale(out, 0);
  for (int32_t c = 0; c < n; c++) {
    const double fs = (double)rec_scale(f, f->num_quant == 1 ? 0 : (uint32_t)c);
    int32_t mc, sc;
    CHECK(ts_quant_mult(L, is * fs / os, &mc, &sc));
    if (!L->chan_given) {
      m[c] = mc;
      s[c] = sc;
    } else if (m[c] != mc || s[c] != sc) {
#ifdef TS_STRIP_MESSAGES /* (kept: the host cannot check the device's tables) */
      return ts_fail_kept(L, TS_ERR_BAD_ARG,
                          "the given tables do not match the model (regenerate them)");
#else
      return ts_ofail(L, TS_ERR_BAD_ARG,
                      "channel %d: the given tables do not match the model (regenerate them)", c);
#endif
    }
  }
  *mult = m;
  *shift = s;
  return TS_OK;
}

int ts_pad4(const ts_loader_t *L, const ts_trec_t *r, int32_t d[4]) {
  if (r->ndims > 4) return -1;
  for (int k = 0; k < 4; k++) d[k] = 1;
  for (int k = 0; k < r->ndims; k++) d[4 - r->ndims + k] = DIM(r, k);
  return 0;
}

ts_status_t ts_const_ints(ts_loader_t *L, const ts_oprec_t *o, int32_t input, int32_t *vals,
                          int32_t max, int32_t *n) {
  const int32_t idx = op_in(L, o, input);
  if (idx < 0) return ts_ofail(L, TS_ERR_BAD_MODEL, "lacks an input");
  const ts_trec_t *r = &L->t[idx];
  if (!r->data_off || (r->dtype != TS_INT32 && r->dtype != TS_INT64))
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "tensor %d must be constant int32", idx);
  *n = ts_elems(r);
  if (*n > max) return ts_ofail(L, TS_ERR_UNSUPPORTED, "too many values");
  const int wide = r->dtype == TS_INT64; /* then the high word must be the low word's sign */
  for (int32_t k = 0; k < *n; k++) {
    const uint8_t *e = L->fb.buf + r->data_off + (4u << wide) * (uint32_t)k;
    vals[k] = (int32_t)ts_le32(e);
    if (wide && (int32_t)ts_le32(e + 4) != (vals[k] < 0 ? -1 : 0))
      return ts_ofail(L, TS_ERR_BAD_MODEL, "value out of range");
  }
  return TS_OK;
}

/* The scratch of operator i is planned as one more buffer (the record whose index its
 * scratch slot holds during init), alive at operator i only. */
ts_status_t ts_request_scratch(ts_loader_t *L, ts_oprec_t *o, uint32_t bytes) {
  if (bytes == 0) return TS_OK;
  if (!(ts_ops[o->kind].flags & TS_OPT_SCRATCH)) /* a table line without TS_OPT_SCRATCH */
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "operator kind %d has no scratch slot", o->kind);
  if (bytes > TS_MAX_TENSOR_BYTES)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "scratch of %u bytes", bytes);
  ts_plan_buf_t *p = &L->t[*SCRATCH_SLOT(o, ts_ops[o->kind].rec_size)].plan;
  p->first = p->last = L->op;
  if (bytes > p->size) p->size = bytes; /* (one request per operator, but the tests' too) */
  return TS_OK;
}

/* The scratch is sized now and planned (first = last = the operator) only if the loader
 * grants the in-place run (ts_interp.c). */
ts_status_t ts_offer_in_place_copy(ts_loader_t *L, ts_oprec_t *o, uint32_t bytes) {
  CHECK(ts_request_scratch(L, o, bytes));
  L->t[*SCRATCH_SLOT(o, ts_ops[o->kind].rec_size)].plan.first = -1;
  o->flags |= TS_OPF_IN_PLACE | TS_OPF_IN_PLACE_COPY;
  return TS_OK;
}

ts_status_t ts_broadcast4(ts_loader_t *L, const ts_trec_t *a, const ts_trec_t *b,
                          const ts_trec_t *out, int32_t out_dims[4], int32_t sa[4],
                          int32_t sb[4]) {
  int32_t da[4], db[4];
  if (ts_pad4(L, a, da) || ts_pad4(L, b, db) || ts_pad4(L, out, out_dims))
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "more than 4 dimensions");
  int32_t na = 1, nb = 1;
  for (int k = 3; k >= 0; k--) {
    if ((da[k] != out_dims[k] && da[k] != 1) || (db[k] != out_dims[k] && db[k] != 1))
      return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not broadcast");
    sa[k] = da[k] == 1 ? 0 : na;
    sb[k] = db[k] == 1 ? 0 : nb;
    na *= da[k];
    nb *= db[k];
  }
  return TS_OK;
}

_Static_assert(offsetof(ts_add_params_t, act_max) == offsetof(ts_binary_params_t, act_max) &&
                   offsetof(ts_mul_params_t, act_max) == offsetof(ts_binary_params_t, act_max) &&
                   offsetof(ts_minmax_params_t, act_max) ==
                       offsetof(ts_binary_params_t, act_max),
               "the binary operators' parameters start with TS_BINARY_HEAD");

ts_status_t ts_binary_prepare(ts_loader_t *L, ts_oprec_t *o, void *params,
                              const char *act_opts, const ts_trec_t *r[3]) {
  ts_binary_params_t h;
  memset(&h, 0, sizeof h);
  for (int k = 0; k < 3; k++) {
    const int32_t idx = k < 2 ? op_in(L, o, k) : op_out(L, o, 0);
    CHECK(ts_need_s8(L, idx, k == 0 ? "first input" : k == 1 ? "second input" : "output"));
    r[k] = &L->t[idx];
  }
  CHECK(ts_broadcast4(L, r[0], r[1], r[2], h.out_dims, h.in1_strides, h.in2_strides));
  if (act_opts) {
    int32_t v[2]; /* AddOptions, SubOptions, MulOptions: activation first */
    int present;
    CHECK(ts_options(L, act_opts, v, &present));
    CHECK(ts_act_range(L, v[0], r[2], &h.act_min, &h.act_max));
    h.input1_offset = -rec_zp(r[0], 0);
    h.input2_offset = -rec_zp(r[1], 0);
    h.output_offset = rec_zp(r[2], 0);
  }
  memcpy(params, &h, sizeof h); /* the head of the operator's parameters */
  /* element i of each input is read before element i of the output is written (every
   * kernel): the output may take the place of an input of its own size */
  o->flags |= TS_OPF_IN_PLACE | TS_OPF_IN_PLACE_ANY;
  return TS_OK;
}

_Static_assert(offsetof(ts_relu_params_t, output_zp) == offsetof(ts_unary_params_t, output_zp) &&
                   offsetof(ts_requant_params_t, output_zp) ==
                       offsetof(ts_unary_params_t, output_zp) &&
                   offsetof(ts_leaky_relu_params_t, output_zp) ==
                       offsetof(ts_unary_params_t, output_zp) &&
                   offsetof(ts_sigmoid_params_t, output_zp) ==
                       offsetof(ts_unary_params_t, output_zp) &&
                   offsetof(ts_hard_swish_params_t, output_zp) ==
                       offsetof(ts_unary_params_t, output_zp),
               "the unary operators' parameters start with TS_UNARY_HEAD");

ts_status_t ts_unary_prepare(ts_loader_t *L, ts_oprec_t *o, void *params,
                             const ts_trec_t *r[2]) {
  CHECK(ts_need_s8_io(L, o, r));
  if (ts_elems(r[0]) != ts_elems(r[1]))
    return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  const ts_unary_params_t h = {ts_elems(r[0]), rec_zp(r[0], 0), rec_zp(r[1], 0)};
  memcpy(params, &h, sizeof h); /* the head of the operator's parameters */
  o->flags |= TS_OPF_IN_PLACE;  /* element i is read before it is written */
  return TS_OK;
}

ts_status_t ts_frexp_multiplier(ts_loader_t *L, double m, int32_t *mult, int32_t *shift) {
  if (ts_quantize_multiplier(m, mult, shift) || *mult == 0 || *shift < 0 || *shift > 31)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "input scale out of range");
  /* ts_quantize_multiplier renormalizes a mantissa that rounds up to 2^31 to (2^30, e + 1);
   * frexp's does not (it overflows int32): refuse that case, keep an exact 0.5 * 2^e. */
  double half = 0.5;
  for (int32_t k = 0; k < *shift; k++) half *= 2.0;
  if (*mult == (1 << 30) && m != half)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "input scale out of range");
  return TS_OK;
}

int32_t ts_input_radius(int32_t int_bits, int32_t left_shift) {
  /* floor((2^int_bits - 1) * 2^(31 - int_bits) / 2^left_shift), exact in integers */
  return (int32_t)((((INT64_C(1) << int_bits) - 1) << (31 - int_bits)) >> left_shift);
}
