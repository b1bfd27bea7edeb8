/*
 * Private to the runtime: what the loader (ts_interp.c), the schema walker (ts_model.c),
 * the prepare helpers (ts_prep.c) and the operators (ops/<op>.c) share.
 *
 * An operator is one file ops/<op>.c with two functions and one line in ts_ops.def:
 *   ts_status_t ts_<op>_prepare(ts_loader_t *L, ts_oprec_t *o)
 *       at init: parse the options, check shapes and quantization, fill the parameter
 *       record PARAMS(o, type), optionally ask for arena scratch (ts_request_scratch) or
 *       allow the output to overwrite input 0 in place (o->flags |= TS_OPF_IN_PLACE);
 *   ts_status_t ts_<op>_eval(const ts_eval_t *e)
 *       at invoke: call the kernel with e->params and the data pointers; no allocation.
 * ts_ops.def is the one list of operators: the op kinds, the record sizes, both dispatch
 * tables, and (read by the host's tests) the supported-op list all come from it.
 */
#ifndef TS_INTERNAL_H
#define TS_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ts_fb.h"
#include "ts_kernels.h"
#include "ts_plan.h"
#include "ts_quant.h"
#include "ts_runtime.h"

/* Field ids of the TFLite schema (tensorflow/lite/schema/schema.fbs). */
enum { MODEL_VERSION = 0, MODEL_OPCODES = 1, MODEL_SUBGRAPHS = 2, MODEL_BUFFERS = 4 };
enum { OPC_DEPRECATED = 0, OPC_CUSTOM = 1, OPC_BUILTIN = 3 };
enum { SG_TENSORS = 0, SG_INPUTS = 1, SG_OUTPUTS = 2, SG_OPERATORS = 3 };
enum { TEN_SHAPE = 0, TEN_TYPE = 1, TEN_BUFFER = 2, TEN_NAME = 3, TEN_QUANT = 4, TEN_SPARSITY = 6 };
enum { Q_SCALE = 2, Q_ZERO_POINT = 3, Q_DIM = 6 };
enum { OPR_OPCODE = 0, OPR_INPUTS = 1, OPR_OUTPUTS = 2, OPR_OPTIONS = 4 };
enum { BUF_DATA = 0, BUF_OFFSET = 1 };

#define TS_MAX_TENSOR_BYTES 0x7fffffffu
/* Init-time code (the loader, the prepares and their helpers; never code that invoke runs):
 * GCC optimizes cold functions for size also in the firmware's -O2 build (1.4 KB less flash
 * for the default model) and lays out the paths that call them as unlikely. */
#define TS_COLD __attribute__((cold))

/* QUANTIZE: int8 -> int8 (requantize) or float32 -> int8. */
typedef struct {
  union {
    ts_requant_params_t rq; /* from int8 */
    ts_affine_params_t aq;  /* from float32 */
  } u;
  int32_t from_float;
} ts_quantize_params_t;

/* RESHAPE (and other byte copies): the bytes to move. */
typedef struct {
  uint32_t bytes;
} ts_copy_params_t;

/* The operator kinds, in ts_ops.def order: TS_K_CONV_2D, ... */
enum {
#define TS_OP(name, code, fn, params, flags) TS_K_##name,
#include "ts_ops.def"
#undef TS_OP
  TS_NUM_KINDS
};

typedef struct {
  /* Offsets into the model bytes (0: none), to keep the record small. */
  uint32_t name_off;   /* NUL-terminated name */
  uint32_t data_off;   /* constant tensors: their data; 0 for activations */
  uint32_t scales_off; /* num_quant float32 LE */
  uint32_t zps_off;    /* num_quant int64 LE */
  uint32_t shape_pos;  /* int32 dims (read with DIM); 0: no shape */
  uint16_t num_quant;
  uint8_t dtype, ndims;
  int8_t qdim;
  ts_plan_buf_t plan; /* lifetime, size and arena offset (first < 0: not in the arena) */
} ts_trec_t;

/* An operator record: this header, then (at PARAM_OFF) the parameters of its kind only,
 * then (kinds with TS_OPT_SCRATCH) the offset of its scratch in the activation area (NO_DATA:
 * none) in the record's last word; records follow each other, ts_ops[kind].rec_size bytes
 * apart. */
typedef struct {
  uint32_t in_pos, out_pos; /* int32 vectors inside the model */
  uint8_t kind;             /* TS_K_* */
  uint8_t n_in;             /* inputs, saturated at 255 (no kernel reads past 10) */
  uint8_t flags;            /* TS_OPF_* */
  uint8_t reserved;
} ts_oprec_t;

