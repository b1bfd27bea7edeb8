/* MAX_POOL_2D int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_max_pool_s8.
 *
 * 2x2 stride 2 without padding (the usual pool) with depth % 4 == 0 and every window inside
 * the input: whole rows with no per-pixel window arithmetic, 4 LDR, 3 SSUB8 + SEL (a
 * per-byte signed max), the clamp only for a fused activation. Every other window
 * (max_windows): four channels at a time, one LDR per tap and SSUB8 + SEL, clipped to the
 * input as in the reference, the last depth % 4 channels gathered into a word (3x3 stride-2
 * pools and 1-D pools of real models take it: 3.2x fewer instructions than the reference).
 * AVERAGE_POOL_2D: global pools by SIMD sums (ts_opt_avg_pool_s8, at the end). */
#include "ts_dsp.h"
#include "ts_kernels.h"

/* One output pixel of a 2x2 window inside the input: rows s0 and s1, depth % 4 == 0. */
static inline void max2x2(const int8_t *s0, const int8_t *s1, int32_t depth,
                                  int8_t *out, uint32_t lo4, uint32_t hi4, int narrow) {
  for (int32_t c = 0; c < depth; c += 4) {
    uint32_t m = ts_smax8x4(ts_smax8x4(ts_ld32(s0 + c), ts_ld32(s0 + depth + c)),
                            ts_smax8x4(ts_ld32(s1 + c), ts_ld32(s1 + depth + c)));
    if (narrow) m = ts_smin8x4(ts_smax8x4(m, lo4), hi4);
    __builtin_memcpy(out + c, &m, 4);
  }
}

/* Any other window: clipped to the input as in the reference (an empty window gives -128
 * before the clamp), 4 channels per word, the last depth % 4 gathered into a word. Out of
 * line, so that the row path above keeps its registers. */
static __attribute__((noinline)) void max_windows(const ts_pool_params_t *p,
                                                  const int8_t *input, int8_t *output,
                                                  uint32_t lo4, uint32_t hi4) {
  const int32_t depth = p->depth;
  for (int32_t b = 0; b < p->batches; b++)
    for (int32_t oy = 0; oy < p->out_h; oy++) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int32_t fy0 = y0 < 0 ? -y0 : 0;
      const int32_t fy1 = p->f_h < p->in_h - y0 ? p->f_h : p->in_h - y0;
      for (int32_t ox = 0; ox < p->out_w; ox++) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int32_t fx0 = x0 < 0 ? -x0 : 0;
        const int32_t fx1 = p->f_w < p->in_w - x0 ? p->f_w : p->in_w - x0;
        const int32_t base = ((b * p->in_h + y0) * p->in_w + x0) * depth; /* may be < 0 */
        int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * depth;
        for (int32_t c = 0; c < depth; c += 4) {
          const int32_t n = depth - c < 4 ? depth - c : 4; /* < 4: the last channels */
          uint32_t m = 0x80808080u;
          for (int32_t fy = fy0; fy < fy1; fy++)
            for (int32_t fx = fx0; fx < fx1; fx++) {
              const int8_t *src = input + base + (fy * p->in_w + fx) * depth + c;
              uint32_t v; /* little-endian: channel c + i in byte i */
              if (n == 4) {
                v = ts_ld32(src);
              } else {
                uint32_t t = 0;
                __builtin_memcpy(&t, src, (size_t)n);
                v = t;
              }
              m = ts_smax8x4(m, v);
            }
          m = ts_smin8x4(ts_smax8x4(m, lo4), hi4);
          if (n == 4) {
            __builtin_memcpy(out + c, &m, 4);
          } else {
            const uint32_t t = m;
            __builtin_memcpy(out + c, &t, (size_t)n);
          }
        }
      }
    }
}

void ts_opt_max_pool_s8(const ts_pool_params_t *p, const int8_t *input, int8_t *output) {
  const int32_t depth = p->depth;
  const uint32_t lo4 = (uint32_t)(uint8_t)p->act_min * 0x01010101u;
  const uint32_t hi4 = (uint32_t)(uint8_t)p->act_max * 0x01010101u;
  const int narrow = p->act_min > -128 || p->act_max < 127;
  if (depth % 4 || p->f_h != 2 || p->f_w != 2 || p->stride_h != 2 || p->stride_w != 2 ||
      p->pad_h || p->pad_w || 2 * p->out_h > p->in_h || 2 * p->out_w > p->in_w) {
    max_windows(p, input, output, lo4, hi4);
    return;
  }
  const int32_t rs = p->in_w * depth;
  for (int32_t b = 0; b < p->batches; b++)
    for (int32_t oy = 0; oy < p->out_h; oy++) {
      const int8_t *s0 = input + (b * p->in_h + 2 * oy) * rs;
      int8_t *out = output + (b * p->out_h + oy) * p->out_w * depth;
      for (int32_t ox = 0; ox < p->out_w; ox++, s0 += 2 * depth, out += depth)
        max2x2(s0, s0 + rs, depth, out, lo4, hi4, narrow);
    }
}

/* AVERAGE_POOL_2D, bit-exact with ts_ref_avg_pool_s8: a global pool (one output pixel whose
 * window covers the whole input, no padding: MobileNet's, ResNet-8's and DS-CNN's last
 * pool) with depth % 4 == 0 sums 4 channels per word as MEAN does (ts_cm4_sum_pixels4,
 * the same integer sums), then the reference's rounded division and clamp; every other
 * shape runs the reference kernel. */
int ts_opt_avg_pool_s8(const ts_pool_params_t *p, const int8_t *input, int8_t *output) {
  const int32_t depth = p->depth, count = p->in_h * p->in_w;
  if (p->out_h != 1 || p->out_w != 1 || p->pad_h || p->pad_w || p->f_h < p->in_h ||
      p->f_w < p->in_w || (depth & 3) || count == 0)
    return ts_ref_avg_pool_s8(p, input, output);
  for (int32_t b = 0; b < p->batches; b++, input += count * depth, output += depth)
    for (int32_t c = 0; c < depth; c += 4) {
      int32_t s[4];
      ts_cm4_sum_pixels4(input + c, count, depth, s);
      for (int32_t k = 0; k < 4; k++) {
        int32_t a = s[k] > 0 ? (s[k] + count / 2) / count : (s[k] - count / 2) / count;
        a = a < p->act_min ? p->act_min : a;
        output[c + k] = (int8_t)(a > p->act_max ? p->act_max : a);
      }
    }
  return 0;
}
