/* MAX_POOL_2D and AVERAGE_POOL_2D int8 reference kernels, as TFLM's
 * reference_integer_ops::MaxPool / AveragePool. Windows are clipped to the input (padding
 * is not counted); the average is the int32 sum divided by the number of taps, rounded
 * half away from zero; no zero-point arithmetic (input and output share quantization). */
#include "ts_kernels.h"

#define WINDOW_LOOP_BEGIN                                                        \
  for (int32_t b = 0; b < p->batches; b++)                                       \
    for (int32_t oy = 0; oy < p->out_h; oy++)                                    \
      for (int32_t ox = 0; ox < p->out_w; ox++)                                  \
        for (int32_t c = 0; c < p->depth; c++) {                                 \
          const int32_t y0 = oy * p->stride_h - p->pad_h;                        \
          const int32_t x0 = ox * p->stride_w - p->pad_w;                        \
          const int32_t fy0 = y0 < 0 ? -y0 : 0;                                  \
          const int32_t fy1 = p->f_h < p->in_h - y0 ? p->f_h : p->in_h - y0;     \
          const int32_t fx0 = x0 < 0 ? -x0 : 0;                                  \
          const int32_t fx1 = p->f_w < p->in_w - x0 ? p->f_w : p->in_w - x0;

#define AT(y, x) input[((b * p->in_h + (y)) * p->in_w + (x)) * p->depth + c]
#define OUT output[((b * p->out_h + oy) * p->out_w + ox) * p->depth + c]

/* Both pools, one loop nest (max: the window's maximum from -128, else the rounded mean;
 * an empty average window fails, -1). */
static int pool(const ts_pool_params_t *p, const int8_t *input, int8_t *output, int max) {
  WINDOW_LOOP_BEGIN
  int32_t acc = max ? -128 : 0, count = 0;
  for (int32_t fy = fy0; fy < fy1; fy++)
    for (int32_t fx = fx0; fx < fx1; fx++) {
      const int32_t v = AT(y0 + fy, x0 + fx);
      if (!max) acc += v;
      else if (v > acc) acc = v;
      count++;
    }
  if (!max) {
    if (count == 0) return -1;
    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
  }
  if (acc < p->act_min) acc = p->act_min;
  if (acc > p->act_max) acc = p->act_max;
  OUT = (int8_t)acc;
  }
  return 0;
}

void ts_ref_max_pool_s8(const ts_pool_params_t *p, const int8_t *input, int8_t *output) {
  (void)pool(p, input, output, 1);
}

int ts_ref_avg_pool_s8(const ts_pool_params_t *p, const int8_t *input, int8_t *output) {
  return pool(p, input, output, 0);
}