#define TS_OPF_IN_PLACE 1u     /* the output may reuse input 0's bytes (set by prepare) */
#define TS_OPF_IN_PLACE_ANY 2u /* ... or, if input 0's may not, input 1's */
#define TS_OPF_IN_PLACE_COPY 4u /* ... through its scratch (a copy, slower): only when that
                                 * makes the arena smaller (ts_offer_in_place_copy) */
#define TS_OPF_ALIAS 8u /* the output is input 0's bytes unchanged (RESHAPE, SQUEEZE): it may
                         * share them even with a model input or one read again later */

#define PTR_ALIGN _Alignof(void *)
#define PARAM_OFF ((sizeof(ts_oprec_t) + PTR_ALIGN - 1) & ~(PTR_ALIGN - 1))
#define PARAMS(o, type) ((type *)(void *)((uint8_t *)(o) + PARAM_OFF))
#define TS_REC_SIZE(params, flags)                                                      \
  ((uint16_t)((PARAM_OFF + sizeof(params) + (((flags) & TS_OPT_SCRATCH) ? 4u : 0u) +   \
               PTR_ALIGN - 1) &                                                         \
              ~(PTR_ALIGN - 1)))
/* The scratch-offset slot of a record of a kind with TS_OPT_SCRATCH. */
#define SCRATCH_SLOT(o, size) ((uint32_t *)(void *)((uint8_t *)(o) + (size) - 4u))

#define NO_DATA 0xffffffffu

struct ts_state; /* the runtime state inside the arena (ts_interp.c) */

/* The loader: what prepare sees. */
typedef struct {
  ts_interp_t *it;
  ts_fb_t fb;
  ts_fb_vec_t opcodes, buffers, tensors, inputs, outputs, operators;
  struct ts_state *st;
  ts_trec_t *t;     /* init only: full tensor records (then one scratch record per operator
                     * of a kind with TS_OPT_SCRATCH) */
  uint32_t *opoff;  /* init only: offset of each operator record */
  int32_t op;       /* the operator being loaded (ofail's "operator N: ") */
  int32_t *chan;    /* next free per-channel slot */
  int32_t *chan_end;
  int chan_given;   /* the slots are the caller's tables: check them, never write */
} ts_loader_t;

/* What an operator's eval gets. */
typedef struct {
  const void *params;     /* PARAMS(o, its type) */
  const void *in0, *in1;  /* data of inputs 0 and 1 (NULL when absent) */
  const void *in2;        /* data of input 2 (a bias; NULL when absent) */
  void *out;              /* data of output 0 */
  void *scratch;          /* its planned scratch (NULL when it asked for none) */
  ts_interp_t *it;        /* for ts_eval_input and ts_eval_fail */
  const struct ts_state *st;
  const ts_oprec_t *o;
  int32_t index;          /* operator index */
} ts_eval_t;

/* Data of input k of the operator being run (operators with more than 3 inputs). */
const void *ts_eval_input(const ts_eval_t *e, int32_t k);

/* ts_ops.def's last column: what an operator may ask of the loader. */
#define TS_OPT_PER_CHANNEL 1u /* 2 int32 slots per scale of input 1 (its filter) */
#define TS_OPT_SCRATCH 2u     /* arena scratch (ts_request_scratch): a slot for its offset */

typedef struct {
  uint8_t code;        /* TFLite builtin code (those the runtime has are < 256) */
  uint8_t flags;       /* TS_OPT_* */
  uint16_t rec_size;   /* bytes of its record (header, parameters, scratch slot) */
  ts_status_t (*prepare)(ts_loader_t *L, ts_oprec_t *o);
  ts_status_t (*eval)(const ts_eval_t *e);
} ts_op_t;

extern const ts_op_t ts_ops[TS_NUM_KINDS];

/* The kind of a builtin code; -1 if the runtime lacks it. */
int ts_op_kind(int32_t code);

#define TS_OP(name, code, fn, params, flags)                              \
  TS_COLD ts_status_t ts_##fn##_prepare(ts_loader_t *L, ts_oprec_t *o); \
  ts_status_t ts_##fn##_eval(const ts_eval_t *e);
#include "ts_ops.def"
#undef TS_OP

