/*
 * tinyscope reference kernels (int8), one per operator, bit-exact with the TFLM reference
 * kernels (tensorflow/lite/kernels/internal/reference/integer_ops/ *.h).
 *
 * The kernel boundary: each kernel takes a parameter struct filled once at init (by the
 * interpreter's Prepare step, or by a unit test) plus raw data pointers, and never
 * allocates. A later optimized kernel set (e.g. Cortex-M4 DSP) implements the same
 * functions with the same parameter structs and must produce the same bytes.
 *
 * Conventions (as TFLM): tensors are NHWC, row-major; "offsets" are negated input zero
 * points (input_offset = -input_zp) and the output zero point (output_offset = +output_zp);
 * requantization multipliers are (Q31 mantissa, power-of-two exponent) pairs from
 * ts_quantize_multiplier().
 */
#ifndef TS_KERNELS_H
#define TS_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TS_MAX_CONCAT_INPUTS 10

/* CONV_2D, filter [out_c][k_h][k_w][in_c], bias [out_c] (may be NULL). */
typedef struct {
  int32_t batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
  int32_t stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
  int32_t input_offset, output_offset, act_min, act_max;
  const int32_t *mult;  /* [out_c] */
  const int32_t *shift; /* [out_c] */
} ts_conv_params_t;

/* DEPTHWISE_CONV_2D, filter [1][k_h][k_w][out_c], out_c = in_c * depth_multiplier.
 * The fields before depth_multiplier are laid out as ts_conv_params_t's (the interpreter
 * fills both from one prepare step). */
typedef struct {
  int32_t batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
  int32_t stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
  int32_t input_offset, output_offset, act_min, act_max;
  const int32_t *mult;  /* [out_c] */
  const int32_t *shift; /* [out_c] */
  int32_t depth_multiplier;
} ts_dw_params_t;

/* FULLY_CONNECTED, filter [out_depth][accum_depth], bias [out_depth] (may be NULL).
 * per_channel = 0: mult[0]/shift[0] for every output. */
typedef struct {
  int32_t batches, accum_depth, out_depth, per_channel;
  int32_t input_offset, filter_offset, output_offset, act_min, act_max;
  const int32_t *mult;
  const int32_t *shift;
} ts_fc_params_t;

/* MAX_POOL_2D / AVERAGE_POOL_2D. */
typedef struct {
  int32_t batches, in_h, in_w, depth, out_h, out_w, f_h, f_w;
  int32_t stride_h, stride_w, pad_h, pad_w, act_min, act_max;
} ts_pool_params_t;

/* The head of the binary element-wise operators' parameters (ADD, SUB, MUL, MAXIMUM,
 * MINIMUM), filled by one shared prepare: 4-D broadcasting (shapes padded with leading 1s),
 * the zero points and the fused activation's clamp (MAXIMUM/MINIMUM: none, left 0). */
#define TS_BINARY_HEAD                                                   \
  int32_t out_dims[4];                                                   \
  int32_t in1_strides[4], in2_strides[4]; /* 0 along a broadcast dim */ \
  int32_t input1_offset, input2_offset, output_offset, act_min, act_max
typedef struct {
  TS_BINARY_HEAD;
} ts_binary_params_t;

/* ADD (and SUB) with 4-D broadcasting. */
typedef struct {
  TS_BINARY_HEAD;
  int32_t left_shift;
  int32_t input1_mult, input1_shift, input2_mult, input2_shift, output_mult, output_shift;
} ts_add_params_t;

/* SOFTMAX int8 -> int8 (output scale 1/256, zero point -128). */
typedef struct {
  int32_t outer, depth;
  int32_t input_multiplier, input_left_shift, diff_min;
} ts_softmax_params_t;

/* MEAN over any set of axes of a tensor of up to 4 dims (padded with leading 1s). */
typedef struct {
  int32_t in_dims[4];
  uint8_t reduce[4]; /* 1: axis is reduced */
  int32_t input_zp, output_zp, mult, shift; /* mult/shift already include 1/count */
  int32_t count; /* elements per output */
} ts_mean_params_t;

/* PAD of a tensor of up to 4 dims (padded with leading 1s). */
typedef struct {
  int32_t in_dims[4], before[4], after[4];
  int32_t pad_value;
} ts_pad_params_t;

/* The head of the element-wise unary int8 operators' parameters (QUANTIZE int8 -> int8,
 * RELU, RELU6, LEAKY_RELU, LOGISTIC, TANH, HARD_SWISH), filled by one shared prepare:
 * elements, input and output zero points. */
