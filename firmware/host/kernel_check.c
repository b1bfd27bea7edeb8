/* ts-kernel-check: the optimized kernels (kernels/cm4, portable C intrinsics on the host)
 * against the reference kernels, bit for bit, on random shapes and parameters.
 *   ts-kernel-check SEED CASES   -> prints one line per kernel, exit 1 on any mismatch
 * Also checks ts_requant() against ts_mbqm() on random and edge-case triples. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m4_ticks.h"
#include "ts_kernels.h"
#include "ts_quant.h"
#include "../runtime/src/kernels/cm4/ts_dsp.h"

static uint64_t rng;
static uint32_t rnd(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (uint32_t)((rng * UINT64_C(2685821657736338717)) >> 32);
}
static int32_t range(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }

#define MAXB 65536
static _Alignas(16) int8_t in[MAXB], filt[MAXB], out_ref[MAXB], out_opt[MAXB];
static int32_t bias[1024], mults[1024], shifts[1024];

static void fill(int8_t *p, int32_t n) {
  for (int32_t i = 0; i < n; i++) p[i] = (int8_t)rnd();
}

static void quant(int32_t n) {
  for (int32_t i = 0; i < n; i++) {
    /* real multipliers as conversion makes them: mostly < 1, sometimes > 1 */
    const double m = (double)(rnd() % 1000000 + 1) / 1e6 * (double)(1u << (rnd() % 8)) / 64.0;
    ts_quantize_multiplier(m, &mults[i], &shifts[i]);
    bias[i] = range(-20000, 20000);
  }
}

static void act(int32_t *lo, int32_t *hi) {
  *lo = rnd() % 2 ? -128 : range(-128, 0);
  *hi = rnd() % 2 ? 127 : range(*lo, 127);
}

static int compare(const char *what, int32_t n, int32_t c) {
  for (int32_t i = 0; i < n; i++)
    if (out_ref[i] != out_opt[i]) {
      printf("MISMATCH %s case %" PRId32 ": element %" PRId32 " of %" PRId32 ": ref %d opt %d\n",
             what, c, i, n, out_ref[i], out_opt[i]);
      return 1;
    }
  return 0;
}

static int check_conv(int32_t c) {
  ts_conv_params_t p;
  memset(&p, 0, sizeof p);
  p.batches = range(1, 2);
  p.in_c = rnd() % 3 ? range(1, 4) * (rnd() % 2 ? 4 : 1) : range(1, 20);
  p.k_h = range(1, 5);
  p.k_w = range(1, 5);
  if (rnd() % 8 == 0) p.in_c = range(21, 80), p.k_h = range(1, 3), p.k_w = range(1, 3); /* wide fields: chunked */
  const int first = rnd() % 4 == 0; /* the first-layer kernel's shape, wider rows */
  if (first) p.in_c = rnd() % 2 ? 1 : 3, p.k_h = p.k_w = 3; /* grayscale or RGB */
  const int pointwise = !first && rnd() % 6 == 0; /* 1x1 stride 1: the im2col shortcut */
  if (pointwise) p.k_h = p.k_w = 1;
  /* the pointwise path with wide reductions: in_c a multiple of 4 up to 256, so records of
   * every channel fit beside a group or the weights are widened once per tile of groups */
  const int wide_pw = pointwise && rnd() % 2;
  if (wide_pw) p.in_c = 4 * range(1, 64);
  /* 8 input channels, out_c % 4 == 0 and a fused ReLU: the pixel-by-pixel ts_cm4_pw8 */
  const int pw8 = pointwise && !wide_pw && rnd() % 3 == 0;
  if (pw8) p.in_c = 8;
  p.in_h = range(p.k_h, wide_pw ? 6 : 12);
  p.in_w = range(p.k_w, first ? 48 : wide_pw ? 6 : 12);
  p.stride_h = pointwise ? 1 : range(1, 3);
  p.stride_w = pointwise ? 1 : range(1, 3);
  p.dil_h = rnd() % 4 ? 1 : 2;
  p.dil_w = rnd() % 4 ? 1 : 2;
  const int same = rnd() % 2;
  const int32_t ekh = (p.k_h - 1) * p.dil_h + 1, ekw = (p.k_w - 1) * p.dil_w + 1;
  if (same) {
    p.out_h = (p.in_h + p.stride_h - 1) / p.stride_h;
    p.out_w = (p.in_w + p.stride_w - 1) / p.stride_w;
    const int32_t ph = ((p.out_h - 1) * p.stride_h + ekh - p.in_h), pw = ((p.out_w - 1) * p.stride_w + ekw - p.in_w);
    p.pad_h = ph > 0 ? ph / 2 : 0;
    p.pad_w = pw > 0 ? pw / 2 : 0;
  } else {
    if (ekh > p.in_h || ekw > p.in_w) return 0;
    p.out_h = (p.in_h - ekh) / p.stride_h + 1;
    p.out_w = (p.in_w - ekw) / p.stride_w + 1;
  }
  p.out_c = rnd() % 6 ? range(1, 24) : range(24, 100); /* several weight blocks */
  p.input_offset = range(-127, 128);
  p.output_offset = range(-128, 127);
  act(&p.act_min, &p.act_max);
  if (rnd() % 3 == 0) /* a fused ReLU as TFLM computes it (act_min = the output zero point)
                       * or below it: the routine's requantization without the sign term */
    p.output_offset = rnd() % 2 ? p.act_min : range(-128, p.act_min);
  if (pw8) {
    p.out_c = 4 * (rnd() % 4 ? range(1, 8) : range(9, 40)); /* also beyond the records' buffer */
    if (rnd() % 4) p.output_offset = rnd() % 2 ? p.act_min : range(-128, p.act_min);
  }
  quant(p.out_c);
  if (first && rnd() % 6 == 0) /* a bias past the depthwise planes' limit (2^29 - 2^18) */
    bias[range(0, p.out_c - 1)] = (int32_t)(rnd() % 2 ? 3u << 29 : 1u << 30) + range(0, 99);
  if (pw8 || rnd() % 4 < (first ? 3u : 2u)) /* every multiplier < 0.25 (shift <= -2), as real layers */
    for (int32_t i = 0; i < p.out_c; i++)
      while (shifts[i] > -2) ts_quantize_multiplier(ldexp(mults[i], shifts[i] - 34), &mults[i], &shifts[i]);
  p.mult = mults;
  p.shift = shifts;
  const int32_t ni = p.batches * p.in_h * p.in_w * p.in_c;
  const int32_t nf = p.out_c * p.k_h * p.k_w * p.in_c;
  const int32_t no = p.batches * p.out_h * p.out_w * p.out_c;
  if (ni > MAXB || nf > MAXB || no > MAXB) return 0;
  fill(in, ni);
  fill(filt, nf);
  if (rnd() % 16 == 0) /* large biases: at the doubled accumulators' bound (2^28), or beyond */
    for (int32_t i = 0; i < p.out_c; i++)
      bias[i] = rnd() % 8 ? range(-(1 << 28), 1 << 28) : (int32_t)rnd();
  const int32_t *b = rnd() % 5 ? bias : NULL;
  ts_ref_conv2d_s8(&p, in, filt, b, out_ref);
  ts_opt_conv2d_s8(&p, in, filt, b, out_opt);
  return compare("conv", no, c);
}

