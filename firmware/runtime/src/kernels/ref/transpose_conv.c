/* TRANSPOSE_CONV int8 reference kernel (TFLM reference_integer_ops::TransposeConv): each
 * input pixel (y, x) adds (input + input_offset) * filter into the output window starting
 * at (y * stride - pad, x * stride - pad), accumulated in int32 (scratch), then
 * out = clamp(MBQM(acc + bias, mult[c], shift[c]) + output_offset). */
#include <string.h>

#include "ts_kernels.h"
#include "ts_quant.h"

void ts_ref_transpose_conv_s8(const ts_conv_params_t *p, const int8_t *input,
                              const int8_t *filter, const int32_t *bias, int32_t *scratch,
                              int8_t *output) {
  const int32_t oc = p->out_c, ic = p->in_c;
  const size_t n = (size_t)p->batches * (size_t)p->out_h * (size_t)p->out_w * (size_t)oc;
  memset(scratch, 0, n * sizeof(int32_t));
  for (int32_t b = 0; b < p->batches; b++)
    for (int32_t y = 0; y < p->in_h; y++)
      for (int32_t x = 0; x < p->in_w; x++)
        for (int32_t c = 0; c < ic; c++) {
          const int32_t v =
              input[((b * p->in_h + y) * p->in_w + x) * ic + c] + p->input_offset;
          for (int32_t fy = 0; fy < p->k_h; fy++) {
            const int32_t oy = y * p->stride_h - p->pad_h + fy;
            if (oy < 0 || oy >= p->out_h) continue;
            for (int32_t fx = 0; fx < p->k_w; fx++) {
              const int32_t ox = x * p->stride_w - p->pad_w + fx;
              if (ox < 0 || ox >= p->out_w) continue;
              int32_t *acc = scratch + ((b * p->out_h + oy) * p->out_w + ox) * oc;
              for (int32_t o = 0; o < oc; o++)
                acc[o] += v * filter[((o * p->k_h + fy) * p->k_w + fx) * ic + c];
            }
          }
        }
  for (size_t i = 0; i < n; i++) {
    const int32_t o = (int32_t)(i % (size_t)oc);
    int32_t acc = scratch[i] + (bias ? bias[o] : 0);
    acc = ts_mbqm_call(acc, p->mult[o], p->shift[o]) + p->output_offset;
    if (acc < p->act_min) acc = p->act_min;
    if (acc > p->act_max) acc = p->act_max;
    output[i] = (int8_t)acc;
  }
}
