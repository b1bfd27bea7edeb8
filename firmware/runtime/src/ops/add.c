/* ADD: int8 + int8 -> int8 with 4-D broadcasting and a fused activation (TFLM add.cc and
 * add_common.cc: 20 bits of headroom, inputs scaled to twice the larger input scale). */
#include "ts_internal.h"

ts_status_t ts_add_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const int32_t ai = op_in(L, o, 0), bi = op_in(L, o, 1), oi = op_out(L, o, 0);
  CHECK(ts_need_s8(L, ai, "first input"));
  CHECK(ts_need_s8(L, bi, "second input"));
  CHECK(ts_need_s8(L, oi, "output"));
  const ts_trec_t *a = &L->t[ai], *b = &L->t[bi], *out = &L->t[oi];
  ts_add_params_t *p = PARAMS(o, ts_add_params_t);
  int32_t da[4], db[4];
  if (ts_pad4(L, a, da) || ts_pad4(L, b, db) || ts_pad4(L, out, p->out_dims))
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "more than 4 dimensions");
  int32_t sa = 1, sb = 1;
  for (int k = 3; k >= 0; k--) {
    if ((da[k] != p->out_dims[k] && da[k] != 1) || (db[k] != p->out_dims[k] && db[k] != 1))
      return ts_ofail(L, TS_ERR_BAD_MODEL, "shapes do not broadcast");
    p->in1_strides[k] = da[k] == 1 ? 0 : sa;
    p->in2_strides[k] = db[k] == 1 ? 0 : sb;
    sa *= da[k];
    sb *= db[k];
  }
  int32_t act; /* AddOptions: activation */
  int present;
  CHECK(ts_options(L, "b", &act, &present));
  CHECK(ts_act_range(L, act, out, &p->act_min, &p->act_max));
  const double s1 = rec_scale(a, 0), s2 = rec_scale(b, 0), so = rec_scale(out, 0);
  const double twice_max = 2.0 * (s1 > s2 ? s1 : s2);
  p->left_shift = 20;
  p->input1_offset = -rec_zp(a, 0);
  p->input2_offset = -rec_zp(b, 0);
  p->output_offset = rec_zp(out, 0);
  CHECK(ts_quant_mult(L, s1 / twice_max, &p->input1_mult, &p->input1_shift));
  CHECK(ts_quant_mult(L, s2 / twice_max, &p->input2_mult, &p->input2_shift));
  CHECK(ts_quant_mult(L, twice_max / ((double)(1 << 20) * so), &p->output_mult,
                      &p->output_shift));
  if (p->input1_shift > 0 || p->input2_shift > 0 || p->output_shift > 0)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "output scale too small for ADD");
  return TS_OK;
}

ts_status_t ts_add_eval(const ts_eval_t *e) {
  KERNEL_ADD(e->params, e->in0, e->in1, e->out);
  return TS_OK;
}
