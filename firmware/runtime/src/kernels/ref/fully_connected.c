/* FULLY_CONNECTED int8 reference kernel, as TFLM's reference_integer_ops::FullyConnected
 * (per-tensor) and FullyConnectedPerChannel:
 *   acc = sum_d (filter[o][d] + filter_offset) * (in[b][d] + input_offset) + bias[o]
 *   out = clamp(MBQM(acc, mult, shift) + output_offset) */
#include "ts_kernels.h"
#include "ts_quant.h"

void ts_ref_fully_connected_s8(const ts_fc_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output) {
  for (int32_t b = 0; b < p->batches; b++) {
    const int8_t *in = input + b * p->accum_depth;
    for (int32_t o = 0; o < p->out_depth; o++) {
      const int8_t *f = filter + o * p->accum_depth;
      int32_t acc = 0;
      for (int32_t d = 0; d < p->accum_depth; d++)
        acc += ((int32_t)f[d] + p->filter_offset) * ((int32_t)in[d] + p->input_offset);
      /* wrapping add: an extreme bias must not be C undefined behaviour (fuzz_model);
       * two's complement wrap is what TFLM's int32 add does on every target */
      if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
      const int32_t c = p->per_channel ? o : 0;
      acc = ts_mbqm(acc, p->mult[c], p->shift[c]) + p->output_offset;
      if (acc < p->act_min) acc = p->act_min;
      if (acc > p->act_max) acc = p->act_max;
      output[b * p->out_depth + o] = (int8_t)acc;
    }
  }
}
