/* Helpers the Cortex-M4 kernels share (conv.c, depthwise_conv.c, fully_connected.c,
 * mean.c): the out-of-line requantization of their rare outputs and the plain loop nest of
 * the convolution shapes no fast path takes. */
#include "ts_dsp.h"
#include "ts_kernels.h"

/* The one out-of-line copy of ts_requant (the kernels' rare paths: C-finished outputs, FC). */
int32_t ts_requant_slow(int32_t acc, int32_t mult, int32_t shift) {
  return ts_requant(acc, mult, shift);
}

/* The rare shapes' plain loop nest, the reference's arithmetic (wrapping uint32 sums, the
 * same int32 bits; ts_out_slow's requantization), for CONV_2D (dm 0) and DEPTHWISE_CONV_2D (dm its
 * depth multiplier; p is the ts_conv_params_t its parameters start with): one out-of-line
 * copy instead of linking ts_ref_conv2d_s8 and ts_ref_depthwise_conv2d_s8 for these cases. */
void ts_plain_conv(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                   const int32_t *bias, int8_t *output, int32_t dm) {
  const int32_t nic = dm ? 1 : p->in_c, ftap = dm ? p->out_c : p->in_c; /* per tap */
  for (int32_t P = 0; P < p->batches * p->out_h * p->out_w; P++) {
    const int32_t ox = P % p->out_w, oy = P / p->out_w % p->out_h, b = P / p->out_w / p->out_h;
    for (int32_t oc = 0; oc < p->out_c; oc++) {
      uint32_t acc = bias ? (uint32_t)bias[oc] : 0;
      for (int32_t k = 0; k < p->k_h * p->k_w; k++) {
        const int32_t iy = oy * p->stride_h - p->pad_h + p->dil_h * (k / p->k_w);
        const int32_t ix = ox * p->stride_w - p->pad_w + p->dil_w * (k % p->k_w);
        if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) continue;
        const int8_t *in = input + ((b * p->in_h + iy) * p->in_w + ix) * p->in_c + (dm ? oc / dm : 0);
        const int8_t *f = filter + (dm ? oc : oc * p->k_h * p->k_w * nic) + k * ftap;
        for (int32_t ic = 0; ic < nic; ic++) acc += (uint32_t)(f[ic] * (in[ic] + p->input_offset));
      }
      *output++ = ts_out_slow((int32_t)acc, oc, p);
    }
  }
}


/* The sum of n int8 values (a filter's, for folding the input offset into the bias): 4 per
 * word, SXTB16 and SMLAD with (1, 1), i.e. about 2 instructions per value instead of 4. */
int32_t ts_sum_s8(const int8_t *v, int32_t n) {
  int32_t s = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32_t x = ts_ld32(v + i);
    s = ts_smlad(ts_sxtb16(x), 0x00010001u, s);
    s = ts_smlad(ts_sxtb16_ror8(x), 0x00010001u, s);
  }
  for (; i < n; i++) s += v[i];
  return s;
}
