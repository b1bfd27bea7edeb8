/* cmsisnn-harness: one layer through ARM's CMSIS-NN kernels on the emulated Cortex-M4
 * (QEMU mps2-an386), counted like `make bench` counts ours.
 *
 *   qemu-system-arm -M mps2-an386 -display none -monitor none -serial none -icount shift=0 \
 *     -semihosting-config enable=on,target=native -kernel build/cmsisnn/cmsisnn-harness.elf \
 *     -append "layer /abs/path/LAYER.bin"
 *
 * LAYER.bin (written by tools/cmsisnn_compare.py from a model's .tflite and the TFLM
 * interpreter's tensors) is a header of int32 fields (enum field below; the Python side
 * checks its own list against this enum, tests/tools/test_cmsisnn_compare.py) followed by
 * the sections input 1, input 2, filter, bias, multipliers, shifts and the expected output,
 * each starting on a 16-byte boundary. The harness calls the CMSIS-NN function TFLM's
 * CMSIS-NN kernels call for the operator, with the scratch buffer its *_get_buffer_size
 * asks for, and prints one line:
 *
 *   cmsisnn op OP status S ticks T elements E mismatches M maxdiff D buffer B
 *
 * T is the SysTick ticks of the bare call (x 40 = instructions under -icount shift=0, as the
 * firmware's TIMING frames); M the output elements that differ from the expected output
 * (the TFLM interpreter's), D the largest difference. Exit status 0 when the call ran
 * (whatever M), 2 on a bad file or a failed call, 3 on a processor fault
 * (firmware/host/m4check_semihost.c, whose reset handler calls ts_kernel_check_main).
 *
 * CMSIS-NN itself is not part of this repository: tools/cmsisnn_compare.py compiles it
 * from a checkout given on its command line. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "m4_ticks.h" /* firmware/host: the kernel check's SysTick counter */

/* Header fields, in file order (int32 little-endian each). */
enum field {
  F_MAGIC, F_VERSION, F_OP, F_BATCH,
  F_IN_H, F_IN_W, F_IN_C, F_OUT_H, F_OUT_W, F_OUT_C,
  F_K_H, F_K_W, F_STRIDE_H, F_STRIDE_W, F_PAD_H, F_PAD_W, F_DIL_H, F_DIL_W, F_CH_MULT,
  F_IN_OFFSET, F_FILTER_OFFSET, F_OUT_OFFSET, F_ACT_MIN, F_ACT_MAX, F_PER_CHANNEL,
  F_IN2_OFFSET, F_IN1_MULT, F_IN1_SHIFT, F_IN2_MULT, F_IN2_SHIFT, F_LEFT_SHIFT,
  F_OUT_MULT, F_OUT_SHIFT, F_SM_MULT, F_SM_SHIFT, F_SM_DIFF_MIN,
  F_N_IN1, F_N_IN2, F_N_FILTER, F_N_BIAS, F_N_QUANT, F_N_OUT,
  F_COUNT
};
#define LAYER_MAGIC 0x4E4E4D43 /* "CMNN" */
#define LAYER_VERSION 1

/* TFLite BuiltinOperator codes (schema.fbs), as the file names the operator. */
enum { OP_ADD = 0, OP_AVERAGE_POOL_2D = 1, OP_CONV_2D = 3, OP_DEPTHWISE_CONV_2D = 4,
       OP_FULLY_CONNECTED = 9, OP_MAX_POOL_2D = 17, OP_SOFTMAX = 25 };

#define POOL_BYTES (1536 * 1024)
static uint8_t s_pool[POOL_BYTES] __attribute__((aligned(16)));
static size_t s_used;
static int32_t s_hdr[F_COUNT];

static void *take(size_t n) {
  const size_t at = (s_used + 15u) & ~(size_t)15u;
  if (n > POOL_BYTES || at > POOL_BYTES - n) return NULL;
  s_used = at + n;
  return &s_pool[at];
}

/* Reads n bytes of the file's next section (sections start on a 16-byte boundary). */
static void *section(FILE *f, long *pos, size_t n) {
  *pos = (*pos + 15) & ~15L;
  void *p = take(n ? n : 1);
  if (!p || fseek(f, *pos, SEEK_SET) != 0 || (n && fread(p, 1, n, f) != n)) return NULL;
  *pos += (long)n;
  return p;
}


typedef struct {
  const int8_t *in1, *in2, *filter;
  const int32_t *bias;
  int32_t *mult, *shift;
  int8_t *out;
  cmsis_nn_context ctx;
} layer_t;

static cmsis_nn_dims dims(int32_t n, int32_t h, int32_t w, int32_t c) {
  cmsis_nn_dims d = {n, h, w, c};
  return d;
}

static cmsis_nn_activation activation(void) {
  cmsis_nn_activation a = {s_hdr[F_ACT_MIN], s_hdr[F_ACT_MAX]};
  return a;
}

