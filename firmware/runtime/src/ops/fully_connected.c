/* FULLY_CONNECTED: int8 input (any shape whose size is a multiple of the filter's depth),
 * constant int8 filter [out_depth][accum_depth] (per-tensor or per-channel), optional int32
 * bias, fused activation; no shuffled weights. */
#include "ts_internal.h"

ts_status_t ts_fully_connected_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const ts_trec_t *r[2];
  CHECK(ts_need_s8_io(L, o, r));
  const int32_t fi = op_in(L, o, 1), bi = op_in(L, o, 2);
  CHECK(ts_need_const_filter(L, fi));
  CHECK(ts_need_rank(L, fi, 2, "filter"));
  const ts_trec_t *in = r[0], *f = &L->t[fi], *out = r[1];
  int32_t v[2]; /* FullyConnectedOptions: activation, weights_format */
  int present;
  CHECK(ts_options(L, "bb", v, &present));
  const int32_t act = v[0];
  if (v[1] != 0) return ts_ofail(L, TS_ERR_UNSUPPORTED, "shuffled weights");
  const int32_t out_depth = DIM(f, 0), accum = DIM(f, 1);
  if (ts_elems(in) % accum != 0 || ts_elems(out) != ts_elems(in) / accum * out_depth)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  const int32_t *bias;
  ts_fc_params_t *p = PARAMS(o, ts_fc_params_t);
  CHECK(ts_bias_of(L, bi, out_depth, &bias));
  CHECK(ts_act_range(L, act, out, &p->act_min, &p->act_max));
  const int per_channel = f->num_quant > 1;
  if (per_channel && (int32_t)f->num_quant != out_depth)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "filter scales do not match");
  CHECK(ts_channel_mults(L, in, f, out, per_channel ? out_depth : 1, &p->mult, &p->shift));
  p->batches = ts_elems(in) / accum, p->accum_depth = accum, p->out_depth = out_depth;
  p->per_channel = per_channel;
  p->input_offset = -rec_zp(in, 0), p->filter_offset = per_channel ? 0 : -rec_zp(f, 0);
  p->output_offset = rec_zp(out, 0);
  return TS_OK;
}

ts_status_t ts_fully_connected_eval(const ts_eval_t *e) {
  KERNEL_FC(e->params, e->in0, e->in1, e->in2, e->out);
  return TS_OK;
}