#define TS_UNARY_HEAD int32_t size, input_zp, output_zp
typedef struct {
  TS_UNARY_HEAD;
} ts_unary_params_t;

/* QUANTIZE int8 -> int8 (reference_ops::Requantize), RELU (ReluQuantized), RELU6
 * (Relu6Quantized: the raw values clamped, i.e. the identity multiplier 2^30 * 2^1 and the
 * input's zero point on both sides) and LEAKY_RELU (QuantizeLeakyRelu): with x = in - input_zp,
 * clamp(output_zp + MBQM(x, mult[x < 0], shift[x < 0]), act_min, act_max). */
typedef struct {
  TS_UNARY_HEAD;
  int32_t mult[2], shift[2]; /* [0]: x >= 0, [1]: x < 0 */
  int32_t act_min, act_max;
} ts_requant_params_t;
typedef ts_requant_params_t ts_relu_params_t;
typedef ts_requant_params_t ts_leaky_relu_params_t;

/* QUANTIZE float32 -> int8 (reference_ops::AffineQuantize: round(x / scale) + zero_point
 * in float, clamped) and DEQUANTIZE int8 -> float32 (reference_ops::Dequantize:
 * (float)((double)scale * (q - zero_point))). */
typedef struct {
  int32_t size, zero_point;
  float scale;
} ts_affine_params_t;

/* CONCATENATION: outer copies of each input's inner block (bytes). */
typedef struct {
  int32_t outer, num_inputs;
  int32_t inner[TS_MAX_CONCAT_INPUTS];
} ts_concat_params_t;

/* MUL with 4-D broadcasting: out = clamp(MBQM((in1 + off1) * (in2 + off2), mult, shift)
 * + output_offset). */
typedef struct {
  TS_BINARY_HEAD;
  int32_t output_mult, output_shift;
} ts_mul_params_t;

/* MAXIMUM / MINIMUM with 4-D broadcasting, on the raw int8 values (as TFLM: no
 * requantization). */
typedef struct {
  TS_BINARY_HEAD;
  int32_t is_max;
} ts_minmax_params_t;

/* LOGISTIC (output scale 1/256, zero point -128) and TANH (output scale 1/128, zero point
 * 0): the input in Q4.27 through gemmlowp's fixed-point logistic / tanh. */
typedef struct {
  TS_UNARY_HEAD; /* (the output zero point is fixed: -128 LOGISTIC, 0 TANH) */
  int32_t range_radius, input_mult, input_left_shift;
} ts_sigmoid_params_t;

/* STRIDED_SLICE of up to 4 dims (padded with leading axes taken whole): output element
 * (j0..j3) = input element (start[k] + j_k * step[k]) for j_k < count[k]; byte copy. */
typedef struct {
  int32_t in_dims[4], start[4], step[4], count[4];
} ts_slice_params_t;

/* RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR of NHWC int8 (no requantization). Nearest:
 * source index from the float scale in_size / out_size (or (in - 1) / (out - 1) with
 * align_corners) as TFLM's GetNearestNeighbor; bilinear: TFLM's integer path, scales in
 * 1/1024 steps. */
typedef struct {
  int32_t batches, in_h, in_w, depth, out_h, out_w;
  int32_t align_corners, half_pixel_centers;
  int32_t scale_h_10, scale_w_10; /* bilinear */
  float scale_h, scale_w;         /* nearest */
} ts_resize_params_t;

/* HARD_SWISH: int16 fixed point as TFLM's reference_ops::HardSwish. */
typedef struct {
  TS_UNARY_HEAD;
  int32_t output_exp, reluish_exp;     /* power-of-two exponents */
  int16_t output_mult, reluish_mult;   /* Q15 multipliers */
} ts_hard_swish_params_t;

void ts_ref_conv2d_s8(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output);
void ts_ref_depthwise_conv2d_s8(const ts_dw_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output);
void ts_ref_fully_connected_s8(const ts_fc_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output);
void ts_ref_max_pool_s8(const ts_pool_params_t *p, const int8_t *input, int8_t *output);
/* Returns 0, or -1 if an output window covers no input element (TFLM fails then too). */
int ts_ref_avg_pool_s8(const ts_pool_params_t *p, const int8_t *input, int8_t *output);
void ts_ref_add_s8(const ts_add_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output);
void ts_ref_softmax_s8(const ts_softmax_params_t *p, const int8_t *input, int8_t *output);
void ts_ref_mean_s8(const ts_mean_params_t *p, const int8_t *input, int8_t *output);
void ts_ref_pad_s8(const ts_pad_params_t *p, const int8_t *input, int8_t *output);
void ts_ref_requantize_s8(const ts_requant_params_t *p, const int8_t *input, int8_t *output);
void ts_ref_concat_s8(const ts_concat_params_t *p, const int8_t *const *inputs,
                      int8_t *output);
