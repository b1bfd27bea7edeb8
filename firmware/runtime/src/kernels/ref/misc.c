/* Data-movement int8 reference kernels: PAD (pad value = output zero point or the given
 * constant), QUANTIZE int8 -> int8 (reference_ops::Requantize; RELU, RELU6 and LEAKY_RELU
 * are the same requantize and clamp), CONCATENATION (byte copy:
 * TFLM concatenates int8 tensors without requantizing), STRIDED_SLICE (byte gather with
 * the start/step/count prepared from TFLM's strided_slice_logic.h), QUANTIZE float32 ->
 * int8 and DEQUANTIZE int8 -> float32 (the edges of a float-I/O model). */
#include <string.h>

#include "ts_kernels.h"
#include "ts_quant.h"

/* The output filled with the pad value, then each input row (its last dimension) copied to
 * its place: the same bytes as TFLM's per-element walk. */
void ts_ref_pad_s8(const ts_pad_params_t *p, const int8_t *input, int8_t *output) {
  const int32_t *d = p->in_dims, *b = p->before;
  int32_t od[4];
  for (int k = 0; k < 4; k++) od[k] = b[k] + d[k] + p->after[k];
  memset(output, p->pad_value, (size_t)(od[0] * od[1] * od[2] * od[3]));
  for (int32_t i0 = 0; i0 < d[0]; i0++)
    for (int32_t i1 = 0; i1 < d[1]; i1++)
      for (int32_t i2 = 0; i2 < d[2]; i2++) {
        memcpy(output + (((i0 + b[0]) * od[1] + i1 + b[1]) * od[2] + i2 + b[2]) * od[3] + b[3],
               input, (size_t)d[3]);
        input += d[3];
      }
}

/* QUANTIZE int8 -> int8, RELU, RELU6 and LEAKY_RELU (ts_requant_params_t). */
void ts_ref_requantize_s8(const ts_requant_params_t *p, const int8_t *input, int8_t *output) {
  for (int32_t i = 0; i < p->size; i++) {
    const int32_t x = (int32_t)input[i] - p->input_zp, n = x < 0;
    const int32_t v = p->output_zp + ts_mbqm_call(x, p->mult[n], p->shift[n]);
    output[i] = (int8_t)(v < p->act_min ? p->act_min : v > p->act_max ? p->act_max : v);
  }
}

void ts_ref_concat_s8(const ts_concat_params_t *p, const int8_t *const *inputs,
                      int8_t *output) {
  int8_t *o = output;
  for (int32_t k = 0; k < p->outer; k++)
    for (int32_t i = 0; i < p->num_inputs; i++) {
      memcpy(o, inputs[i] + (size_t)k * (size_t)p->inner[i], (size_t)p->inner[i]);
      o += p->inner[i];
    }
}

void ts_ref_strided_slice_s8(const ts_slice_params_t *p, const int8_t *input, int8_t *output) {
  const int32_t *d = p->in_dims;
  int32_t o = 0;
  for (int32_t j0 = 0; j0 < p->count[0]; j0++)
    for (int32_t j1 = 0; j1 < p->count[1]; j1++)
      for (int32_t j2 = 0; j2 < p->count[2]; j2++)
        for (int32_t j3 = 0; j3 < p->count[3]; j3++) {
          const int32_t i0 = p->start[0] + j0 * p->step[0], i1 = p->start[1] + j1 * p->step[1];
          const int32_t i2 = p->start[2] + j2 * p->step[2], i3 = p->start[3] + j3 * p->step[3];
          output[o++] = input[((i0 * d[1] + i1) * d[2] + i2) * d[3] + i3];
        }
}

void ts_ref_quantize_f32_s8(const ts_affine_params_t *p, const float *input, int8_t *output) {
  for (int32_t i = 0; i < p->size; i++) {
    const float q = input[i] / p->scale;
    /* (a NaN input gives the zero point; TFLM's int conversion of NaN is undefined) */
    const int64_t v = (int64_t)(q == q ? ts_roundf_to_i32(q) : 0) + p->zero_point;
    output[i] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
  }
}

void ts_ref_dequantize_s8_f32(const ts_affine_params_t *p, const int8_t *input, float *output) {
  const double scale = (double)p->scale;
  for (int32_t i = 0; i < p->size; i++)
    output[i] = (float)(scale * (double)((int32_t)input[i] - p->zero_point));
}