static int check_dw(int32_t c) {
  ts_dw_params_t p;
  memset(&p, 0, sizeof p);
  p.batches = range(1, 2);
  p.in_c = rnd() % 2 ? 4 * range(1, 6) : range(1, 13);
  p.depth_multiplier = rnd() % 3 ? 1 : range(1, 3);
  p.out_c = p.in_c * p.depth_multiplier;
  p.k_h = range(1, 5);
  p.k_w = range(1, 5);
  p.in_h = range(p.k_h, 12);
  p.in_w = range(p.k_w, 12);
  p.stride_h = range(1, 3);
  p.stride_w = range(1, 3);
  p.dil_h = rnd() % 4 ? 1 : 2;
  p.dil_w = rnd() % 4 ? 1 : 2;
  if (rnd() % 2) { /* the 3x3 kernels' shapes: planes (stride_w 1: stripes, odd rows) and
                    * NHWC (other strides, wide rows, in_c % 4 == 0: chunks of channels) */
    p.k_h = p.k_w = 3, p.stride_w = rnd() % 2 ? 1 : range(2, 3), p.dil_h = p.dil_w = 1;
    p.in_h = range(3, 40);
    p.in_w = range(3, 70);
    if (p.in_h * p.in_w > 400) p.in_c = range(1, 5), p.out_c = p.in_c * p.depth_multiplier;
    if (rnd() % 4 == 0) /* many channels, few pixels (4 channels at a time) */
      p.in_c = p.out_c = 4 * range(1, 40), p.depth_multiplier = 1, p.in_h = range(3, 8),
      p.in_w = range(3, 8);
    else if (rnd() % 6 == 0) /* tall and narrow, many channels: transposed planes, 4 at a
                              * time (DS-CNN's 25x5x64) */
      p.in_c = p.out_c = 4 * range(1, 24), p.depth_multiplier = 1, p.stride_h = 1,
      p.in_h = range(9, 40), p.in_w = range(3, 8);
  } else if (rnd() % 2) { /* any kernel (1xN, Nx1, 5x5, 7x7), dilations 1-3, depth % 4 == 0,
                           * depth multiplier 1: the 4-channel NHWC loop (dw_any) */
    const int32_t n = range(2, 9), sq = range(5, 7) | 1, k = (int32_t)(rnd() % 3);
    p.k_h = k == 0 ? 1 : k == 1 ? n : sq;
    p.k_w = k == 0 ? n : k == 1 ? 1 : sq;
    p.dil_h = range(1, 3), p.dil_w = range(1, 3);
    p.in_c = p.out_c = 4 * range(1, 8), p.depth_multiplier = 1;
    p.in_h = range(1, 2 * p.k_h + 4), p.in_w = range(1, 2 * p.k_w + 4);
  }
  const int32_t ekh = (p.k_h - 1) * p.dil_h + 1, ekw = (p.k_w - 1) * p.dil_w + 1;
  if (rnd() % 2) {
    p.out_h = (p.in_h + p.stride_h - 1) / p.stride_h;
    p.out_w = (p.in_w + p.stride_w - 1) / p.stride_w;
    const int32_t ph = ((p.out_h - 1) * p.stride_h + ekh - p.in_h), pw = ((p.out_w - 1) * p.stride_w + ekw - p.in_w);
    p.pad_h = ph > 0 ? ph / 2 : 0;
    p.pad_w = pw > 0 ? pw / 2 : 0;
  } else {
    if (ekh > p.in_h || ekw > p.in_w) return 0;
    p.out_h = (p.in_h - ekh) / p.stride_h + 1;
    p.out_w = (p.in_w - ekw) / p.stride_w + 1;
  }
  p.input_offset = range(-127, 128);
  p.output_offset = range(-128, 127);
  act(&p.act_min, &p.act_max);
  quant(p.out_c);
  if (rnd() % 3) p.act_min = -128, p.act_max = 127; /* no fused clamp, as most layers */
  if (rnd() % 3 == 0) /* a fused ReLU as TFLM sets it (act_min the output zero point) */
    p.act_min = p.output_offset, p.act_max = rnd() % 2 ? 127 : range(p.output_offset, 127);
  if (rnd() % 6 == 0) { /* biases at the planes' limit +-(2^29 - 2^18), one beyond it */
    const int32_t lim = (1 << 29) - (1 << 18), k = range(0, p.out_c - 1);
    bias[k] = rnd() % 2 ? lim : -lim;
    if (rnd() % 2)
      bias[range(0, p.out_c - 1)] = rnd() % 2 ? lim + range(1, 1 << 20) : -(int32_t)rnd();
  }
  if (rnd() % 3) /* every multiplier < 0.25 (shift <= -2), as real layers */
    for (int32_t i = 0; i < p.out_c; i++)
      while (shifts[i] > -2) ts_quantize_multiplier(ldexp(mults[i], shifts[i] - 34), &mults[i], &shifts[i]);
  p.mult = mults;
  p.shift = shifts;
  const int32_t ni = p.batches * p.in_h * p.in_w * p.in_c;
  const int32_t nf = p.k_h * p.k_w * p.out_c;
  const int32_t no = p.batches * p.out_h * p.out_w * p.out_c;
  if (ni > MAXB || nf > MAXB || no > MAXB) return 0;
  fill(in, ni);
  fill(filt, nf);
  const int32_t *b = rnd() % 5 ? bias : NULL;
  ts_ref_depthwise_conv2d_s8(&p, in, filt, b, out_ref);
  const int32_t guard = MAXB - no < 256 ? MAXB - no : 256; /* bytes past the output */
  memset(out_opt + no, 0x5a, (size_t)guard);
  ts_opt_depthwise_conv2d_s8(&p, in, filt, b, out_opt);
  for (int32_t i = no; i < no + guard; i++)
    if (out_opt[i] != 0x5a) {
      printf("MISMATCH depthwise case %" PRId32 ": element %" PRId32 " of %" PRId32
             ": written past the output\n", c, i, no);
      return 1;
    }
  return compare("depthwise", no, c);
}