/* ADD and SUB share their prepare (ops/add.c). */
TS_COLD ts_status_t ts_add_like_prepare(ts_loader_t *L, ts_oprec_t *o, int sub);
/* CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV share their prepare (ops/conv.c). */
enum { TS_CONV_2D = 0, TS_CONV_DW = 1, TS_CONV_TRANSPOSE = 2 };
TS_COLD ts_status_t ts_conv_like_prepare(ts_loader_t *L, ts_oprec_t *o, int mode);
/* LOGISTIC and TANH share their input preparation (ops/logistic.c). */
TS_COLD ts_status_t ts_sigmoid_like_prepare(ts_loader_t *L, ts_oprec_t *o);
/* Both RESIZE ops share their prepare (ops/resize_nearest_neighbor.c). */
TS_COLD ts_status_t ts_resize_prepare(ts_loader_t *L, ts_oprec_t *o);

/* Kernel set: optimized (kernels/cm4) or plain reference (kernels/ref); same bytes. */
#ifdef TS_USE_OPT_KERNELS
#define KERNEL_CONV ts_opt_conv2d_s8
#define KERNEL_DW ts_opt_depthwise_conv2d_s8
#define KERNEL_FC ts_opt_fully_connected_s8
#define KERNEL_MAX_POOL ts_opt_max_pool_s8
#define KERNEL_AVG_POOL ts_opt_avg_pool_s8
#define KERNEL_MEAN ts_opt_mean_s8
#define KERNEL_ADD ts_opt_add_s8
#define KERNEL_SOFTMAX ts_opt_softmax_s8
#else
#define KERNEL_CONV ts_ref_conv2d_s8
#define KERNEL_DW ts_ref_depthwise_conv2d_s8
#define KERNEL_FC ts_ref_fully_connected_s8
#define KERNEL_MAX_POOL ts_ref_max_pool_s8
#define KERNEL_AVG_POOL ts_ref_avg_pool_s8
#define KERNEL_MEAN ts_ref_mean_s8
#define KERNEL_ADD ts_ref_add_s8
#define KERNEL_SOFTMAX ts_ref_softmax_s8
#endif

/* ---- messages (ts_fmt.c): a tiny formatter, %s %d %u only. With TS_STRIP_MESSAGES the
 * reporters below are macros that keep only where (operator or tensor index) and the status
 * (ts_fail_at): the formats and their arguments are never referenced, so no text is linked. */
size_t ts_vfmt(char *buf, size_t n, size_t at, const char *f, va_list ap);
size_t ts_fmt(char *buf, size_t n, size_t at, const char *f, ...);
ts_status_t ts_fail(ts_interp_t *it, ts_status_t s, const char *f, ...);
/* "operator <L->op>: " then f */
ts_status_t ts_ofail(ts_loader_t *L, ts_status_t s, const char *f, ...);
/* "tensor <idx> " then f */
ts_status_t ts_tfail(ts_loader_t *L, ts_status_t s, uint32_t idx, const char *f, ...);
/* "model truncated/corrupt at offset N" */
ts_status_t ts_corrupt(ts_loader_t *L);
/* At invoke: "operator <e->index>: " then msg */
ts_status_t ts_eval_fail(const ts_eval_t *e, ts_status_t s, const char *msg);
#ifdef TS_STRIP_MESSAGES
/* it->error = "operator N " (kind 'o'), "tensor N " ('t') or "" (0), then TS_STRIPPED_MARK */
ts_status_t ts_fail_at(ts_interp_t *it, ts_status_t s, int kind, int32_t n);
/* (the common calls in as few instructions as possible: the status and the loader) */
ts_status_t ts_fail_it(ts_interp_t *it, ts_status_t s);
ts_status_t ts_fail_lop(ts_loader_t *L, ts_status_t s);
ts_status_t ts_fail_ltensor(ts_loader_t *L, ts_status_t s, uint32_t idx);
static inline void ts_no_message(const char *f, ...) { (void)f; }
/* the format and its arguments type-checked, never evaluated (an argument that calls a
 * function, such as ts_dtype_name, would otherwise still be called and linked) */
#define TS_NO_MESSAGE(...) (void)sizeof(ts_no_message(__VA_ARGS__), 0)
#define ts_fail(it, s, ...) (TS_NO_MESSAGE(__VA_ARGS__), ts_fail_it((it), (s)))
#define ts_ofail(L, s, ...) (TS_NO_MESSAGE(__VA_ARGS__), ts_fail_lop((L), (s)))
#define ts_tfail(L, s, idx, ...) (TS_NO_MESSAGE(__VA_ARGS__), ts_fail_ltensor((L), (s), (idx)))
#define ts_eval_fail(e, s, msg) (TS_NO_MESSAGE(msg), ts_fail_at((e)->it, (s), 'o', (e)->index))
#define ts_fail_op(L, s, ...) (TS_NO_MESSAGE(__VA_ARGS__), ts_fail_lop((L), (s)))
/* it->error = "operator N: " then text, even stripped (its text is linked): for the
 * caller's per-channel tables, which the native runner cannot check for the device. */
