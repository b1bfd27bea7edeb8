/* The binary element-wise int8 reference kernels, ADD, SUB, MUL, MAXIMUM and MINIMUM, as
 * TFLM's reference kernels with 4-D broadcasting (BroadcastAdd4DSlow, BroadcastQuantSubSlow,
 * BroadcastMul4DSlow, MaximumMinimumBroadcastSlow): one loop over the output with each
 * input's strides (0 along a broadcast dimension), one element function per operator.
 *
 * ADD (reference_integer_ops::Add): both inputs are brought to a common scale with 20 bits
 * of headroom:
 *   a = MBQM((in1 + in1_offset) << 20, m1)   with m1 = s1 / (2 max(s1, s2))
 *   b = MBQM((in2 + in2_offset) << 20, m2)   with m2 = s2 / (2 max(s1, s2))
 *   out = clamp(MBQM(a + b, mo) + output_offset), mo = 2 max(s1, s2) / (2^20 s_out)
 * (the multipliers are < 1: their shifts are <= 0). SUB is the same with a - b.
 * MUL (reference_integer_ops::Mul):
 *   out = clamp(MBQM((in1 - zp1) * (in2 - zp2), m, shift) + zp_out),
 *   m * 2^shift = s1 * s2 / s_out (double, TFLM mul_common.cc).
 * MAXIMUM / MINIMUM: the larger / smaller raw int8 value, no requantization. */
#include "ts_kernels.h"
#include "ts_quant.h"

enum { OP_ADD, OP_SUB, OP_MUL, OP_MAX, OP_MIN };

static int32_t clamp(int32_t r, int32_t lo, int32_t hi) { return r < lo ? lo : r > hi ? hi : r; }

/* Output element of inputs x and y (raw int8 values) for operator op with parameters p. */
static inline __attribute__((always_inline)) int32_t element(int op, const void *p, int32_t x,
                                                             int32_t y) {
  if (op <= OP_SUB) {
    const ts_add_params_t *q = p;
    const int32_t a = ts_mbqm_call((x + q->input1_offset) * (1 << q->left_shift), q->input1_mult,
                              q->input1_shift);
    const int32_t b = ts_mbqm_call((y + q->input2_offset) * (1 << q->left_shift), q->input2_mult,
                              q->input2_shift);
    return clamp(ts_mbqm_call(a + (op == OP_SUB ? -b : b), q->output_mult, q->output_shift) +
                     q->output_offset,
                 q->act_min, q->act_max);
  }
  if (op == OP_MUL) {
    const ts_mul_params_t *q = p;
    return clamp(ts_mbqm_call((x + q->input1_offset) * (y + q->input2_offset), q->output_mult,
                         q->output_shift) +
                     q->output_offset,
                 q->act_min, q->act_max);
  }
  return (op == OP_MAX) == (x > y) ? x : y;
}

/* The broadcast loop of every binary operator: the output's dims and the inputs' strides
 * are TS_BINARY_HEAD's fields, at the start of p. */
static void binary(int op, const void *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output) {
  const ts_binary_params_t *h = p;
  const int32_t *d = h->out_dims, *s1 = h->in1_strides, *s2 = h->in2_strides;
  int32_t o = 0;
  for (int32_t i0 = 0; i0 < d[0]; i0++)
    for (int32_t i1 = 0; i1 < d[1]; i1++)
      for (int32_t i2 = 0; i2 < d[2]; i2++)
        for (int32_t i3 = 0; i3 < d[3]; i3++) {
          const int32_t a = i0 * s1[0] + i1 * s1[1] + i2 * s1[2] + i3 * s1[3];
          const int32_t b = i0 * s2[0] + i1 * s2[1] + i2 * s2[2] + i3 * s2[3];
          switch (op) { /* (each case inlines its element function) */
            case OP_ADD: /* (one copy for both: the sign of b as a value) */
            case OP_SUB: output[o++] = (int8_t)element(op, p, in1[a], in2[b]); break;
            case OP_MUL: output[o++] = (int8_t)element(OP_MUL, p, in1[a], in2[b]); break;
            case OP_MAX: output[o++] = (int8_t)element(OP_MAX, p, in1[a], in2[b]); break;
            default: output[o++] = (int8_t)element(OP_MIN, p, in1[a], in2[b]); break;
          }
        }
}

void ts_ref_add_s8(const ts_add_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output) {
  binary(OP_ADD, p, in1, in2, output);
}

void ts_ref_sub_s8(const ts_add_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output) {
  binary(OP_SUB, p, in1, in2, output);
}

void ts_ref_mul_s8(const ts_mul_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output) {
  binary(OP_MUL, p, in1, in2, output);
}

void ts_ref_minmax_s8(const ts_minmax_params_t *p, const int8_t *in1, const int8_t *in2,
                      int8_t *output) {
  binary(p->is_max ? OP_MAX : OP_MIN, p, in1, in2, output);
}
