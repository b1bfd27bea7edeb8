/* FULLY_CONNECTED int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_fully_connected_s8.
 *
 * The input row is converted once per batch to int16 with the input offset added, in the
 * SXTB16 order (x0, x2, x1, x3) per group of 4 (on the stack, TS_OPT_FC_MAX_DEPTH values at
 * most, else the reference kernel runs). Four output rows at a time: per 4 inputs, 4 LDR +
 * 8 SXTB16 (weights), 2 LDR (inputs) and 8 SMLAD. A filter offset (0 for int8 weights,
 * which are symmetric) is folded in exactly: sum (f + fo)(x + xo) = sum f(x + xo) +
 * fo * sum (x + xo). */
#include "ts_dsp.h"
#include "ts_kernels.h"

static inline int32_t row_dot(const int8_t *f, const int16_t *x, int32_t d4, int32_t depth) {
  int32_t acc = 0;
  for (int32_t d = 0; d < d4; d += 4) {
    const uint32_t w = ts_ld32(f + d);
    acc = ts_smlad(ts_sxtb16(w), ts_ld32(x + d), acc);
    acc = ts_smlad(ts_sxtb16_ror8(w), ts_ld32(x + d + 2), acc);
  }
  for (int32_t d = d4; d < depth; d++) acc += f[d] * x[d];
  return acc;
}

static inline int8_t finish(const ts_fc_params_t *p, int32_t acc, int32_t o) {
  const int32_t c = p->per_channel ? o : 0;
  return ts_clamp_s8(ts_requant(acc, p->mult[c], p->shift[c]) + p->output_offset, p->act_min,
                     p->act_max);
}

void ts_opt_fully_connected_s8(const ts_fc_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output) {
  const int32_t depth = p->accum_depth, d4 = depth & ~3;
  if (depth > TS_OPT_FC_MAX_DEPTH) {
    ts_ref_fully_connected_s8(p, input, filter, bias, output);
    return;
  }
  int16_t x[TS_OPT_FC_MAX_DEPTH];
  const uint32_t off2 = (uint32_t)(uint16_t)p->input_offset * 0x10001u;
  for (int32_t b = 0; b < p->batches; b++) {
    const int8_t *in = input + b * depth;
    int32_t xsum = 0; /* sum (x + xo), only needed for a filter offset */
    for (int32_t d = 0; d < d4; d += 4) {
      const uint32_t w = ts_ld32(in + d);
      const uint32_t lo = ts_sadd16(ts_sxtb16(w), off2), hi = ts_sadd16(ts_sxtb16_ror8(w), off2);
      __builtin_memcpy(x + d, &lo, 4);
      __builtin_memcpy(x + d + 2, &hi, 4);
    }
    for (int32_t d = d4; d < depth; d++) x[d] = (int16_t)(in[d] + p->input_offset);
    if (p->filter_offset)
      for (int32_t d = 0; d < depth; d++) xsum += x[d];
    const int32_t fcorr = p->filter_offset * xsum;
    int8_t *out = output + b * p->out_depth;
    int32_t o = 0;
    for (; o + 4 <= p->out_depth; o += 4) {
      const int8_t *f0 = filter + o * depth, *f1 = f0 + depth, *f2 = f1 + depth,
                   *f3 = f2 + depth;
      int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (int32_t d = 0; d < d4; d += 4) {
        const uint32_t x02 = ts_ld32(x + d), x13 = ts_ld32(x + d + 2);
        const uint32_t w0 = ts_ld32(f0 + d), w1 = ts_ld32(f1 + d);
        const uint32_t w2 = ts_ld32(f2 + d), w3 = ts_ld32(f3 + d);
        a0 = ts_smlad(ts_sxtb16(w0), x02, a0);
        a0 = ts_smlad(ts_sxtb16_ror8(w0), x13, a0);
        a1 = ts_smlad(ts_sxtb16(w1), x02, a1);
        a1 = ts_smlad(ts_sxtb16_ror8(w1), x13, a1);
        a2 = ts_smlad(ts_sxtb16(w2), x02, a2);
        a2 = ts_smlad(ts_sxtb16_ror8(w2), x13, a2);
        a3 = ts_smlad(ts_sxtb16(w3), x02, a3);
        a3 = ts_smlad(ts_sxtb16_ror8(w3), x13, a3);
      }
      for (int32_t d = d4; d < depth; d++) {
        a0 += f0[d] * x[d];
        a1 += f1[d] * x[d];
        a2 += f2[d] * x[d];
        a3 += f3[d] * x[d];
      }
      const int32_t acc[4] = {a0, a1, a2, a3};
      for (int32_t j = 0; j < 4; j++)
        out[o + j] = finish(p, acc[j] + fcorr + (bias ? bias[o + j] : 0), o + j);
    }
    for (; o < p->out_depth; o++) {
      const int32_t acc = row_dot(filter + o * depth, x, d4, depth);
      out[o] = finish(p, acc + fcorr + (bias ? bias[o] : 0), o);
    }
  }
}

int32_t ts_requant_slow(int32_t acc, int32_t mult, int32_t shift) {
  return ts_requant(acc, mult, shift);
}