static int check_fc(int32_t c) {
  ts_fc_params_t p;
  memset(&p, 0, sizeof p);
  p.batches = range(1, 3);
  p.accum_depth = rnd() % 2 ? 4 * range(1, 200) : range(1, 1100);
  p.out_depth = range(1, 21);
  p.per_channel = (int32_t)(rnd() % 2);
  p.input_offset = range(-127, 128);
  p.filter_offset = rnd() % 3 ? 0 : range(-127, 128);
  p.output_offset = range(-128, 127);
  act(&p.act_min, &p.act_max);
  quant(p.out_depth);
  /* half of the cases with multipliers that leave most outputs unsaturated (the
   * accumulator's spread is ~10^4 sqrt(depth)), so a partial or wrong sum shows */
  if (rnd() % 2) {
    int32_t r = 1; /* ~sqrt(depth) */
    while (r * r < p.accum_depth) r++;
    for (int32_t i = 0; i < p.out_depth; i++)
      ts_quantize_multiplier(0.004 * (0.5 + (double)(rnd() % 1000) / 1000.0) / r, &mults[i],
                             &shifts[i]);
  }
  p.mult = mults;
  p.shift = shifts;
  const int32_t ni = p.batches * p.accum_depth, nf = p.out_depth * p.accum_depth;
  const int32_t no = p.batches * p.out_depth;
  if (ni >= MAXB || nf >= MAXB) return 0;
  /* the arrays are 16-byte aligned; sometimes an input or filter 1 byte off (no LDRD) */
  const int8_t *x = in + (rnd() % 4 == 0), *f = filt + (rnd() % 4 == 0);
  fill(in, ni + 1);
  fill(filt, nf + 1);
  const int32_t *b = rnd() % 5 ? bias : NULL;
  ts_ref_fully_connected_s8(&p, x, f, b, out_ref);
  ts_opt_fully_connected_s8(&p, x, f, b, out_opt);
  return compare("fully_connected", no, c);
}