void ts_ref_sub_s8(const ts_add_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output);
void ts_ref_mul_s8(const ts_mul_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output);
void ts_ref_minmax_s8(const ts_minmax_params_t *p, const int8_t *in1, const int8_t *in2,
                      int8_t *output);
void ts_ref_logistic_s8(const ts_sigmoid_params_t *p, const int8_t *input, int8_t *output);
void ts_ref_tanh_s8(const ts_sigmoid_params_t *p, const int8_t *input, int8_t *output);
void ts_ref_strided_slice_s8(const ts_slice_params_t *p, const int8_t *input, int8_t *output);
void ts_ref_resize_nearest_s8(const ts_resize_params_t *p, const int8_t *input,
                              int8_t *output);
void ts_ref_resize_bilinear_s8(const ts_resize_params_t *p, const int8_t *input,
                               int8_t *output);
/* TRANSPOSE_CONV, filter [out_c][k_h][k_w][in_c]: every input pixel scatters
 * (x + input_offset) * w into an int32 scratch of the output's size (zeroed first), then
 * bias, per-channel requantization and the activation clamp, as TFLM's
 * reference_integer_ops::TransposeConv. */
void ts_ref_transpose_conv_s8(const ts_conv_params_t *p, const int8_t *input,
                              const int8_t *filter, const int32_t *bias, int32_t *scratch,
                              int8_t *output);
void ts_ref_quantize_f32_s8(const ts_affine_params_t *p, const float *input, int8_t *output);
void ts_ref_dequantize_s8_f32(const ts_affine_params_t *p, const int8_t *input, float *output);
void ts_ref_hard_swish_s8(const ts_hard_swish_params_t *p, const int8_t *input,
                          int8_t *output);

/* Optimized kernels (kernels/cm4/: Cortex-M4 DSP instructions and Thumb-2, portable C
 * elsewhere), same parameters, same bytes as the reference kernels above. Their scratch
 * lives on the stack, bounded: CONV_2D 2 * TS_OPT_CONV_WBUF + 3 * TS_OPT_CONV_ROWBUF bytes
 * (7.5 KB: weight records, the 3-pixel im2col, one border segment); FULLY_CONNECTED
 * 2 * TS_OPT_FC_XBUF + ~270 bytes (2.3 KB); DEPTHWISE_CONV_2D ~4.3 KB (planes of 32 rows
 * of 64 int16, or the NHWC path's weight records in as many bytes); SOFTMAX
 * 4 * TS_OPT_SOFTMAX_ROW_BUF bytes (512 B: one row's exps); the others none (measured peak of the M4 kernel check: 8.3 KB of stack). Layers outside those bounds or
 * shapes a kernel has no fast path for run the reference kernel or a plain loop nest with
 * its arithmetic (see each kernel's header). The interpreter calls these when built with
 * TS_USE_OPT_KERNELS (make TS_KERNELS=opt, the default). */
#ifndef TS_OPT_CONV_WBUF
#define TS_OPT_CONV_WBUF 1536 /* int16 weights of one block of output channels */
#endif
#ifndef TS_OPT_CONV_BLOCK
#define TS_OPT_CONV_BLOCK 64 /* output channels per weight block at most */
#endif
#ifndef TS_OPT_CONV_ROWBUF
#define TS_OPT_CONV_ROWBUF 1536 /* int16 values of the im2col of 3 output pixels */
#endif
#ifndef TS_OPT_FC_XBUF
#define TS_OPT_FC_XBUF 1024 /* int16 inputs of FULLY_CONNECTED widened at once */
#endif
void ts_opt_add_s8(const ts_add_params_t *p, const int8_t *in1, const int8_t *in2,
                   int8_t *output);
void ts_opt_conv2d_s8(const ts_conv_params_t *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output);
void ts_opt_depthwise_conv2d_s8(const ts_dw_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output);
void ts_opt_fully_connected_s8(const ts_fc_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output);
void ts_opt_max_pool_s8(const ts_pool_params_t *p, const int8_t *input, int8_t *output);
int ts_opt_avg_pool_s8(const ts_pool_params_t *p, const int8_t *input, int8_t *output);
void ts_opt_mean_s8(const ts_mean_params_t *p, const int8_t *input, int8_t *output);
void ts_opt_softmax_s8(const ts_softmax_params_t *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* TS_KERNELS_H */
