/* RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR int8 reference kernels, as TFLM's
 * reference_ops::ResizeNearestNeighbor and ResizeBilinearInteger (double rounding). */
#include <string.h>

#include "ts_kernels.h"
#include "ts_quant.h"

/* GetNearestNeighbor: min(floor((i + offset) * scale), in - 1) (round with align_corners),
 * at least 0 with half-pixel centers; float arithmetic as TFLM. The product is >= 0, so
 * floor is the truncation. */
/* (out of line, as interp below: one copy for rows and columns) */
static __attribute__((noinline)) int32_t nearest(int32_t i, int32_t in_size, float scale,
                                                int32_t align, int32_t half) {
  const float v = ((float)i + (half ? 0.5f : 0.0f)) * scale;
  int32_t r = align ? ts_roundf_to_i32(v) : (int32_t)v;
  if (r > in_size - 1) r = in_size - 1;
  if (half && r < 0) r = 0;
  return r;
}

void ts_ref_resize_nearest_s8(const ts_resize_params_t *p, const int8_t *input,
                              int8_t *output) {
  const size_t row = (size_t)p->in_w * (size_t)p->depth;
  for (int32_t b = 0; b < p->batches; b++) {
    const int8_t *in_b = input + (size_t)b * (size_t)p->in_h * row;
    for (int32_t y = 0; y < p->out_h; y++) {
      const int8_t *in_y =
          in_b + (size_t)nearest(y, p->in_h, p->scale_h, p->align_corners,
                                 p->half_pixel_centers) * row;
      for (int32_t x = 0; x < p->out_w; x++) {
        const int32_t ix =
            nearest(x, p->in_w, p->scale_w, p->align_corners, p->half_pixel_centers);
        memcpy(output, in_y + (size_t)ix * (size_t)p->depth, (size_t)p->depth);
        output += p->depth;
      }
    }
  }
}

/* ComputeInterpolationValuesInteger: the source position in 1/1024 steps and the two
 * neighbouring rows/columns. */
static __attribute__((noinline)) void interp(int32_t i, int32_t scale_10, int32_t half,
                                              int32_t in_size, int32_t *pos, int32_t *lo,
                                              int32_t *hi) {
  *pos = half ? i * scale_10 + scale_10 / 2 - (1 << 9) : i * scale_10;
  *lo = *pos / (1 << 10) > 0 ? *pos / (1 << 10) : 0;
  *hi = (*pos + (1 << 10) - 1) / (1 << 10);
  if (*hi > in_size - 1) *hi = in_size - 1;
}

void ts_ref_resize_bilinear_s8(const ts_resize_params_t *p, const int8_t *input,
                               int8_t *output) {
  /* TFLM sums the four products in int64; they fit int32: the weights are in (-512, 1536)
   * (a half-pixel position below 0 keeps row/column 0), so each term's magnitude is below
   * 128 * 1536^2 and the four together below 128 * 2048^2 = 2^29 (the same sum and
   * rounding, exactly). */
  const int32_t d = p->depth;
  for (int32_t b = 0; b < p->batches; b++) {
    const int8_t *in_b = input + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * (size_t)d;
    for (int32_t y = 0; y < p->out_h; y++) {
      int32_t py, y0, y1;
      interp(y, p->scale_h_10, p->half_pixel_centers, p->in_h, &py, &y0, &y1);
      const int32_t fy = py - (1 << 10) * y0; /* weight of row y1, in 1/1024 */
      for (int32_t x = 0; x < p->out_w; x++) {
        int32_t px, x0, x1;
        interp(x, p->scale_w_10, p->half_pixel_centers, p->in_w, &px, &x0, &x1);
        const int32_t fx = px - (1 << 10) * x0;
        const int8_t *r0 = in_b + (size_t)y0 * (size_t)p->in_w * (size_t)d;
        const int8_t *r1 = in_b + (size_t)y1 * (size_t)p->in_w * (size_t)d;
        for (int32_t c = 0; c < d; c++) {
          const int32_t v = r0[x0 * d + c] * ((1 << 10) - fy) * ((1 << 10) - fx) +
                            r1[x0 * d + c] * fy * ((1 << 10) - fx) +
                            r0[x1 * d + c] * ((1 << 10) - fy) * fx + r1[x1 * d + c] * fy * fx;
          const int32_t round = v > 0 ? (1 << 19) : -(1 << 19);
          *output++ = (int8_t)((v + round) / (1 << 20));
        }
      }
    }
  }
}
