/* MEAN int8 reference kernel, as TFLM's reference_ops::QuantizedMeanOrSum (mean):
 *   sum = sum of raw int8 inputs over the reduced axes (int32), n = number of them;
 *   out = clamp(MBQM(sum - input_zp * n, mult', shift') + output_zp), where (mult', shift')
 *   fold 1/n into the input_scale/output_scale multiplier (computed at prepare, see
 *   ts_mean_fold_count in the interpreter). */
#include "ts_kernels.h"
#include "ts_quant.h"

void ts_ref_mean_s8(const ts_mean_params_t *p, const int8_t *input, int8_t *output) {
  const int32_t *d = p->in_dims;
  int32_t lim[4], o = 0;
  for (int k = 0; k < 4; k++) lim[k] = p->reduce[k] ? 1 : d[k];
  /* Outer loops walk the kept coordinates (in output order), inner loops the reduced. */
  for (int32_t a0 = 0; a0 < lim[0]; a0++)
    for (int32_t a1 = 0; a1 < lim[1]; a1++)
      for (int32_t a2 = 0; a2 < lim[2]; a2++)
        for (int32_t a3 = 0; a3 < lim[3]; a3++) {
          int32_t sum = 0;
          const int32_t n0 = p->reduce[0] ? d[0] : 1, n1 = p->reduce[1] ? d[1] : 1;
          const int32_t n2 = p->reduce[2] ? d[2] : 1, n3 = p->reduce[3] ? d[3] : 1;
          for (int32_t r0 = 0; r0 < n0; r0++)
            for (int32_t r1 = 0; r1 < n1; r1++)
              for (int32_t r2 = 0; r2 < n2; r2++)
                for (int32_t r3 = 0; r3 < n3; r3++) {
                  const int32_t i0 = a0 + r0, i1 = a1 + r1, i2 = a2 + r2, i3 = a3 + r3;
                  sum += input[((i0 * d[1] + i1) * d[2] + i2) * d[3] + i3];
                }
          const int32_t shifted = (int32_t)((int64_t)sum - (int64_t)p->input_zp * p->count);
          int32_t v = ts_mbqm(shifted, p->mult, p->shift) + p->output_zp;
          if (v < -128) v = -128;
          if (v > 127) v = 127;
          output[o++] = (int8_t)v;
        }
}
