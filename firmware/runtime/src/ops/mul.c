/* MUL: int8 * int8 -> int8 with 4-D broadcasting (squeeze-and-excite's 1x1xC against
 * HxWxC) and a fused activation; multiplier s1 * s2 / s_out in double (TFLM mul_common.cc). */
#include "ts_internal.h"

ts_status_t ts_mul_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const int32_t ai = op_in(L, o, 0), bi = op_in(L, o, 1), oi = op_out(L, o, 0);
  CHECK(ts_need_s8(L, ai, "first input"));
  CHECK(ts_need_s8(L, bi, "second input"));
  CHECK(ts_need_s8(L, oi, "output"));
  const ts_trec_t *a = &L->t[ai], *b = &L->t[bi], *out = &L->t[oi];
  ts_mul_params_t *p = PARAMS(o, ts_mul_params_t);
  CHECK(ts_broadcast4(L, a, b, out, p->out_dims, p->in1_strides, p->in2_strides));
  int32_t act; /* MulOptions: activation */
  int present;
  CHECK(ts_options(L, "b", &act, &present));
  CHECK(ts_act_range(L, act, out, &p->act_min, &p->act_max));
  p->input1_offset = -rec_zp(a, 0);
  p->input2_offset = -rec_zp(b, 0);
  p->output_offset = rec_zp(out, 0);
  o->flags |= TS_OPF_IN_PLACE | TS_OPF_IN_PLACE_ANY; /* element-wise: as ADD (ops/add.c) */
  return ts_quant_mult(L, (double)rec_scale(a, 0) * (double)rec_scale(b, 0) /
                              (double)rec_scale(out, 0),
                       &p->output_mult, &p->output_shift);
}

ts_status_t ts_mul_eval(const ts_eval_t *e) {
  ts_ref_mul_s8(e->params, e->in0, e->in1, e->out);
  return TS_OK;
}