/* MAX_POOL_2D, or AVERAGE_POOL_2D (avg), half of whose cases are global pools (the window
 * is the whole input, up to 900 pixels so that the int16 runs of 256 split). */
static int check_pool(int32_t c, int avg) {
  ts_pool_params_t p;
  memset(&p, 0, sizeof p);
  p.batches = range(1, 2);
  p.depth = rnd() % 2 ? 4 * range(1, 6) : range(1, 13);
  p.f_h = range(1, 4);
  p.f_w = range(1, 4);
  p.in_h = range(1, 14);
  p.in_w = range(1, 14);
  p.stride_h = range(1, 3);
  p.stride_w = range(1, 3);
  if (rnd() % 4 == 0) p.f_h = p.f_w = p.stride_h = p.stride_w = 2; /* the common pool */
  if (avg && rnd() % 2) { /* global average pooling */
    p.in_h = range(1, 30), p.in_w = range(1, 30), p.f_h = p.in_h, p.f_w = p.in_w;
    p.out_h = p.out_w = 1;
  } else if (rnd() % 2) { /* SAME */
    p.out_h = (p.in_h + p.stride_h - 1) / p.stride_h;
    p.out_w = (p.in_w + p.stride_w - 1) / p.stride_w;
    const int32_t ph = (p.out_h - 1) * p.stride_h + p.f_h - p.in_h;
    const int32_t pw = (p.out_w - 1) * p.stride_w + p.f_w - p.in_w;
    p.pad_h = ph > 0 ? ph / 2 : 0;
    p.pad_w = pw > 0 ? pw / 2 : 0;
  } else {
    if (p.f_h > p.in_h || p.f_w > p.in_w) return 0;
    p.out_h = (p.in_h - p.f_h) / p.stride_h + 1;
    p.out_w = (p.in_w - p.f_w) / p.stride_w + 1;
  }
  act(&p.act_min, &p.act_max);
  const int32_t ni = p.batches * p.in_h * p.in_w * p.depth;
  const int32_t no = p.batches * p.out_h * p.out_w * p.depth;
  if (ni > MAXB || no > MAXB) return 0;
  fill(in, ni);
  if (avg) {
    const int rr = ts_ref_avg_pool_s8(&p, in, out_ref), ro = ts_opt_avg_pool_s8(&p, in, out_opt);
    if (rr != ro) {
      printf("MISMATCH avg_pool case %" PRId32 ": status ref %d opt %d\n", c, rr, ro);
      return 1;
    }
    if (rr) return 0;
    return compare("avg_pool", no, c);
  }
  ts_ref_max_pool_s8(&p, in, out_ref);
  ts_opt_max_pool_s8(&p, in, out_opt);
  return compare("max_pool", no, c);
}

static int check_max_pool(int32_t c) { return check_pool(c, 0); }
static int check_avg_pool(int32_t c) { return check_pool(c, 1); }

static int check_mean(int32_t c) {
  ts_mean_params_t p;
  memset(&p, 0, sizeof p);
  p.in_dims[0] = range(1, 2);
  p.in_dims[1] = range(1, 20);
  p.in_dims[2] = range(1, 20);
  p.in_dims[3] = rnd() % 2 ? 4 * range(1, 8) : range(1, 13);
  if (rnd() % 8 == 0) p.in_dims[1] = 40, p.in_dims[2] = range(7, 20); /* > 256 pixels */
  p.reduce[1] = p.reduce[2] = 1; /* global average pooling; sometimes other axes */
  if (rnd() % 4 == 0) p.reduce[rnd() % 4] ^= 1;
  p.count = 1;
  int32_t no = 1;
  for (int k = 0; k < 4; k++) {
    if (p.reduce[k]) p.count *= p.in_dims[k];
    else no *= p.in_dims[k];
  }
  const int32_t ni = p.in_dims[0] * p.in_dims[1] * p.in_dims[2] * p.in_dims[3];
  if (ni > MAXB) return 0;
  p.input_zp = range(-128, 127);
  p.output_zp = range(-128, 127);
  const double m = (double)(rnd() % 1000000 + 1) / 1e6 * 4.0 / p.count;
  ts_quantize_multiplier(m, &p.mult, &p.shift);
  fill(in, ni);
  if (rnd() % 8 == 0) memset(in, rnd() % 2 ? 0x80 : 0x7f, (size_t)ni); /* extreme sums */
  ts_ref_mean_s8(&p, in, out_ref);
  ts_opt_mean_s8(&p, in, out_opt);
  return compare("mean", no, c);
}

