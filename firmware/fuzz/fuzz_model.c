/*
 * libFuzzer target: the runtime's model parser, planner and interpreter on mutated
 * flatbuffers (seeds: real int8 models from tinyscope.convert.quantize). For every model the
 * runtime accepts, it also looks at every tensor, fills the input and runs the model,
 * reading each streamed activation in full. Oracles: ASan, UBSan, the libFuzzer timeout.
 */
#include <stdlib.h>
#include <string.h>

#include "ts_runtime.h"

#define ARENA_BYTES (64u * 1024u) /* bounds the work per input: keeps >= 1000 runs/s */
static uint8_t s_arena[ARENA_BYTES] __attribute__((aligned(16)));
static volatile uint32_t s_sink;

static void touch(const ts_tensor_t *t) {
  if (t->data != NULL) {
    const uint8_t *p = t->data;
    uint32_t acc = 0;
    for (uint32_t i = 0; i < t->bytes; i++) acc += p[i];
    s_sink += acc;
  }
  for (uint32_t q = 0; q < t->num_quant; q++) {
    float s = ts_tensor_scale(t, q);
    s_sink += (uint32_t)ts_tensor_zero_point(t, q) + (s > 0.0f);
  }
}

static void on_op(void *user, int32_t op_index, int32_t builtin_op, const ts_tensor_t *out) {
  (void)user;
  (void)op_index;
  (void)builtin_op;
  if (out != NULL) touch(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ts_interp_t it;
  memset(&it, 0, sizeof it);
  ts_status_t st = ts_interp_init(&it, data, size, s_arena, sizeof s_arena);
  if (strlen(ts_interp_error(&it)) >= TS_ERROR_LEN) abort();
  (void)ts_status_name(st);
  if (st != TS_OK) {
    if (ts_interp_invoke(&it, on_op, NULL) == TS_OK) abort(); /* must refuse */
    return 0;
  }
  for (int32_t i = 0; i < it.num_tensors; i++) {
    ts_tensor_t t;
    if (ts_interp_tensor(&it, i, &t) == TS_OK) touch(&t);
  }
  for (int32_t i = 0; i < it.num_ops; i++) {
    int32_t code, tensor;
    if (ts_interp_op(&it, i, &code, &tensor) != TS_OK) abort();
  }
  ts_tensor_t in;
  for (int32_t i = 0; i < it.num_inputs; i++) {
    if (ts_interp_input(&it, i, &in) == TS_OK && in.data != NULL) {
      for (uint32_t k = 0; k < in.bytes; k++) ((uint8_t *)in.data)[k] = (uint8_t)(k * 31u + 7u);
    }
  }
  (void)ts_interp_invoke(&it, on_op, NULL);
  ts_tensor_t out;
  for (int32_t i = 0; i < it.num_outputs; i++)
    if (ts_interp_output(&it, i, &out) == TS_OK) touch(&out);
  return 0;
}
