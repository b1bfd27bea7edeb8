/* ADD int8, Cortex-M4 kernel, bit-exact with ts_ref_add_s8 (kernels/ref/binary.c).
 *
 * Each input's rescaling a = MBQM((x + offset) << 20, m, shift) depends on the int8 value x
 * alone, so for same-shape inputs (a residual) of at least TABLE_MIN outputs with an output
 * shift in [-23, -2] (real layers) both are tabulated once per call (2 x 256 int32 on the
 * stack, 512 requantizations: ts_requant_slow, i.e. TFLM's MultiplyByQuantizedMultiplier exactly,
 * checked against ts_mbqm), and per output what is left is two table loads, the add and
 * the convolutions' SMLAL sequence with the output offset folded in (ts_rq_words, whose
 * SSAT is the int8 clamp), then a fused activation's clamp. Everything else (broadcasting,
 * smaller tensors such as a squeeze-excite 1x1xC, other shifts) runs the reference kernel,
 * as TFLM does with CMSIS-NN (whose ADD takes same-shape inputs only); its table-driven
 * broadcast loop was given up for code size (-140 B). */
#include "ts_dsp.h"
#include "ts_kernels.h"
#include "ts_quant.h"

enum { TABLE_MIN = 256 };

void ts_opt_add_s8(const ts_add_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output) {
  const int32_t *d = p->out_dims, *s1 = p->in1_strides, *s2 = p->in2_strides;
  const int32_t n = d[0] * d[1] * d[2] * d[3], e = -p->output_shift;
  /* same shapes: both inputs dense (a dimension of size 1 has any stride: prepare gives
   * it 0, e.g. the batch) */
  int flat = 1;
  for (int32_t k = 3, st = 1; k >= 0; st *= d[k], k--)
    flat &= d[k] == 1 || (s1[k] == st && s2[k] == st);
  if (n < TABLE_MIN || !flat || e < 2 || e > 23) {
    ts_ref_add_s8(p, in1, in2, output);
    return;
  }
  int32_t t1[256], t2[256]; /* rescaled input value, indexed by x + 128 */
  for (int32_t v = -128; v < 128; v++) {
    t1[v + 128] = ts_requant_slow((v + p->input1_offset) * (1 << p->left_shift),
                                  p->input1_mult, p->input1_shift);
    t2[v + 128] = ts_requant_slow((v + p->input2_offset) * (1 << p->left_shift),
                                  p->input2_mult, p->input2_shift);
  }
  const int32_t *a = t1 + 128, *b = t2 + 128, lo = p->act_min, hi = p->act_max;
  /* ts_rq_words's words: the output offset folded into the rounding term (ts_dsp.h) */
  const uint32_t q[3] = {(uint32_t)p->output_mult,
                         (uint32_t)((INT32_C(1) << (e - 2)) + p->output_offset * (INT32_C(1) << (e - 1))),
                         (uint32_t)(e - 1)};
  if (lo == -128 && hi == 127) {
    for (int32_t i = 0; i < n; i++) output[i] = (int8_t)ts_rq_words(a[in1[i]] + b[in2[i]], q);
  } else {
    for (int32_t i = 0; i < n; i++)
      output[i] = ts_clamp_s8(ts_rq_words(a[in1[i]] + b[in2[i]], q), lo, hi);
  }
}