/* SOFTMAX: rows longer than the optimized kernel's exp buffer (TS_OPT_SOFTMAX_ROW_BUF,
 * 8 in the -small build) recompute their tail; beta * scale as ops/softmax.c accepts it;
 * rows with ties at the maximum, constant rows and values below diff_min. */
static int check_softmax(int32_t c) {
  ts_softmax_params_t p;
  p.depth = rnd() % 4 == 0 ? range(100, 300) : range(1, 40);
  p.outer = range(1, 4);
  double real = (1.0 + (double)(rnd() % 100000)) * (double)(1u << (rnd() % 20)) * 4.0;
  if (real > 2147483647.0 || rnd() % 8 == 0) real = 2147483647.0; /* ops/softmax.c's clamp */
  ts_quantize_multiplier(real, &p.input_multiplier, &p.input_left_shift);
  if (p.input_left_shift < 0 || p.input_left_shift > 31) return 0;
  p.diff_min = -(int32_t)((INT64_C(31) << 26) >> p.input_left_shift);
  const int32_t n = p.depth * p.outer;
  fill(in, n);
  if (rnd() % 8 == 0) memset(in, (int)range(-128, 127), (size_t)p.depth); /* a constant row */
  ts_ref_softmax_s8(&p, in, out_ref);
  ts_opt_softmax_s8(&p, in, out_opt);
  return compare("softmax", n, c);
}

static int check_add(int32_t c) {
  ts_add_params_t p;
  memset(&p, 0, sizeof p);
  int32_t da[4], db[4];
  for (int k = 0; k < 4; k++) p.out_dims[k] = k == 0 ? range(1, 2) : range(1, k == 3 ? 40 : 24);
  const int bcast = rnd() % 3 == 0; /* squeeze-excite style: 1 along some dimensions */
  for (int k = 0; k < 4; k++) {
    da[k] = bcast && rnd() % 2 ? 1 : p.out_dims[k];
    db[k] = bcast && rnd() % 2 && da[k] != 1 ? 1 : p.out_dims[k];
  }
  int32_t sa = 1, sb = 1, no = 1;
  for (int k = 3; k >= 0; k--) {
    p.in1_strides[k] = da[k] == 1 ? 0 : sa;
    p.in2_strides[k] = db[k] == 1 ? 0 : sb;
    sa *= da[k], sb *= db[k], no *= p.out_dims[k];
  }
  if (sa > MAXB || sb > MAXB || no > MAXB) return 0;
  const double s1 = ldexp(1.0 + (double)(rnd() % 1000) / 1000.0, -(int)range(3, 9));
  const double s2 = ldexp(1.0 + (double)(rnd() % 1000) / 1000.0, -(int)range(3, 9));
  const double so = ldexp(1.0 + (double)(rnd() % 1000) / 1000.0, -(int)range(2, 9));
  const double tm = 2.0 * (s1 > s2 ? s1 : s2);
  p.left_shift = 20;
  p.input1_offset = range(-127, 128), p.input2_offset = range(-127, 128);
  p.output_offset = range(-128, 127);
  ts_quantize_multiplier(s1 / tm, &p.input1_mult, &p.input1_shift);
  ts_quantize_multiplier(s2 / tm, &p.input2_mult, &p.input2_shift);
  ts_quantize_multiplier(tm / ((double)(1 << 20) * so), &p.output_mult, &p.output_shift);
  act(&p.act_min, &p.act_max);
  fill(in, sa);
  fill(filt, sb);
  ts_ref_add_s8(&p, in, filt, out_ref);
  ts_opt_add_s8(&p, in, filt, out_opt);
  return compare("add", no, c);
}