/* Scratch of `bytes` (0: none) for the call, taken from the pool before the count starts. */
static int32_t scratch(layer_t *l, int32_t bytes) {
  l->ctx.buf = NULL;
  l->ctx.size = 0;
  if (bytes > 0) {
    l->ctx.buf = take((size_t)bytes);
    if (!l->ctx.buf) return -1;
    memset(l->ctx.buf, 0, (size_t)bytes);
    l->ctx.size = bytes;
  }
  return bytes;
}

/* The operator's CMSIS-NN call; *ticks the SysTick ticks of the bare call. */
static int run(layer_t *l, uint32_t *ticks, int32_t *buffer) {
  const int32_t *h = s_hdr;
  const cmsis_nn_dims in_d = dims(h[F_BATCH], h[F_IN_H], h[F_IN_W], h[F_IN_C]);
  const cmsis_nn_dims out_d = dims(h[F_BATCH], h[F_OUT_H], h[F_OUT_W], h[F_OUT_C]);
  const cmsis_nn_dims bias_d = dims(1, 1, 1, h[F_OUT_C]);
  arm_cmsis_nn_status st = ARM_CMSIS_NN_SUCCESS;
  switch (h[F_OP]) {
  case OP_CONV_2D: {
    const cmsis_nn_conv_params p = {h[F_IN_OFFSET], h[F_OUT_OFFSET], {h[F_STRIDE_W], h[F_STRIDE_H]},
                                    {h[F_PAD_W], h[F_PAD_H]}, {h[F_DIL_W], h[F_DIL_H]}, activation()};
    const cmsis_nn_per_channel_quant_params q = {l->mult, l->shift};
    const cmsis_nn_dims f_d = dims(h[F_OUT_C], h[F_K_H], h[F_K_W], h[F_IN_C]);
    *buffer = scratch(l, arm_convolve_wrapper_s8_get_buffer_size(&p, &in_d, &f_d, &out_d));
    if (*buffer < 0) return -1;
    ticks_start();
    st = arm_convolve_wrapper_s8(&l->ctx, &p, &q, &in_d, l->in1, &f_d, l->filter, &bias_d, l->bias,
                                 &out_d, l->out);
    *ticks = ticks_stop();
    break;
  }
  case OP_DEPTHWISE_CONV_2D: {
    const cmsis_nn_dw_conv_params p = {h[F_IN_OFFSET], h[F_OUT_OFFSET], h[F_CH_MULT],
                                       {h[F_STRIDE_W], h[F_STRIDE_H]}, {h[F_PAD_W], h[F_PAD_H]},
                                       {h[F_DIL_W], h[F_DIL_H]}, activation()};
    const cmsis_nn_per_channel_quant_params q = {l->mult, l->shift};
    const cmsis_nn_dims f_d = dims(1, h[F_K_H], h[F_K_W], h[F_OUT_C]);
    *buffer = scratch(l, arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &in_d, &f_d, &out_d));
    if (*buffer < 0) return -1;
    ticks_start();
    st = arm_depthwise_conv_wrapper_s8(&l->ctx, &p, &q, &in_d, l->in1, &f_d, l->filter, &bias_d,
                                       l->bias, &out_d, l->out);
    *ticks = ticks_stop();
    break;
  }
  case OP_FULLY_CONNECTED: {
    /* as TFLM: input [batches, accum_depth], filter {accum_depth, 1, 1, out_depth} */
    const int32_t depth = h[F_IN_H] * h[F_IN_W] * h[F_IN_C];
    const cmsis_nn_fc_params p = {h[F_IN_OFFSET], h[F_FILTER_OFFSET], h[F_OUT_OFFSET], activation()};
    const cmsis_nn_quant_params q = {l->mult, l->shift, h[F_PER_CHANNEL]};
    const cmsis_nn_dims fc_in = dims(h[F_BATCH], 1, 1, depth);
    const cmsis_nn_dims f_d = dims(depth, 1, 1, h[F_OUT_C]);
    const cmsis_nn_dims fc_out = dims(h[F_BATCH], 1, 1, h[F_OUT_C]);
    *buffer = scratch(l, arm_fully_connected_s8_get_buffer_size(&f_d));
    if (*buffer < 0) return -1;
    ticks_start();
    st = arm_fully_connected_wrapper_s8(&l->ctx, &p, &q, &fc_in, l->in1, &f_d, l->filter, &bias_d,
                                        l->bias, &fc_out, l->out);
    *ticks = ticks_stop();
    break;
  }
  case OP_AVERAGE_POOL_2D:
  case OP_MAX_POOL_2D: {
    const cmsis_nn_pool_params p = {{h[F_STRIDE_W], h[F_STRIDE_H]}, {h[F_PAD_W], h[F_PAD_H]}, activation()};
    const cmsis_nn_dims f_d = dims(1, h[F_K_H], h[F_K_W], 1);
    if (h[F_OP] == OP_AVERAGE_POOL_2D) {
      *buffer = scratch(l, arm_avgpool_s8_get_buffer_size(h[F_OUT_W], h[F_IN_C]));
      if (*buffer < 0) return -1;
      ticks_start();
      st = arm_avgpool_s8(&l->ctx, &p, &in_d, l->in1, &f_d, &out_d, l->out);
      *ticks = ticks_stop();
    } else {
      *buffer = scratch(l, 0);
      ticks_start();
      st = arm_max_pool_s8(&l->ctx, &p, &in_d, l->in1, &f_d, &out_d, l->out);
      *ticks = ticks_stop();
    }
    break;
  }
  case OP_ADD: {
    *buffer = scratch(l, 0);
    ticks_start();
    st = arm_elementwise_add_s8(l->in1, l->in2, h[F_IN_OFFSET], h[F_IN1_MULT], h[F_IN1_SHIFT],
                                h[F_IN2_OFFSET], h[F_IN2_MULT], h[F_IN2_SHIFT], h[F_LEFT_SHIFT],
                                l->out, h[F_OUT_OFFSET], h[F_OUT_MULT], h[F_OUT_SHIFT],
                                h[F_ACT_MIN], h[F_ACT_MAX], h[F_N_OUT]);
    *ticks = ticks_stop();
    break;
  }
  case OP_SOFTMAX: {
    /* as TFLM: rows = all dimensions but the last, row size = the last */
    *buffer = scratch(l, 0);
    const int32_t rows = h[F_N_OUT] / h[F_OUT_C];
    ticks_start();
    arm_softmax_s8(l->in1, rows, h[F_OUT_C], h[F_SM_MULT], h[F_SM_SHIFT], h[F_SM_DIFF_MIN], l->out);
    *ticks = ticks_stop();
    break;
  }
  default:
    printf("cmsisnn: operator %" PRId32 " is not one the harness runs\n", h[F_OP]);
    return -1;
  }
  return st == ARM_CMSIS_NN_SUCCESS ? 0 : (int)st;
}

