/* DEPTHWISE_CONV_2D: filter [1][k_h][k_w][out_c], out_c = in_c * depth_multiplier (taken
 * from the shapes, as TFLM); the rest as CONV_2D (ops/conv.c).
 *
 * In place (TinyEngine's in-place depthwise, any stride): with depth multiplier 1 each
 * output channel reads only its own input channel, so the output may be written over the
 * input one group of g channels at a time: copy the group's input planes (H x W x g) and
 * filter taps to scratch, run the kernel on that g-channel tensor into scratch, and write
 * the result over the group's input channels, which nothing reads any more. Output element
 * (p, c) lands on input element (p, c) (p = the pixel's index in row-major order, the
 * output's p < the input's pixel count), whose value was copied before: other channels'
 * input is untouched, so any stride and padding are safe. Without the copy, stride 1 is
 * not: output (y, x) would replace input (y, x), which the windows of outputs (y, x + 1)
 * and (y + 1, .) still read. At stride 2 a row-major walk happens to land each output on
 * an input pixel no later window reads, but that holds only for that visiting order, and
 * the optimized kernels visit channel stripes (planes) or 4-channel groups in their own
 * order: the copy keeps in place independent of the kernel.
 * The copy costs about 2 instructions per input and per output element (against ~25 per
 * output for a 3x3 window), and the scratch is g (H W + H_out W_out + k_h k_w) bytes: the
 * loader grants it only when it makes the arena smaller (ts_interp.c). */
#include "ts_internal.h"

/* Channels per group: 4 keeps the optimized kernel's 4-channel NHWC path. */
static int32_t group_of(int32_t channels) {
  return channels % 4 == 0 ? 4 : channels % 2 == 0 ? 2 : 1;
}

static uint32_t align16(uint32_t x) { return (x + 15u) & ~15u; }

ts_status_t ts_depthwise_conv_prepare(ts_loader_t *L, ts_oprec_t *o) {
  CHECK(ts_conv_like_prepare(L, o, TS_CONV_DW));
  const ts_dw_params_t *p = PARAMS(o, ts_dw_params_t);
  if (p->depth_multiplier != 1 || p->batches != 1) return TS_OK;
  const uint32_t g = (uint32_t)group_of(p->in_c);
  const uint32_t bytes = align16(g * (uint32_t)(p->in_h * p->in_w)) +
                         align16(g * (uint32_t)(p->out_h * p->out_w)) +
                         g * (uint32_t)(p->k_h * p->k_w);
  return ts_offer_in_place_copy(L, o, bytes);
}

static void in_place(const ts_eval_t *e) {
  const ts_dw_params_t *p = e->params;
  const int32_t ch = p->in_c, g = group_of(ch), taps = p->k_h * p->k_w;
  const int32_t n_in = p->in_h * p->in_w, n_out = p->out_h * p->out_w;
  int8_t *io = e->out, *x = e->scratch;
  int8_t *y = x + align16((uint32_t)(g * n_in)), *w = y + align16((uint32_t)(g * n_out));
  const int8_t *filter = e->in1;
  const int32_t *bias = e->in2;
  ts_dw_params_t q = *p;
  q.in_c = q.out_c = g;
  for (int32_t c = 0; c < ch; c += g) {
    for (int32_t i = 0; i < n_in; i++)
      for (int32_t k = 0; k < g; k++) x[i * g + k] = io[i * ch + c + k];
    for (int32_t t = 0; t < taps; t++)
      for (int32_t k = 0; k < g; k++) w[t * g + k] = filter[t * ch + c + k];
    q.mult = p->mult + c;
    q.shift = p->shift + c;
    KERNEL_DW(&q, x, w, bias ? bias + c : NULL, y);
    for (int32_t i = 0; i < n_out; i++)
      for (int32_t k = 0; k < g; k++) io[i * ch + c + k] = y[i * g + k];
  }
}

ts_status_t ts_depthwise_conv_eval(const ts_eval_t *e) {
  if (e->out == e->in0) /* the loader placed the output over the input */
    in_place(e);
  else
    KERNEL_DW(e->params, e->in0, e->in1, e->in2, e->out);
  return TS_OK;
}