static int check_requant(int32_t n) {
  static const int32_t edge[] = {0, 1, -1, 2, -2, 3, -3, INT32_MAX, INT32_MIN, INT32_MAX - 1,
                                 INT32_MIN + 1, 1 << 30, -(1 << 30), 12345, -12345};
  for (int32_t i = 0; i < n; i++) {
    const int32_t acc = i < 15 * 15 ? edge[i % 15]
                        : rnd() % 4   ? range(-300000, 300000)
                        : rnd() % 2   ? range(-(1 << 29) + 1, (1 << 29) - 1)
                                      : (int32_t)rnd();
    const int32_t mult = i < 15 * 15 ? (edge[i / 15] < 0 ? (1 << 30) : (edge[i / 15] | (1 << 30)))
                                     : (rnd() % 8 ? (int32_t)(rnd() | 0x40000000u) & 0x7fffffff
                                                  : (rnd() % 2 ? (1 << 30) : 0));
    const int32_t shift = range(-31, rnd() % 4 ? 0 : 30);
    /* ts_srdhm's floor shift is gemmlowp's nudge and truncating division */
    const int64_t ab = (int64_t)acc * mult, ab2 = (int64_t)acc * acc;
    const int32_t g = (int32_t)((ab + (ab >= 0 ? (1 << 30) : 1 - (1 << 30))) / (INT64_C(1) << 31));
    const int32_t g2 = acc == INT32_MIN ? INT32_MAX
                       : (int32_t)((ab2 + (1 << 30)) / (INT64_C(1) << 31)); /* ab2 >= 0 */
    if (ts_srdhm(acc, mult) != g || ts_srdhm(acc, acc) != g2) {
      printf("MISMATCH srdhm %" PRId32 " x %" PRId32 "\n", acc, mult);
      return 1;
    }
    const int32_t want = ts_mbqm(acc, mult, shift), got = ts_requant(acc, mult, shift);
    /* the assemblies' form, for shifts in [-23, -2], output offset folded into the rounding */
    int words_ok = 1;
    if (shift <= -2 && shift >= -23) {
      const int32_t off = range(-128, 127), e = -shift;
      const uint32_t q[3] = {(uint32_t)mult,
                             (uint32_t)((INT32_C(1) << (e - 2)) + off * (INT32_C(1) << (e - 1))),
                             (uint32_t)(e - 1)};
      words_ok = ts_rq_words(acc, q) == ts_ssat8(want + off);
      const uint32_t q2[3] = {(uint32_t)mult,
                              (uint32_t)((INT32_C(1) << (e - 1)) + off * (INT32_C(1) << e)),
                              (uint32_t)e}; /* the doubled form (ts_rq_dbl), |acc| < 2^30 */
      if (acc < (1 << 30) && acc > -(1 << 30))
        words_ok &= ts_rq_dbl(2 * acc, q2) == ts_ssat8(want + off);
    }
    /* CONV_2D's form (ts_rq_dbl): doubled accumulators below 2^29, shifts in [-23, -1] */
    if (shift <= -1 && shift >= -23 && acc < (1 << 29) && acc > -(1 << 29)) {
      const int32_t off = range(-128, 127), e = -shift;
      const uint32_t q[3] = {(uint32_t)mult,
                             (uint32_t)((INT32_C(1) << (e - 1)) + off * (INT32_C(1) << e)),
                             (uint32_t)e};
      words_ok &= ts_rq_dbl(2 * acc, q) == ts_ssat8(want + off);
      /* without the sign term: equal once clamped to any act_min >= off (ts_rq_dbl_relu) */
      const int32_t lo = range(off, 127);
      words_ok &= ts_clamp_s8(ts_rq_dbl_relu(2 * acc, q), lo, 127) ==
                  ts_clamp_s8(ts_ssat8(want + off), lo, 127);
    }
    if (want != got || !words_ok) {
      printf("MISMATCH requant acc %" PRId32 " mult %" PRId32 " shift %" PRId32
             ": ts_mbqm %" PRId32 " ts_requant %" PRId32 "%s\n", acc, mult, shift, want, got,
             words_ok ? "" : " (ts_rq_words differs)");
      return 1;
    }
  }
  return 0;
}

/* The M4 build (host.mk m4check) names it ts_kernel_check_main: m4check_semihost.c's reset
 * handler calls it with the semihosting command line. */
#ifndef TS_CHECK_MAIN
#define TS_CHECK_MAIN main
#endif
/* Instructions of one call: ticks_start() / ticks_stop(), m4_ticks.h. */

/* bench conv|dw IN_H IN_W IN_C OUT_C K STRIDE SAME [relu]: one CONV_2D (or depthwise) shape, ref and opt,
 * K a square kernel's side, or KHxKW, either with a dilation dD (1x5d2),
 * compared bit for bit; prints the SysTick ticks of each call (x 40 = instructions under
 * QEMU -icount shift=0) and the MACs. `relu`: output zero point and act_min -128, as
 * MobileNet's fused ReLU6 layers (default: output offset -3, no fused clamp). */
