/* DEPTHWISE_CONV_2D int8 reference kernel, as TFLM's
 * reference_integer_ops::DepthwiseConvPerChannel. Output channel oc sees only input channel
 * ic = oc / depth_multiplier, with filter[0][ky][kx][oc] and per-channel mult[oc]. */
#include "ts_kernels.h"
#include "ts_quant.h"

void ts_ref_depthwise_conv2d_s8(const ts_dw_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output) {
  for (int32_t b = 0; b < p->batches; b++) {
    for (int32_t oy = 0; oy < p->out_h; oy++) {
      const int32_t in_y0 = oy * p->stride_h - p->pad_h;
      for (int32_t ox = 0; ox < p->out_w; ox++) {
        const int32_t in_x0 = ox * p->stride_w - p->pad_w;
        for (int32_t oc = 0; oc < p->out_c; oc++) {
          const int32_t ic = oc / p->depth_multiplier;
          int32_t acc = 0;
          for (int32_t ky = 0; ky < p->k_h; ky++) {
            const int32_t iy = in_y0 + p->dil_h * ky;
            if (iy < 0 || iy >= p->in_h) continue;
            for (int32_t kx = 0; kx < p->k_w; kx++) {
              const int32_t ix = in_x0 + p->dil_w * kx;
              if (ix < 0 || ix >= p->in_w) continue;
              const int32_t in = input[((b * p->in_h + iy) * p->in_w + ix) * p->in_c + ic];
              const int32_t f = filter[(ky * p->k_w + kx) * p->out_c + oc];
              acc += f * (in + p->input_offset);
            }
          }
          /* wrapping add: an extreme bias must not be C undefined behaviour (fuzz_model);
           * two's complement wrap is what TFLM's int32 add does on every target */
          if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[oc]);
          acc = ts_mbqm(acc, p->mult[oc], p->shift[oc]) + p->output_offset;
          if (acc < p->act_min) acc = p->act_min;
          if (acc > p->act_max) acc = p->act_max;
          output[((b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] = (int8_t)acc;
        }
      }
    }
  }
}
