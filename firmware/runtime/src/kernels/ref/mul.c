/* MUL int8 reference kernel, as TFLM's reference_integer_ops::Mul / BroadcastMul4DSlow:
 *   out = clamp(MBQM((in1 - zp1) * (in2 - zp2), m, shift) + zp_out),
 *   m * 2^shift = s1 * s2 / s_out (double, TFLM mul_common.cc).
 * MAXIMUM / MINIMUM (reference_ops::MaximumMinimumBroadcastSlow): the larger / smaller raw
 * int8 value, no requantization. Both broadcast over 4-D shapes with zero strides. */
#include "ts_kernels.h"
#include "ts_quant.h"

#define BROADCAST_LOOP(p, body)                                                        \
  do {                                                                                 \
    int32_t o_ = 0;                                                                    \
    for (int32_t i0 = 0; i0 < (p)->out_dims[0]; i0++)                                  \
      for (int32_t i1 = 0; i1 < (p)->out_dims[1]; i1++)                                \
        for (int32_t i2 = 0; i2 < (p)->out_dims[2]; i2++)                              \
          for (int32_t i3 = 0; i3 < (p)->out_dims[3]; i3++) {                          \
            const int32_t a_ = i0 * (p)->in1_strides[0] + i1 * (p)->in1_strides[1] +   \
                               i2 * (p)->in1_strides[2] + i3 * (p)->in1_strides[3];    \
            const int32_t b_ = i0 * (p)->in2_strides[0] + i1 * (p)->in2_strides[1] +   \
                               i2 * (p)->in2_strides[2] + i3 * (p)->in2_strides[3];    \
            output[o_++] = (int8_t)(body);                                             \
          }                                                                            \
  } while (0)

static inline int32_t mul_one(const ts_mul_params_t *p, int32_t a, int32_t b) {
  int32_t r = ts_mbqm((a + p->input1_offset) * (b + p->input2_offset), p->output_mult,
                      p->output_shift) +
              p->output_offset;
  if (r < p->act_min) r = p->act_min;
  if (r > p->act_max) r = p->act_max;
  return r;
}

void ts_ref_mul_s8(const ts_mul_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output) {
  BROADCAST_LOOP(p, mul_one(p, in1[a_], in2[b_]));
}

void ts_ref_minmax_s8(const ts_minmax_params_t *p, const int8_t *in1, const int8_t *in2,
                      int8_t *output) {
  if (p->is_max)
    BROADCAST_LOOP(p, in1[a_] > in2[b_] ? in1[a_] : in2[b_]);
  else
    BROADCAST_LOOP(p, in1[a_] < in2[b_] ? in1[a_] : in2[b_]);
}