static int bench_conv(char **a) {
  ts_conv_params_t p;
  memset(&p, 0, sizeof p);
  p.batches = 1;
  p.in_h = atoi(a[0]), p.in_w = atoi(a[1]), p.in_c = atoi(a[2]), p.out_c = atoi(a[3]);
  p.k_h = p.k_w = atoi(a[4]); /* K, or KHxKW, either with dD (dilation D): 1x5d2 */
  const char *kx = strchr(a[4], 'x'), *kd = strchr(a[4], 'd');
  if (kx) p.k_w = atoi(kx + 1);
  p.stride_h = p.stride_w = atoi(a[5]);
  p.dil_h = p.dil_w = kd ? atoi(kd + 1) : 1;
  const int32_t ekh = (p.k_h - 1) * p.dil_h + 1, ekw = (p.k_w - 1) * p.dil_w + 1;
  if (atoi(a[6])) {
    p.out_h = (p.in_h + p.stride_h - 1) / p.stride_h, p.out_w = (p.in_w + p.stride_w - 1) / p.stride_w;
    const int32_t ph = (p.out_h - 1) * p.stride_h + ekh - p.in_h, pw = (p.out_w - 1) * p.stride_w + ekw - p.in_w;
    p.pad_h = ph > 0 ? ph / 2 : 0, p.pad_w = pw > 0 ? pw / 2 : 0;
  } else {
    p.out_h = (p.in_h - ekh) / p.stride_h + 1, p.out_w = (p.in_w - ekw) / p.stride_w + 1;
  }
  p.input_offset = 7, p.output_offset = a[7] && !strcmp(a[7], "relu") ? -128 : -3;
  p.act_min = -128, p.act_max = 127;
  quant(p.out_c);
  for (int32_t i = 0; i < p.out_c; i++) /* multipliers in [2^-11, 2^-5), as real layers */
    ts_quantize_multiplier(ldexp(1.0 + (double)(rnd() % 1000) / 1000.0, -(int)range(6, 11)),
                           &mults[i], &shifts[i]);
  p.mult = mults, p.shift = shifts;
  const int32_t ni = p.in_h * p.in_w * p.in_c, nf = p.out_c * p.k_h * p.k_w * p.in_c;
  const int32_t no = p.out_h * p.out_w * p.out_c;
  if (ni > MAXB || nf > MAXB || no > MAXB || p.out_c > 1024) {
    printf("bench conv: shape too large for the harness (%d bytes per tensor)\n", MAXB);
    return 2;
  }
  fill(in, ni);
  fill(filt, nf);
  if (!strcmp(a[-1], "dw")) { /* depthwise, depth multiplier 1: the same shape fields */
    ts_dw_params_t d;
    memset(&d, 0, sizeof d);
    memcpy(&d, &p, sizeof p);
    d.out_c = d.in_c, d.depth_multiplier = 1;
    for (int32_t i = 0; i < d.out_c; i++) /* as bench conv's multipliers */
      ts_quantize_multiplier(ldexp(1.0 + (double)(rnd() % 1000) / 1000.0, -(int)range(6, 11)),
                             &mults[i], &shifts[i]);
    ticks_start();
    ts_ref_depthwise_conv2d_s8(&d, in, filt, bias, out_ref);
    const uint32_t tr = ticks_stop();
    ticks_start();
    ts_opt_depthwise_conv2d_s8(&d, in, filt, bias, out_opt);
    const uint32_t to = ticks_stop();
    const long macs = (long)d.out_h * d.out_w * d.out_c * d.k_h * d.k_w;
    printf("dw macs %ld ref_ticks %lu opt_ticks %lu\n", macs, (unsigned long)tr, (unsigned long)to);
    return compare("bench dw", d.out_h * d.out_w * d.out_c, 0);
  }
  ticks_start();
  ts_ref_conv2d_s8(&p, in, filt, bias, out_ref);
  const uint32_t tr = ticks_stop();
  ticks_start();
  ts_opt_conv2d_s8(&p, in, filt, bias, out_opt);
  const uint32_t to = ticks_stop();
  const long macs = (long)no * p.k_h * p.k_w * p.in_c;
  printf("conv macs %ld ref_ticks %lu opt_ticks %lu\n", macs, (unsigned long)tr, (unsigned long)to);
  return compare("bench conv", no, 0);
}