ts_status_t ts_fail_kept(ts_loader_t *L, ts_status_t s, const char *text);
#else
/* A message about operator L->op in its own words (no "operator N: " prefix); stripped, it
 * still names the operator. */
#define ts_fail_op(L, s, ...) ts_fail((L)->it, (s), __VA_ARGS__)
#endif

#define FB(call)                          \
  do {                                    \
    if ((call) != 0) return ts_corrupt(L); \
  } while (0)

#define CHECK(call)             \
  do {                          \
    ts_status_t s_ = (call);    \
    if (s_ != TS_OK) return s_; \
  } while (0)

/* ---- the model's schema (ts_model.c) */
uint32_t ts_dtype_size(int32_t t);
TS_COLD ts_status_t ts_parse_tensor(ts_loader_t *L, uint32_t idx, ts_trec_t *r);
/* The builtin code and kind of operator L->op (and its table): supported operators only. */
TS_COLD ts_status_t ts_op_code(ts_loader_t *L, ts_fb_table_t *op, int32_t *code, int *kind);
/* Operator L->op's builtin options: field k into v[k] as spec[k] says, 'b' int8, 'i' int32
 * (both default 0), 'I' int32 (default 1), 'f' float32 bits (default 0); without an
 * options table every field takes its default. *present: whether the table exists. */
TS_COLD ts_status_t ts_options(ts_loader_t *L, const char *spec, int32_t *v, int *present);

/* Dimension k < ndims of a tensor record, from the model. */
#define DIM(r, k) ((int32_t)ts_le32(L->fb.buf + (r)->shape_pos + 4 * (uint32_t)(k)))
#define R_BYTES(r) ((r)->plan.size)
#define CONST_DATA(r) ((r)->data_off ? L->fb.buf + (r)->data_off : NULL)

