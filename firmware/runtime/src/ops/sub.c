/* SUB: int8 - int8 -> int8 with 4-D broadcasting and a fused activation: ADD's arithmetic
 * (20 bits of headroom, both inputs on twice the larger scale), but TFLM's sub_common.cc
 * computes the three multipliers in float before widening them to double. */
#include "ts_internal.h"

ts_status_t ts_sub_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const int32_t ai = op_in(L, o, 0), bi = op_in(L, o, 1), oi = op_out(L, o, 0);
  CHECK(ts_need_s8(L, ai, "first input"));
  CHECK(ts_need_s8(L, bi, "second input"));
  CHECK(ts_need_s8(L, oi, "output"));
  const ts_trec_t *a = &L->t[ai], *b = &L->t[bi], *out = &L->t[oi];
  ts_add_params_t *p = PARAMS(o, ts_add_params_t);
  CHECK(ts_broadcast4(L, a, b, out, p->out_dims, p->in1_strides, p->in2_strides));
  int32_t v[2]; /* SubOptions: activation, pot_scale_int16 */
  int present;
  CHECK(ts_options(L, "bb", v, &present));
  CHECK(ts_act_range(L, v[0], out, &p->act_min, &p->act_max));
  const float s1 = rec_scale(a, 0), s2 = rec_scale(b, 0), so = rec_scale(out, 0);
  const float twice_max = 2 * (s1 > s2 ? s1 : s2);
  p->left_shift = 20;
  p->input1_offset = -rec_zp(a, 0);
  p->input2_offset = -rec_zp(b, 0);
  p->output_offset = rec_zp(out, 0);
  CHECK(ts_quant_mult(L, (double)(s1 / twice_max), &p->input1_mult, &p->input1_shift));
  CHECK(ts_quant_mult(L, (double)(s2 / twice_max), &p->input2_mult, &p->input2_shift));
  CHECK(ts_quant_mult(L, (double)(twice_max / ((float)(1 << 20) * so)), &p->output_mult,
                      &p->output_shift));
  if (p->input1_shift > 0 || p->input2_shift > 0 || p->output_shift > 0)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "output scale too small for SUB");
  return TS_OK;
}

ts_status_t ts_sub_eval(const ts_eval_t *e) {
  ts_ref_sub_s8(e->params, e->in0, e->in1, e->out);
  return TS_OK;
}
