/* ADD: int8 + int8 -> int8 with 4-D broadcasting and a fused activation (TFLM add.cc and
 * add_common.cc: 20 bits of headroom, inputs scaled to twice the larger input scale). */
#include "ts_internal.h"

/* ADD and SUB (ops/sub.c): the same prepare; TFLM's sub_common.cc computes the three
 * multipliers in float before widening them to double, add.cc in double. */
ts_status_t ts_add_like_prepare(ts_loader_t *L, ts_oprec_t *o, int sub) {
  ts_add_params_t *p = PARAMS(o, ts_add_params_t);
  const ts_trec_t *r[3];
  CHECK(ts_binary_prepare(L, o, p, "b", r)); /* AddOptions, SubOptions: activation first */
  const ts_trec_t *a = r[0], *b = r[1], *out = r[2];
  const float f1 = rec_scale(a, 0), f2 = rec_scale(b, 0), fo = rec_scale(out, 0);
  const double s1 = f1, s2 = f2, twice_max = 2.0 * (s1 > s2 ? s1 : s2);
  const float ftwice_max = 2 * (f1 > f2 ? f1 : f2);
  double m[3] = {s1 / twice_max, s2 / twice_max, twice_max / ((double)(1 << 20) * fo)};
  if (sub) { /* in float, then widened */
    m[0] = (double)(f1 / ftwice_max);
    m[1] = (double)(f2 / ftwice_max);
    m[2] = (double)(ftwice_max / ((float)(1 << 20) * fo));
  }
  p->left_shift = 20;
  CHECK(ts_quant_mult(L, m[0], &p->input1_mult, &p->input1_shift));
  CHECK(ts_quant_mult(L, m[1], &p->input2_mult, &p->input2_shift));
  CHECK(ts_quant_mult(L, m[2], &p->output_mult, &p->output_shift));
  if (p->input1_shift > 0 || p->input2_shift > 0 || p->output_shift > 0)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "output scale too small for %s", sub ? "SUB" : "ADD");
  return TS_OK;
}

ts_status_t ts_add_prepare(ts_loader_t *L, ts_oprec_t *o) { return ts_add_like_prepare(L, o, 0); }

ts_status_t ts_add_eval(const ts_eval_t *e) {
  KERNEL_ADD(e->params, e->in0, e->in1, e->out);
  return TS_OK;
}