static inline float ts_rec_scale_m(const uint8_t *m, const ts_trec_t *r, uint32_t i) {
  const uint32_t u = ts_le32(m + r->scales_off + 4 * i);
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static inline int32_t ts_rec_zp_m(const uint8_t *m, const ts_trec_t *r, uint32_t i) {
  return (int32_t)ts_le32(m + r->zps_off + 8 * i);
}
#define rec_scale(r, i) ts_rec_scale_m(L->fb.buf, (r), (i))
#define rec_zp(r, i) ts_rec_zp_m(L->fb.buf, (r), (i))

/* ---- prepare helpers (ts_prep.c) */
/* Tensor index of input k of an operator, -1 when absent (out of line: every prepare reads
 * a few; ts_prep.c), and of output k. */
TS_COLD int32_t ts_op_in(const ts_loader_t *L, const ts_oprec_t *o, int32_t k);
#define op_in ts_op_in
static inline int32_t op_out(const ts_loader_t *L, const ts_oprec_t *o, int32_t k) {
  return (int32_t)ts_le32(L->fb.buf + o->out_pos + 4 * (uint32_t)k);
}
/* Elements of a tensor (validated types only). */
TS_COLD int32_t ts_elems(const ts_trec_t *r);
/* An int8 activation tensor with per-tensor quantization. */
TS_COLD ts_status_t ts_need_s8(ts_loader_t *L, int32_t idx, const char *what);
/* Input 0 and output 0 both int8 per-tensor (most operators); r[0], r[1]: their records. */
TS_COLD ts_status_t ts_need_s8_io(ts_loader_t *L, const ts_oprec_t *o, const ts_trec_t *r[2]);
TS_COLD ts_status_t ts_need_rank(ts_loader_t *L, int32_t idx, int rank, const char *what);
/* Input ii and output oi int8 per-tensor of rank 4 (NHWC), their dims into id and od. */
TS_COLD ts_status_t ts_need_4d_io(ts_loader_t *L, int32_t ii, int32_t oi, int32_t id[4],
                                  int32_t od[4]);
#ifdef TS_STRIP_MESSAGES /* `what` is for messages only: not even passed */
#define ts_need_s8(L, idx, what) ts_need_s8((L), (idx), NULL)
#define ts_need_rank(L, idx, rank, what) ts_need_rank((L), (idx), (rank), NULL)
#endif
TS_COLD ts_status_t ts_act_range(ts_loader_t *L, int32_t act, const ts_trec_t *out, int32_t *lo,
                                 int32_t *hi);
TS_COLD ts_status_t ts_quant_mult(ts_loader_t *L, double m, int32_t *mult, int32_t *shift);
/* QUANTIZE's (and RELU's) requantization: multiplier m for both signs, clamped to int8. */
TS_COLD ts_status_t ts_requant_mult(ts_loader_t *L, double m, ts_requant_params_t *p);
/* TFLite's output size and padding (SAME = 0, VALID = 1). */
TS_COLD ts_status_t ts_spatial(ts_loader_t *L, int32_t padding, int32_t in, int32_t k,
                               int32_t stride, int32_t dil, int32_t out, int32_t *pad);
TS_COLD ts_status_t ts_bias_of(ts_loader_t *L, int32_t idx, int32_t n, const int32_t **b);
TS_COLD ts_status_t ts_need_const_filter(ts_loader_t *L, int32_t idx);
/* Per-channel multipliers (double)in_scale * filter_scale[c] / out_scale, as TFLM, in the
 * slots reserved for the operator (TS_OPT_PER_CHANNEL). */
TS_COLD ts_status_t ts_channel_mults(ts_loader_t *L, const ts_trec_t *in, const ts_trec_t *f,
                                     const ts_trec_t *out, int32_t n, const int32_t **mult,
                                     const int32_t **shift);
/* Dims padded to 4 with leading 1s; -1 for more than 4 dims. */
TS_COLD int ts_pad4(const ts_loader_t *L, const ts_trec_t *r, int32_t d[4]);
/* Input `input` of operator o, a constant int32 (or int64 within int32) tensor: its values, at
 * most max. */
TS_COLD ts_status_t ts_const_ints(ts_loader_t *L, const ts_oprec_t *o, int32_t input,
                                  int32_t *vals, int32_t max, int32_t *n);
/* 4-D broadcasting of a and b to out: out's dims, and each input's strides (0 along a
 * broadcast dimension). */
TS_COLD ts_status_t ts_broadcast4(ts_loader_t *L, const ts_trec_t *a, const ts_trec_t *b,
                                  const ts_trec_t *out, int32_t out_dims[4], int32_t sa[4],
                                  int32_t sb[4]);
/* The prepare head of the binary element-wise operators (ADD, SUB, MUL, MAXIMUM, MINIMUM):
 * both inputs and the output int8 per-tensor, 4-D broadcasting, the zero points and, with
 * `act_opts` (the options spec, activation first; NULL: none), the fused activation's clamp,
 * into `params` (whose type starts with TS_BINARY_HEAD); the output may overwrite an input.
 * r[0..2]: the records of input 0, input 1 and the output. */
TS_COLD ts_status_t ts_binary_prepare(ts_loader_t *L, ts_oprec_t *o, void *params,
                                      const char *act_opts, const ts_trec_t *r[3]);
/* The prepare head of the element-wise unary int8 operators: input 0 and output 0 int8
 * per-tensor with as many elements, into `params` (whose type starts with TS_UNARY_HEAD);
 * the output may overwrite the input. r[0], r[1]: the input's and the output's records. */
TS_COLD ts_status_t ts_unary_prepare(ts_loader_t *L, ts_oprec_t *o, void *params,
                                     const ts_trec_t *r[2]);
/* TFLM's LOGISTIC/TANH input multiplier: frexp(m) = q * 2^shift, mult = round(q * 2^31). */
TS_COLD ts_status_t ts_frexp_multiplier(ts_loader_t *L, double m, int32_t *mult, int32_t *shift);
/* CalculateInputRadius(int_bits, left_shift, 31). */
TS_COLD int32_t ts_input_radius(int32_t int_bits, int32_t left_shift);
/* Ask for `bytes` of arena scratch for this operator's eval (e->scratch), alive only while
 * it runs: the planner places it with the activations (like CMSIS-NN's get_buffer_size). */
TS_COLD ts_status_t ts_request_scratch(ts_loader_t *L, ts_oprec_t *o, uint32_t bytes);
/* Offer to run in place over input 0 if given `bytes` of scratch (eval sees e->out ==
 * e->in0 and e->scratch): the loader grants it where the output may overwrite input 0 and
 * the arena gets smaller with it; otherwise the operator runs out of place without it. */
TS_COLD ts_status_t ts_offer_in_place_copy(ts_loader_t *L, ts_oprec_t *o, uint32_t bytes);

#endif /* TS_INTERNAL_H */
