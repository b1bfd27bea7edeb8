/* MEAN int8 reference kernel, as TFLM's reference_ops::QuantizedMeanOrSum (mean):
 *   sum = sum of raw int8 inputs over the reduced axes (int32), n = number of them;
 *   out = clamp(MBQM(sum - input_zp * n, mult', shift') + output_zp), where (mult', shift')
 *   fold 1/n into the input_scale/output_scale multiplier (computed at prepare, see
 *   ts_mean_fold_count in the interpreter). */
#include "ts_kernels.h"
#include "ts_quant.h"

void ts_ref_mean_s8(const ts_mean_params_t *p, const int8_t *input, int8_t *output) {
  const int32_t *d = p->in_dims;
  int32_t n[4], outs = 1; /* n: extent walked per output along each axis */
  for (int k = 0; k < 4; k++) {
    n[k] = p->reduce[k] ? d[k] : 1;
    outs *= p->reduce[k] ? 1 : d[k];
  }
  for (int32_t o = 0; o < outs; o++) {
    int32_t a[4], rest = o; /* the kept coordinates of output o, the last axis fastest */
    for (int k = 3; k >= 0; k--) {
      const int32_t m = p->reduce[k] ? 1 : d[k];
      a[k] = rest % m;
      rest /= m;
    }
    int32_t sum = 0;
    for (int32_t r0 = 0; r0 < n[0]; r0++)
      for (int32_t r1 = 0; r1 < n[1]; r1++)
        for (int32_t r2 = 0; r2 < n[2]; r2++)
          for (int32_t r3 = 0; r3 < n[3]; r3++)
            sum += input[(((a[0] + r0) * d[1] + a[1] + r1) * d[2] + a[2] + r2) * d[3] + a[3] + r3];
    const int32_t shifted = (int32_t)((int64_t)sum - (int64_t)p->input_zp * p->count);
    int32_t v = ts_mbqm(shifted, p->mult, p->shift) + p->output_zp;
    if (v < -128) v = -128;
    if (v > 127) v = 127;
    output[o] = (int8_t)v;
  }
}
