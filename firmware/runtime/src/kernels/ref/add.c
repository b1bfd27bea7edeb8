/* ADD int8 reference kernel, as TFLM's reference_integer_ops::Add / BroadcastAdd4DSlow.
 * Both inputs are brought to a common scale with 20 bits of headroom:
 *   a = MBQM((in1 + in1_offset) << 20, m1)   with m1 = s1 / (2 max(s1, s2))
 *   b = MBQM((in2 + in2_offset) << 20, m2)   with m2 = s2 / (2 max(s1, s2))
 *   out = clamp(MBQM(a + b, mo) + output_offset), mo = 2 max(s1, s2) / (2^20 s_out)
 * (the multipliers are < 1: their shifts are <= 0). SUB (reference_ops::Sub /
 * BroadcastQuantSubSlow) is the same with a - b. */
#include "ts_kernels.h"
#include "ts_quant.h"

/* (always inlined: ADD and SUB each get the loop with their constant sign) */
static inline __attribute__((always_inline)) void add_or_sub(const ts_add_params_t *p,
                                                             const int8_t *in1,
                                                             const int8_t *in2,
                                                             int8_t *output, int sub) {
  int32_t o = 0;
  for (int32_t i0 = 0; i0 < p->out_dims[0]; i0++)
    for (int32_t i1 = 0; i1 < p->out_dims[1]; i1++)
      for (int32_t i2 = 0; i2 < p->out_dims[2]; i2++)
        for (int32_t i3 = 0; i3 < p->out_dims[3]; i3++) {
          const int32_t a_idx = i0 * p->in1_strides[0] + i1 * p->in1_strides[1] +
                                i2 * p->in1_strides[2] + i3 * p->in1_strides[3];
          const int32_t b_idx = i0 * p->in2_strides[0] + i1 * p->in2_strides[1] +
                                i2 * p->in2_strides[2] + i3 * p->in2_strides[3];
          const int32_t a = (in1[a_idx] + p->input1_offset) * (1 << p->left_shift);
          const int32_t b = (in2[b_idx] + p->input2_offset) * (1 << p->left_shift);
          const int32_t sa = ts_mbqm(a, p->input1_mult, p->input1_shift);
          const int32_t sb = ts_mbqm(b, p->input2_mult, p->input2_shift);
          int32_t r = ts_mbqm(sub ? sa - sb : sa + sb, p->output_mult, p->output_shift) +
                      p->output_offset;
          if (r < p->act_min) r = p->act_min;
          if (r > p->act_max) r = p->act_max;
          output[o++] = (int8_t)r;
        }
}

void ts_ref_add_s8(const ts_add_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output) {
  add_or_sub(p, in1, in2, output, 0);
}

void ts_ref_sub_s8(const ts_add_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output) {
  add_or_sub(p, in1, in2, output, 1);
}
