/*
 * tinyscope runtime: runs a full-int8 TFLite flatbuffer (as emitted in a TFLM C array)
 * bit-exactly with the TensorFlow Lite for Microcontrollers reference kernels.
 *
 * Contract:
 *  - No heap. The caller provides one arena; all runtime state (per-tensor records,
 *    per-op precomputed parameters, activation buffers) lives in it. Model weights are
 *    read in place from the model bytes (flash).
 *  - The model bytes are untrusted: every read is bounds-checked; a malformed model
 *    returns TS_ERR_BAD_MODEL with a message, never reads out of bounds.
 *  - The per-operator callback is the single place where activations leave the runtime.
 *  - Operators are reported by their TFLite builtin code (callback, ts_interp_op, errors
 *    such as "unsupported op code 28 at operator 1"); host tools name them (ts_opnames.h).
 *
 * Typical use:
 *    ts_interp_t it;
 *    ts_status_t s = ts_interp_init(&it, g_model_data, g_model_data_size, arena, sizeof arena);
 *    if (s != TS_OK) { puts(ts_interp_error(&it)); ... }
 *    ts_tensor_t in; ts_interp_input(&it, 0, &in); memcpy(in.data, image, in.bytes);
 *    s = ts_interp_invoke(&it, on_op, user);
 */
#ifndef TS_RUNTIME_H
#define TS_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TS_MAX_DIMS 6
#define TS_ERROR_LEN 96
/* A runtime built with -DTS_STRIP_MESSAGES (as TFLM's TF_LITE_STRIP_ERROR_STRINGS; the
 * firmware's default, 4 KB less code) keeps no message texts: ts_interp_error() says only
 * where, "operator N " / "tensor N " / "", then this mark. The runtime built with its
 * messages (the native runner, tinyscope-run) gives the text for the same model. */
#define TS_STRIPPED_MARK "(TS_STRIP_MESSAGES)"

typedef enum {
  TS_OK = 0,
  TS_ERR_BAD_MODEL = 1,       /* malformed / truncated flatbuffer, bad schema version */
  TS_ERR_UNSUPPORTED = 2,     /* an operator, tensor type or option the runtime lacks */
  TS_ERR_ARENA_TOO_SMALL = 3, /* it->arena_needed says how many bytes are needed */
  TS_ERR_BAD_ARG = 4,         /* caller error: null pointer, index out of range */
  TS_ERR_NOT_READY = 5        /* invoke before a successful init */
} ts_status_t;

/* Tensor element types: the values of the TFLite schema's TensorType enum. */
typedef enum {
  TS_FLOAT32 = 0,
  TS_INT32 = 2,
  TS_UINT8 = 3,
  TS_INT64 = 4,
  TS_INT16 = 7,
  TS_INT8 = 9
} ts_dtype_t;

/* A view of one tensor. `data` points into the arena (activations) or into the model
 * bytes (constants). Quantization parameters are read from the model on demand with
 * ts_tensor_scale() / ts_tensor_zero_point(). */
typedef struct {
  int32_t index;             /* tensor index in subgraph 0 */
  const char *name;          /* NUL-terminated, inside the model bytes; "" if none */
  uint8_t dtype;             /* ts_dtype_t */
  uint8_t ndims;
  int32_t dims[TS_MAX_DIMS];
  uint32_t bytes;            /* element count * element size */
  void *data;                /* NULL only for a tensor that is never allocated */
  uint32_t num_quant;        /* number of scales (0: not quantized, 1: per tensor) */
  int32_t quantized_dimension;
  const uint8_t *scales_le;  /* num_quant little-endian float32, inside the model */
  const uint8_t *zero_points_le; /* num_quant little-endian int64, inside the model */
} ts_tensor_t;

float ts_tensor_scale(const ts_tensor_t *t, uint32_t i);
int32_t ts_tensor_zero_point(const ts_tensor_t *t, uint32_t i);

/* Called after each operator has run; `output` is the operator's first output tensor,
 * valid only during the call. `builtin_op` is the TFLite BuiltinOperator code. */
typedef void (*ts_op_callback_t)(void *user, int32_t op_index, int32_t builtin_op,
                                 const ts_tensor_t *output);

/* The interpreter handle. Its fields are private to the runtime except those marked. */
typedef struct {
  /* public, read-only */
  int32_t num_tensors;
  int32_t num_ops;
  int32_t num_inputs;
  int32_t num_outputs;
  size_t arena_needed; /* bytes of arena the model needs (set by init, also on failure) */
  size_t arena_used;   /* bytes used after a successful init */
  char error[TS_ERROR_LEN]; /* last error message, "" if none */
  /* private */
  const uint8_t *model;
  size_t model_size;
  uint8_t *arena;
  size_t arena_size;
  void *priv; /* runtime state inside the arena */
  int ready;
} ts_interp_t;

/* Parse and validate the model, plan the arena, precompute per-op parameters.
 * On TS_ERR_ARENA_TOO_SMALL, it->arena_needed holds the size to retry with. */
ts_status_t ts_interp_init(ts_interp_t *it, const uint8_t *model, size_t model_size,
                           uint8_t *arena, size_t arena_size);

/* The same, with the per-channel requantization tables (a multiplier and a shift per output
 * channel of every CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV; on a
 * MobileNetV1-0.25 21,904 of its 81,792 bytes) outside the arena, e.g. in flash: `tables`
 * as ts_interp_tables() gave them after an init of the same model (tinyscope-run --tables
 * writes them). Init recomputes every value and refuses tables that do not match. */
ts_status_t ts_interp_init_tables(ts_interp_t *it, const uint8_t *model, size_t model_size,
                                  uint8_t *arena, size_t arena_size, const int32_t *tables,
                                  size_t table_words);

/* The per-channel tables of a successful init (inside the arena, or the caller's). */
ts_status_t ts_interp_tables(const ts_interp_t *it, const int32_t **tables, size_t *words);

/* Run every operator in order; calls `cb` (may be NULL) after each one. */
ts_status_t ts_interp_invoke(ts_interp_t *it, ts_op_callback_t cb, void *user);

ts_status_t ts_interp_input(const ts_interp_t *it, int32_t i, ts_tensor_t *out);
ts_status_t ts_interp_output(const ts_interp_t *it, int32_t i, ts_tensor_t *out);
ts_status_t ts_interp_tensor(const ts_interp_t *it, int32_t tensor_index, ts_tensor_t *out);

/* Operator `op_index`: its builtin code and its first output tensor index. */
ts_status_t ts_interp_op(const ts_interp_t *it, int32_t op_index, int32_t *builtin_op,
                         int32_t *output_tensor);

/* The last error message (never NULL). */
const char *ts_interp_error(const ts_interp_t *it);

/* Name of a tensor type (ts_dtype_t), e.g. "int8"; "other" for a type the runtime lacks. */
const char *ts_dtype_name(int32_t dtype);

/* Name of a status code, e.g. "TS_ERR_BAD_MODEL". */
const char *ts_status_name(ts_status_t s);

#ifdef __cplusplus
}
#endif

#endif /* TS_RUNTIME_H */