/* bench add H W C: a same-shape ADD (a residual), ref and opt, compared bit for bit. */
static int bench_add(char **a) {
  ts_add_params_t p;
  memset(&p, 0, sizeof p);
  p.out_dims[0] = 1, p.out_dims[1] = atoi(a[0]), p.out_dims[2] = atoi(a[1]), p.out_dims[3] = atoi(a[2]);
  const int32_t no = p.out_dims[1] * p.out_dims[2] * p.out_dims[3];
  if (no > MAXB || no < 1) return 2;
  for (int k = 3, st = 1; k >= 0; st *= p.out_dims[k], k--) /* as ops/add.c: 0 for a size 1 */
    p.in1_strides[k] = p.in2_strides[k] = p.out_dims[k] == 1 ? 0 : st;
  p.left_shift = 20, p.input1_offset = 5, p.input2_offset = -9, p.output_offset = 3;
  ts_quantize_multiplier(0.5, &p.input1_mult, &p.input1_shift);
  ts_quantize_multiplier(0.37, &p.input2_mult, &p.input2_shift);
  ts_quantize_multiplier(2.0 / (1 << 20) * 0.8, &p.output_mult, &p.output_shift);
  p.act_min = -128, p.act_max = 127;
  fill(in, no);
  fill(filt, no);
  ticks_start();
  ts_ref_add_s8(&p, in, filt, out_ref);
  const uint32_t tr = ticks_stop();
  ticks_start();
  ts_opt_add_s8(&p, in, filt, out_opt);
  const uint32_t to = ticks_stop();
  printf("add elements %ld ref_ticks %lu opt_ticks %lu\n", (long)no, (unsigned long)tr, (unsigned long)to);
  return compare("bench add", no, 0);
}

/* bench fc OUT_DEPTH ACCUM_DEPTH [nobias]: one FULLY_CONNECTED shape (per-channel, input zero
 * point -128 as a ReLU'd input, multipliers in [2^-11, 2^-5)), ref and opt, compared bit for
 * bit; prints the ticks of each call as bench conv. `nobias`: no bias tensor, as the MLPerf
 * Tiny twins' heads. */
static int bench_fc(char **a, int nobias) {
  ts_fc_params_t p;
  memset(&p, 0, sizeof p);
  p.batches = 1, p.out_depth = atoi(a[0]), p.accum_depth = atoi(a[1]), p.per_channel = 1;
  p.input_offset = 128, p.output_offset = -3, p.act_min = -128, p.act_max = 127;
  if (p.out_depth < 1 || p.accum_depth < 1 || p.out_depth > 1024 ||
      p.out_depth * p.accum_depth > MAXB || p.accum_depth > MAXB) {
    printf("bench fc: shape too large for the harness (%d bytes per tensor)\n", MAXB);
    return 2;
  }
  quant(p.out_depth);
  for (int32_t i = 0; i < p.out_depth; i++)
    ts_quantize_multiplier(ldexp(1.0 + (double)(rnd() % 1000) / 1000.0, -(int)range(6, 11)),
                           &mults[i], &shifts[i]);
  p.mult = mults, p.shift = shifts;
  fill(in, p.accum_depth);
  fill(filt, p.out_depth * p.accum_depth);
  const int32_t *b = nobias ? NULL : bias;
  ticks_start();
  ts_ref_fully_connected_s8(&p, in, filt, b, out_ref);
  const uint32_t tr = ticks_stop();
  ticks_start();
  ts_opt_fully_connected_s8(&p, in, filt, b, out_opt);
  const uint32_t to = ticks_stop();
  printf("fc macs %ld ref_ticks %lu opt_ticks %lu\n", (long)p.out_depth * p.accum_depth,
         (unsigned long)tr, (unsigned long)to);
  return compare("bench fc", p.out_depth, 0);
}

int TS_CHECK_MAIN(int argc, char **argv);
int TS_CHECK_MAIN(int argc, char **argv) {
  if (argc == 6 && !strcmp(argv[1], "bench") && !strcmp(argv[2], "add")) return bench_add(argv + 3);
  if ((argc == 5 || argc == 6) && !strcmp(argv[1], "bench") && !strcmp(argv[2], "fc"))
    return bench_fc(argv + 3, argc == 6 && !strcmp(argv[5], "nobias"));
  if ((argc == 10 || argc == 11) && !strcmp(argv[1], "bench") &&
      (!strcmp(argv[2], "conv") || !strcmp(argv[2], "dw")))
    return bench_conv(argv + 3);
  if (argc != 3) {
    fprintf(stderr, "usage: %s SEED CASES\n", argv[0]);
    return 2;
  }
  rng = strtoull(argv[1], NULL, 10) * UINT64_C(0x9E3779B97F4A7C15) + 1;
  const int32_t cases = atoi(argv[2]);
  int bad = check_requant(cases * 200);
  printf("requant %" PRId32 " triples %s\n", cases * 200, bad ? "FAIL" : "ok");
  static const struct {
    const char *name;
    int (*check)(int32_t);
  } kernels[] = {{"conv", check_conv}, {"depthwise", check_dw}, {"fully_connected", check_fc},
                 {"max_pool", check_max_pool}, {"avg_pool", check_avg_pool}, {"mean", check_mean},
                 {"add", check_add}, {"softmax", check_softmax}};
  for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
    int nbad = 0; /* each kernel stops at its first mismatch */
    for (int32_t c = 0; c < cases && !nbad; c++) nbad += kernels[k].check(c);
    printf("%s %" PRId32 " cases %s\n", kernels[k].name, cases, nbad ? "FAIL" : "ok");
    bad |= nbad;
  }
  return bad ? 1 : 0;
}