static int layer(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("cmsisnn: cannot open %s\n", path);
    return 2;
  }
  layer_t l;
  memset(&l, 0, sizeof l);
  const int8_t *want = NULL;
  int ok = fread(s_hdr, sizeof s_hdr, 1, f) == 1 && s_hdr[F_MAGIC] == LAYER_MAGIC &&
           s_hdr[F_VERSION] == LAYER_VERSION;
  for (int i = F_N_IN1; ok && i <= F_N_OUT; i++) ok = s_hdr[i] >= 0;
  if (ok) {
    long pos = (long)sizeof s_hdr;
    const int32_t *h = s_hdr;
    ok = (l.in1 = section(f, &pos, (size_t)h[F_N_IN1])) != NULL &&
         (l.in2 = section(f, &pos, (size_t)h[F_N_IN2])) != NULL &&
         (l.filter = section(f, &pos, (size_t)h[F_N_FILTER])) != NULL &&
         (l.bias = section(f, &pos, 4u * (size_t)h[F_N_BIAS])) != NULL &&
         (l.mult = section(f, &pos, 4u * (size_t)h[F_N_QUANT])) != NULL &&
         (l.shift = section(f, &pos, 4u * (size_t)h[F_N_QUANT])) != NULL &&
         (want = section(f, &pos, (size_t)h[F_N_OUT])) != NULL &&
         (l.out = take((size_t)h[F_N_OUT] + 1)) != NULL;
    if (ok && h[F_N_BIAS] == 0) l.bias = NULL; /* a layer without bias, as TFLM passes it */
  }
  fclose(f);
  if (!ok) {
    printf("cmsisnn: %s is not a layer file of version %d, or too large for the pool (%d bytes)\n",
           path, LAYER_VERSION, POOL_BYTES);
    return 2;
  }
  memset(l.out, 0x55, (size_t)s_hdr[F_N_OUT]);
  uint32_t ticks = 0;
  int32_t buffer = 0;
  const int st = run(&l, &ticks, &buffer);
  if (st < 0) return 2;
  int32_t bad = 0, maxdiff = 0;
  for (int32_t i = 0; i < s_hdr[F_N_OUT]; i++) {
    const int32_t d = abs((int32_t)l.out[i] - (int32_t)want[i]);
    bad += d != 0;
    if (d > maxdiff) maxdiff = d;
  }
  printf("cmsisnn op %" PRId32 " status %d ticks %" PRIu32 " elements %" PRId32
         " mismatches %" PRId32 " maxdiff %" PRId32 " buffer %" PRId32 "\n",
         s_hdr[F_OP], st, ticks, s_hdr[F_N_OUT], bad, maxdiff, buffer);
  return st == 0 ? 0 : 2;
}

int ts_kernel_check_main(int argc, char **argv);
int ts_kernel_check_main(int argc, char **argv) {
  if (argc != 3 || strcmp(argv[1], "layer") != 0) {
    printf("usage: %s layer FILE\n", argc > 0 ? argv[0] : "cmsisnn-harness");
    return 2;
  }
  return layer(argv[2]);
}
