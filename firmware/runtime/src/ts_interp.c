/*
 * tinyscope interpreter: model loading and validation, per-op Prepare (validate shapes and
 * types, precompute requantization once), arena planning, and Invoke (no allocation).
 *
 * Arena layout (one caller-provided buffer, no heap):
 *   [state][loc: 1 word/tensor][vrec_t/non-constant tensor][op records][mult/shift][activations]
 *   '----------------------------- persistent -----------------------------------''- planned -'
 * Activation buffers are placed by ts_plan() (greedy by size, lifetime-aware). During init
 * the full tensor records (trec_t) and the op record offsets live where the activations
 * will be, so the activation area is at least that large; afterwards a constant tensor's
 * fields are re-read from the model on demand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "ts_fb.h"
#include "ts_kernels.h"
#include "ts_plan.h"
#include "ts_quant.h"
#include "ts_runtime.h"

enum {
  OP_ADD = 0,
  OP_AVERAGE_POOL_2D = 1,
  OP_CONCATENATION = 2,
  OP_CONV_2D = 3,
  OP_DEPTHWISE_CONV_2D = 4,
  OP_FULLY_CONNECTED = 9,
  OP_MAX_POOL_2D = 17,
  OP_RESHAPE = 22,
  OP_SOFTMAX = 25,
  OP_PAD = 34,
  OP_MEAN = 40,
  OP_QUANTIZE = 114
};

/* Kernel set: optimized (kernels/cm4) or plain reference (kernels/ref); same bytes. */
#ifdef TS_USE_OPT_KERNELS
#define KERNEL_CONV ts_opt_conv2d_s8
#define KERNEL_DW ts_opt_depthwise_conv2d_s8
#define KERNEL_FC ts_opt_fully_connected_s8
#define KERNEL_MAX_POOL ts_opt_max_pool_s8
#define KERNEL_MEAN ts_opt_mean_s8
#else
#define KERNEL_CONV ts_ref_conv2d_s8
#define KERNEL_DW ts_ref_depthwise_conv2d_s8
#define KERNEL_FC ts_ref_fully_connected_s8
#define KERNEL_MAX_POOL ts_ref_max_pool_s8
#define KERNEL_MEAN ts_ref_mean_s8
#endif

#define TS_SCHEMA_VERSION 3
#define TS_MAX_TENSORS 65535
#define TS_MAX_OPS 65535
#define TS_MAX_TENSOR_BYTES 0x7fffffffu

/* Field ids of the TFLite schema (tensorflow/lite/schema/schema.fbs). */
enum { MODEL_VERSION = 0, MODEL_OPCODES = 1, MODEL_SUBGRAPHS = 2, MODEL_BUFFERS = 4 };
enum { OPC_DEPRECATED = 0, OPC_CUSTOM = 1, OPC_BUILTIN = 3 };
enum { SG_TENSORS = 0, SG_INPUTS = 1, SG_OUTPUTS = 2, SG_OPERATORS = 3 };
enum { TEN_SHAPE = 0, TEN_TYPE = 1, TEN_BUFFER = 2, TEN_NAME = 3, TEN_QUANT = 4, TEN_SPARSITY = 6 };
enum { Q_SCALE = 2, Q_ZERO_POINT = 3, Q_DIM = 6 };
enum { OPR_OPCODE = 0, OPR_INPUTS = 1, OPR_OUTPUTS = 2, OPR_OPTIONS = 4 };
enum { BUF_DATA = 0, BUF_OFFSET = 1 };

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
} trec_t;

_Static_assert(offsetof(ts_dw_params_t, shift) == offsetof(ts_conv_params_t, shift) &&
                   offsetof(ts_dw_params_t, depth_multiplier) >= sizeof(ts_conv_params_t),
               "ts_dw_params_t must start with ts_conv_params_t's layout");

_Static_assert(sizeof(ts_add_params_t) < 256 && sizeof(ts_conv_params_t) < 256 &&
                   sizeof(ts_dw_params_t) < 256 && sizeof(ts_pad_params_t) < 256,
               "rec_size() keeps parameter sizes in a byte");

/* An operator record: this header, then (at PARAM_OFF) the parameters of its type only;
 * records follow each other, `size` bytes apart. */
typedef struct {
  uint32_t in_pos, out_pos; /* int32 vectors inside the model */
  uint8_t code;             /* supported codes fit */
  uint8_t n_in;             /* inputs, saturated at 255 (no kernel reads past 10) */
  uint16_t size;            /* bytes of the whole record */
} oprec_t;

#define PTR_ALIGN _Alignof(void *)
#define PARAM_OFF ((sizeof(oprec_t) + PTR_ALIGN - 1) & ~(PTR_ALIGN - 1))
#define PARAMS(o, type) ((type *)(void *)((uint8_t *)(o) + PARAM_OFF))

/* Per tensor after init, one word: the model offset of a constant's data, or LOC_ACT | the
 * index of the tensor's vrec_t (every tensor without data: activations). A constant's other
 * fields are re-read from the model on demand. */
#define LOC_ACT 0x80000000u
#define NO_DATA 0xffffffffu

/* What a view of a non-constant tensor needs (the callback's output view costs no parse). */
typedef struct {
  uint32_t offset;    /* in the activation area; NO_DATA: never written */
  uint32_t shape_pos; /* int32 dims inside the model (ndims: the vector's length); 0: none */
  uint32_t name_off, scales_off, zps_off; /* as in trec_t */
  uint16_t num_quant;
  uint8_t dtype;
  int8_t qdim;
} vrec_t;

typedef struct {
  uint32_t *loc;            /* [num_tensors] */
  vrec_t *vrec;             /* [tensors without data] */
  uint8_t *ops;             /* operator records */
  uint32_t in_pos, out_pos; /* subgraph input / output index vectors */
  ts_fb_vec_t tensors, buffers;
  uint8_t *act;             /* activation area */
} state_t;

typedef struct {
  ts_interp_t *it;
  ts_fb_t fb;
  ts_fb_vec_t opcodes, buffers, tensors, inputs, outputs, operators;
  state_t *st;
  trec_t *t;       /* init only: full tensor records, in the arena's activation area */
  uint32_t *opoff; /* init only: offset of each operator record in st->ops */
  int32_t op;      /* the operator being loaded (ofail's "operator N: ") */
  int32_t *chan; /* next free per-channel slot */
  int32_t *chan_end;
} loader_t;

/* ---------------------------------------------------------------- messages */

static void append(char *buf, size_t n, size_t *at, const char *s) {
  while (*s && *at + 1 < n) buf[(*at)++] = *s++;
  buf[*at] = 0;
}

/* A tiny formatter (%s %d %u only) so the runtime needs no printf; appends at buf[at] and
 * returns the end. */
static size_t vfmt(char *buf, size_t n, size_t at, const char *f, va_list ap) {
  buf[at] = 0;
  for (; *f; f++) {
    char num[12], *d = num + sizeof num - 1; /* a number or one character, up to num[11] */
    const char *p = d;
    *d = 0;
    if (*f == '%' && f[1] == 's') {
      f++;
      p = va_arg(ap, const char *);
      if (!p) p = "(null)";
    } else if (*f == '%' && (f[1] == 'd' || f[1] == 'u')) {
      const int sgn = *++f == 'd';
      uint32_t v = sgn ? (uint32_t)va_arg(ap, int32_t) : va_arg(ap, uint32_t);
      const int neg = sgn && (int32_t)v < 0;
      if (neg) v = 0u - v;
      do {
        *--d = (char)('0' + v % 10);
        v /= 10;
      } while (v);
      if (neg) *--d = '-';
      p = d;
    } else {
      *--d = *f == '%' && f[1] ? *++f : *f; /* "%%" and an unknown "%x": the character */
      p = d;
    }
    append(buf, n, &at, p);
  }
  return at;
}

static size_t fmt(char *buf, size_t n, size_t at, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  at = vfmt(buf, n, at, f, ap);
  va_end(ap);
  return at;
}

/* it->error = `pre` (a format taking `arg`; none if NULL), then f with ap. */
static ts_status_t report(ts_interp_t *it, ts_status_t s, const char *pre, int32_t arg,
                          const char *f, va_list ap) {
  if (!it) return s; /* a re-read of a validated model (view) */
  vfmt(it->error, sizeof it->error, pre ? fmt(it->error, sizeof it->error, 0, pre, arg) : 0, f,
       ap);
  return s;
}

static ts_status_t fail(ts_interp_t *it, ts_status_t s, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  report(it, s, NULL, 0, f, ap);
  va_end(ap);
  return s;
}

/* A message about the operator being loaded: "operator <L->op>: " then f. */
static ts_status_t ofail(loader_t *L, ts_status_t s, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  report(L->it, s, "operator %d: ", L->op, f, ap);
  va_end(ap);
  return s;
}

/* A message about tensor idx: "tensor <idx> " then f. */
static ts_status_t tfail(loader_t *L, ts_status_t s, uint32_t idx, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  report(L->it, s, "tensor %u ", (int32_t)idx, f, ap);
  va_end(ap);
  return s;
}

static ts_status_t corrupt(loader_t *L) {
  if (L->fb.bad_offset >= L->fb.size)
    return fail(L->it, TS_ERR_BAD_MODEL, "model truncated at offset %u (model is %u bytes)",
                L->fb.bad_offset, L->fb.size);
  return fail(L->it, TS_ERR_BAD_MODEL, "model corrupt at offset %u", L->fb.bad_offset);
}

#define FB(call)                     \
  do {                               \
    if ((call) != 0) return corrupt(L); \
  } while (0)

#define CHECK(call)                 \
  do {                              \
    ts_status_t s_ = (call);        \
    if (s_ != TS_OK) return s_;     \
  } while (0)

/* ---------------------------------------------------------------- tensors */

const char *ts_dtype_name(int32_t t) {
  switch (t) {
    case TS_FLOAT32: return "float32";
    case TS_INT32: return "int32";
    case TS_UINT8: return "uint8";
    case TS_INT64: return "int64";
    case TS_INT16: return "int16";
    case TS_INT8: return "int8";
    default: return "other";
  }
}

static uint32_t dtype_size(int32_t t) {
  switch (t) {
    case TS_FLOAT32: case TS_INT32: return 4;
    case TS_INT64: return 8;
    case TS_INT16: return 2;
    case TS_UINT8: case TS_INT8: return 1;
    default: return 0;
  }
}

/* Dimension k < ndims of a tensor whose shape was read, from the model. */
#define DIM(r, k) ((int32_t)ts_le32(L->fb.buf + (r)->shape_pos + 4 * (uint32_t)(k)))

static ts_status_t parse_tensor(loader_t *L, uint32_t idx, trec_t *r) {
  ts_fb_t *fb = &L->fb;
  ts_fb_table_t t, q, b;
  int present;
  memset(r, 0, sizeof *r);
  r->plan.first = -1;
  r->plan.share = -1;
  FB(ts_fb_vec_table(fb, &L->tensors, idx, &t));
  ts_fb_vec_t shape;
  FB(ts_fb_vector(fb, &t, TEN_SHAPE, 4, &shape));
  if (shape.len > TS_MAX_DIMS)
    return tfail(L, TS_ERR_UNSUPPORTED, idx, "has %u dimensions (at most %d)", shape.len,
                 TS_MAX_DIMS);
  int32_t type;
  FB(ts_fb_i8(fb, &t, TEN_TYPE, 0, &type));
  const uint32_t esize = dtype_size(type);
  if (esize == 0)
    return tfail(L, TS_ERR_UNSUPPORTED, idx, "has unsupported type %d", type);
  uint32_t bytes = esize;
  r->ndims = (uint8_t)shape.len;
  r->shape_pos = shape.pos;
  r->dtype = (uint8_t)type;
  for (uint32_t i = 0; i < shape.len; i++) {
    const int32_t d = (int32_t)ts_le32(fb->buf + shape.pos + 4 * i);
    if (d < 1)
      return tfail(L, TS_ERR_BAD_MODEL, idx, "has dimension %u of size %d", i, d);
    if ((uint32_t)d > TS_MAX_TENSOR_BYTES / bytes)
      return tfail(L, TS_ERR_BAD_MODEL, idx, "shape overflows (more than %u bytes)",
                   TS_MAX_TENSOR_BYTES);
    bytes *= (uint32_t)d;
  }
  r->plan.size = (uint32_t)bytes;
  const char *name;
  FB(ts_fb_string(fb, &t, TEN_NAME, &name));
  r->name_off = *name ? (uint32_t)((const uint8_t *)name - fb->buf) : 0;
  ts_fb_table_t sp;
  FB(ts_fb_subtable(fb, &t, TEN_SPARSITY, &sp, &present));
  if (present) return tfail(L, TS_ERR_UNSUPPORTED, idx, "is sparse");
  /* constant data */
  uint32_t buf_idx;
  FB(ts_fb_u32(fb, &t, TEN_BUFFER, 0, &buf_idx));
  if (buf_idx >= L->buffers.len && !(buf_idx == 0 && L->buffers.len == 0))
    return tfail(L, TS_ERR_BAD_MODEL, idx, "names buffer %u of %u", buf_idx, L->buffers.len);
  if (buf_idx != 0) {
    FB(ts_fb_vec_table(fb, &L->buffers, buf_idx, &b));
    uint64_t off;
    FB(ts_fb_scalar(fb, &b, BUF_OFFSET, 8, &off, &present));
    if (present && off > 1)
      return tfail(L, TS_ERR_UNSUPPORTED, idx,
                   "keeps its data outside the flatbuffer (offset buffers)");
    ts_fb_vec_t data;
    FB(ts_fb_vector(fb, &b, BUF_DATA, 1, &data));
    if (data.len) {
      if (data.len != r->plan.size)
        return tfail(L, TS_ERR_BAD_MODEL, idx, "has %u data bytes, its shape needs %u", data.len,
                     r->plan.size);
      r->data_off = data.pos;
      if (esize > 1 && ((uintptr_t)(fb->buf + data.pos) % esize) != 0)
        return tfail(L, TS_ERR_BAD_MODEL, idx,
                     "data is not %u-byte aligned (align the model array to 16)", esize);
    }
  }
  /* quantization */
  FB(ts_fb_subtable(fb, &t, TEN_QUANT, &q, &present));
  if (present) {
    ts_fb_vec_t sc, zp;
    FB(ts_fb_vector(fb, &q, Q_SCALE, 4, &sc));
    FB(ts_fb_vector(fb, &q, Q_ZERO_POINT, 8, &zp));
    int32_t qdim;
    FB(ts_fb_i32(fb, &q, Q_DIM, 0, &qdim));
    if (sc.len) {
      if (zp.len != sc.len)
        return tfail(L, TS_ERR_BAD_MODEL, idx, "has %u scales but %u zero points", sc.len, zp.len);
      if (sc.len > 1 && (qdim < 0 || qdim >= r->ndims || (uint32_t)DIM(r, qdim) != sc.len))
        return tfail(L, TS_ERR_BAD_MODEL, idx, "has %u scales for dimension %d", sc.len, qdim);
      for (uint32_t i = 0; i < sc.len; i++) {
        const uint8_t *z = fb->buf + zp.pos + 8 * i;
        const int32_t zv = (int32_t)ts_le32(z); /* an int64 within int32: its high word is
                                                  * the low word's sign */
        if ((int32_t)ts_le32(z + 4) != (zv < 0 ? -1 : 0))
          return tfail(L, TS_ERR_BAD_MODEL, idx, "zero point out of range");
        /* The kernels' int32 arithmetic assumes zero points inside the element type (as
         * TFLM's Prepare checks); a larger one overflows it (found by fuzz_model). */
        if ((r->dtype == TS_INT8 && (zv < -128 || zv > 127)) ||
            (r->dtype == TS_INT16 && (zv < -32768 || zv > 32767)) ||
            (r->dtype == TS_UINT8 && (zv < 0 || zv > 255)))
          return tfail(L, TS_ERR_BAD_MODEL, idx, "zero point %d outside its type's range", zv);
      }
      r->num_quant = (uint16_t)sc.len;
      r->qdim = (int8_t)qdim;
      r->scales_off = sc.pos;
      r->zps_off = zp.pos;
    }
  }
  return TS_OK;
}

#define R_BYTES(r) ((r)->plan.size)

static float rec_scale_m(const uint8_t *m, const trec_t *r, uint32_t i) {
  const uint32_t u = ts_le32(m + r->scales_off + 4 * i);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static int32_t rec_zp_m(const uint8_t *m, const trec_t *r, uint32_t i) {
  return (int32_t)ts_le32(m + r->zps_off + 8 * i);
}
#define rec_scale(r, i) rec_scale_m(L->fb.buf, (r), (i))

#define rec_zp(r, i) rec_zp_m(L->fb.buf, (r), (i))
#define CONST_DATA(r) ((r)->data_off ? L->fb.buf + (r)->data_off : NULL)

/* ---------------------------------------------------------------- op codes */

/* Bytes of an operator's record: header and the parameters of its type; 0: not a supported
 * operator. */
static uint32_t rec_size(int32_t code) {
  static const uint8_t sizes[][2] = {
      {OP_CONV_2D, sizeof(ts_conv_params_t)},
      {OP_DEPTHWISE_CONV_2D, sizeof(ts_dw_params_t)},
      {OP_FULLY_CONNECTED, sizeof(ts_fc_params_t)},
      {OP_MAX_POOL_2D, sizeof(ts_pool_params_t)},
      {OP_AVERAGE_POOL_2D, sizeof(ts_pool_params_t)},
      {OP_ADD, sizeof(ts_add_params_t)},
      {OP_SOFTMAX, sizeof(ts_softmax_params_t)},
      {OP_MEAN, sizeof(ts_mean_params_t)},
      {OP_PAD, sizeof(ts_pad_params_t)},
      {OP_QUANTIZE, sizeof(ts_requant_params_t)},
      {OP_CONCATENATION, sizeof(ts_concat_params_t)},
      {OP_RESHAPE, sizeof(uint32_t)}}; /* RESHAPE: its bytes */
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
    if (sizes[k][0] == code)
      return (uint32_t)((PARAM_OFF + sizes[k][1] + PTR_ALIGN - 1) & ~(PTR_ALIGN - 1));
  return 0;
}

/* The builtin code of operator L->op (and its table): supported operators only. */
static ts_status_t op_code(loader_t *L, ts_fb_table_t *op, int32_t *code) {
  uint32_t oc;
  FB(ts_fb_vec_table(&L->fb, &L->operators, (uint32_t)L->op, op));
  FB(ts_fb_u32(&L->fb, op, OPR_OPCODE, 0, &oc));
  if (oc >= L->opcodes.len)
    return ofail(L, TS_ERR_BAD_MODEL, "names operator code %u of %u", oc, L->opcodes.len);
  ts_fb_table_t c;
  int32_t dep, bi;
  FB(ts_fb_vec_table(&L->fb, &L->opcodes, oc, &c));
  FB(ts_fb_i8(&L->fb, &c, OPC_DEPRECATED, 0, &dep));
  FB(ts_fb_i32(&L->fb, &c, OPC_BUILTIN, 0, &bi));
  /* Old models only fill the int8 deprecated code, new ones both (the deprecated one
   * saturating at 127): the real code is the larger. */
  *code = dep > bi ? dep : bi;
  if (*code < 0)
    return ofail(L, TS_ERR_BAD_MODEL, "has negative code %d", *code);
  if (rec_size(*code)) return TS_OK;
  if (*code == 32) {
    const char *name;
    FB(ts_fb_string(&L->fb, &c, OPC_CUSTOM, &name));
    return fail(L->it, TS_ERR_UNSUPPORTED, "unsupported custom op %s at operator %d", name,
                L->op);
  }
  /* by its builtin code: the host names it (ts_opnames.h, tinyscope's Python side) */
  return fail(L->it, TS_ERR_UNSUPPORTED, "unsupported op code %d at operator %d", *code, L->op);
}

/* Operator L->op's code (supported ones only) and the per-channel int32 slots (multiplier +
 * shift) it needs. */
static ts_status_t op_chan_slots(loader_t *L, uint32_t *slots, int32_t *code_out) {
  ts_fb_table_t op;
  int32_t code;
  *slots = 0;
  CHECK(op_code(L, &op, &code));
  *code_out = code;
  if (code != OP_CONV_2D && code != OP_DEPTHWISE_CONV_2D && code != OP_FULLY_CONNECTED)
    return TS_OK;
  ts_fb_vec_t ins;
  FB(ts_fb_vector(&L->fb, &op, OPR_INPUTS, 4, &ins));
  if (ins.len < 2) return ofail(L, TS_ERR_BAD_MODEL, "has no filter");
  const int32_t f = (int32_t)ts_le32(L->fb.buf + ins.pos + 4);
  if (f < 0 || (uint32_t)f >= L->tensors.len)
    return ofail(L, TS_ERR_BAD_MODEL, "names tensor %d", f);
  trec_t r;
  CHECK(parse_tensor(L, (uint32_t)f, &r));
  *slots = 2 * (r.num_quant ? r.num_quant : 1);
  return TS_OK;
}

/* ---------------------------------------------------------------- prepare helpers */

static int32_t op_in(const loader_t *L, const oprec_t *o, int32_t k) {
  return k < o->n_in ? (int32_t)ts_le32(L->fb.buf + o->in_pos + 4 * (uint32_t)k) : -1;
}
static int32_t op_out(const loader_t *L, const oprec_t *o, int32_t k) {
  return (int32_t)ts_le32(L->fb.buf + o->out_pos + 4 * (uint32_t)k);
}

static int32_t elems(const trec_t *r) {
  return (int32_t)(r->plan.size / dtype_size(r->dtype)); /* validated types only */
}

/* An int8 activation tensor with per-tensor quantization. */
static ts_status_t need_s8(loader_t *L, int32_t idx, const char *what) {
  if (idx < 0) return ofail(L, TS_ERR_BAD_MODEL, "lacks its %s", what);
  const trec_t *r = &L->t[idx];
  if (r->dtype != TS_INT8)
    return ofail(L, TS_ERR_UNSUPPORTED, "%s tensor %d is %s, not int8", what, idx,
                 ts_dtype_name(r->dtype));
  if (r->num_quant != 1)
    return ofail(L, TS_ERR_UNSUPPORTED, "%s tensor %d needs per-tensor quantization", what, idx);
  return TS_OK;
}

static ts_status_t need_rank(loader_t *L, int32_t idx, int rank, const char *what) {
  if (L->t[idx].ndims != rank)
    return ofail(L, TS_ERR_BAD_MODEL, "%s tensor %d must have %d dimensions", what, idx, rank);
  return TS_OK;
}

/* Operator L->op's builtin options: field k into v[k] as spec[k] says, 'b' int8, 'i' int32
 * (both default 0), 'I' int32 (default 1); without an options table every field takes its
 * default. Returns whether the table exists in *present. */
static ts_status_t options(loader_t *L, const char *spec, int32_t *v, int *present) {
  ts_fb_table_t op, opt;
  FB(ts_fb_vec_table(&L->fb, &L->operators, (uint32_t)L->op, &op));
  FB(ts_fb_subtable(&L->fb, &op, OPR_OPTIONS, &opt, present));
  for (int k = 0; spec[k]; k++) {
    const int32_t dflt = spec[k] == 'I';
    v[k] = dflt;
    if (*present)
      FB(spec[k] == 'b' ? ts_fb_i8(&L->fb, &opt, k, dflt, &v[k])
                        : ts_fb_i32(&L->fb, &opt, k, dflt, &v[k]));
  }
  return TS_OK;
}

static ts_status_t act_range(loader_t *L, int32_t act, const trec_t *out, int32_t *lo,
                             int32_t *hi) {
  if (ts_activation_range_s8(act, rec_scale(out, 0), rec_zp(out, 0), lo, hi))
    return ofail(L, TS_ERR_UNSUPPORTED, "unsupported fused activation %d", act);
  return TS_OK;
}

static ts_status_t quant_mult(loader_t *L, double m, int32_t *mult, int32_t *shift) {
  if (ts_quantize_multiplier(m, mult, shift) || *shift > 30)
    return ofail(L, TS_ERR_UNSUPPORTED, "requantization scale out of range");
  return TS_OK;
}

/* TFLite's output size and padding (ComputePaddingHeightWidth): SAME = 0, VALID = 1. In
 * int32 (k, in, out >= 1): an effective kernel size beyond int32 is refused, and once the
 * output size matches, (out - 1) * stride < in, so the total padding cannot overflow. */
static ts_status_t spatial(loader_t *L, int32_t padding, int32_t in, int32_t k, int32_t stride,
                           int32_t dil, int32_t out, int32_t *pad) {
  if (stride < 1 || dil < 1 || padding < 0 || padding > 1 || k - 1 > (INT32_MAX - 1) / dil)
    return ofail(L, TS_ERR_BAD_MODEL, "has invalid stride/dilation/padding");
  const int32_t eff = (k - 1) * dil + 1;
  const int32_t span = padding == 0 ? in : in - eff + 1; /* ceil(span / stride) outputs */
  const int32_t expect = span > 0 ? (span - 1) / stride + 1 : 0;
  if (expect != out)
    return ofail(L, TS_ERR_BAD_MODEL, "output size %d, expected %d", out, expect);
  const int32_t total = (out - 1) * stride - in + eff;
  *pad = total > 0 ? total / 2 : 0;
  return TS_OK;
}

static ts_status_t bias_of(loader_t *L, int32_t idx, int32_t n, const int32_t **b) {
  *b = NULL;
  if (idx < 0) return TS_OK;
  const trec_t *r = &L->t[idx];
  if (r->dtype != TS_INT32 || !r->data_off || elems(r) != n)
    return ofail(L, TS_ERR_UNSUPPORTED, "bias must be a constant int32[%d]", n);
  *b = (const int32_t *)(const void *)CONST_DATA(r);
  return TS_OK;
}

static ts_status_t need_const_filter(loader_t *L, int32_t idx) {
  if (idx < 0) return ofail(L, TS_ERR_BAD_MODEL, "lacks its filter");
  const trec_t *r = &L->t[idx];
  if (r->dtype != TS_INT8 || !r->data_off || r->num_quant < 1)
    return ofail(L, TS_ERR_UNSUPPORTED, "filter tensor %d must be constant quantized int8", idx);
  return TS_OK;
}

/* Per-channel multipliers: (double)in_scale * filter_scale[c] / out_scale, as TFLM. */
static ts_status_t channel_mults(loader_t *L, const trec_t *in, const trec_t *f,
                                 const trec_t *out, int32_t n, const int32_t **mult,
                                 const int32_t **shift) {
  if (L->chan + 2 * n > L->chan_end)
    return ofail(L, TS_ERR_BAD_MODEL, "inconsistent channel count");
  int32_t *m = L->chan, *s = L->chan + n;
  L->chan += 2 * n;
  const double is = (double)rec_scale(in, 0), os = (double)rec_scale(out, 0);
  for (int32_t c = 0; c < n; c++) {
    const double fs = (double)rec_scale(f, f->num_quant == 1 ? 0 : (uint32_t)c);
    CHECK(quant_mult(L, is * fs / os, &m[c], &s[c]));
  }
  *mult = m;
  *shift = s;
  return TS_OK;
}

/* ---------------------------------------------------------------- prepare per op */

/* Dims padded to 4 with leading 1s. */
static int pad4(const loader_t *L, const trec_t *r, int32_t d[4]) {
  if (r->ndims > 4) return -1;
  for (int k = 0; k < 4; k++) d[k] = 1;
  for (int k = 0; k < r->ndims; k++) d[4 - r->ndims + k] = DIM(r, k);
  return 0;
}

static ts_status_t prep_conv(loader_t *L, oprec_t *o) {
  const int32_t ii = op_in(L, o, 0), fi = op_in(L, o, 1), bi = op_in(L, o, 2),
                oi = op_out(L, o, 0);
  CHECK(need_const_filter(L, fi));
  CHECK(need_rank(L, ii, 4, "input"));
  CHECK(need_rank(L, fi, 4, "filter"));
  CHECK(need_rank(L, oi, 4, "output"));
  const trec_t *in = &L->t[ii], *f = &L->t[fi], *out = &L->t[oi];
  int32_t id[4], fd[4], od[4]; /* rank 4: the dims themselves */
  pad4(L, in, id);
  pad4(L, f, fd);
  pad4(L, out, od);
  /* Conv2DOptions: padding, stride_w, stride_h, activation, dilation_w, dilation_h;
   * DepthwiseConv2DOptions: the same with depth_multiplier (derived from the shapes
   * instead, as TFLM) before the activation. */
  const int dw_model = o->code == OP_DEPTHWISE_CONV_2D;
  int32_t v[7];
  int present;
  CHECK(options(L, dw_model ? "biiIbII" : "biibII", v, &present));
  if (!present) return ofail(L, TS_ERR_BAD_MODEL, "lacks its options");
  const int32_t padding = v[0], sw = v[1], sh = v[2], act = v[3 + dw_model],
                dw = v[4 + dw_model], dh = v[5 + dw_model];
  const int32_t oc = od[3];
  if (id[0] != od[0])
    return ofail(L, TS_ERR_BAD_MODEL, "batch mismatch");
  if (dw_model) {
    if (fd[0] != 1 || fd[3] != oc || oc % id[3] != 0)
      return ofail(L, TS_ERR_BAD_MODEL, "filter shape does not match");
  } else {
    if (fd[0] != oc)
      return ofail(L, TS_ERR_BAD_MODEL, "filter shape does not match");
    if (fd[3] != id[3])
      return ofail(L, TS_ERR_UNSUPPORTED, "grouped convolution");
  }
  if (f->num_quant != 1 && (int32_t)f->num_quant != oc)
    return ofail(L, TS_ERR_BAD_MODEL, "filter has %u scales for %d channels", f->num_quant, oc);
  const int32_t *bias;
  ts_conv_params_t *p = PARAMS(o, ts_conv_params_t); /* a ts_dw_params_t starts as one */
  CHECK(bias_of(L, bi, oc, &bias));
  CHECK(spatial(L, padding, id[1], fd[1], sh, dh, od[1], &p->pad_h));
  CHECK(spatial(L, padding, id[2], fd[2], sw, dw, od[2], &p->pad_w));
  CHECK(act_range(L, act, out, &p->act_min, &p->act_max));
  CHECK(channel_mults(L, in, f, out, oc, &p->mult, &p->shift));
  p->batches = id[0], p->in_h = id[1], p->in_w = id[2], p->in_c = id[3];
  p->out_h = od[1], p->out_w = od[2], p->out_c = oc, p->k_h = fd[1], p->k_w = fd[2];
  p->stride_h = sh, p->stride_w = sw, p->dil_h = dh, p->dil_w = dw;
  p->input_offset = -rec_zp(in, 0), p->output_offset = rec_zp(out, 0);
  if (dw_model) PARAMS(o, ts_dw_params_t)->depth_multiplier = oc / id[3];
  return TS_OK;
}

static ts_status_t prep_fc(loader_t *L, oprec_t *o) {
  const int32_t ii = op_in(L, o, 0), fi = op_in(L, o, 1), bi = op_in(L, o, 2),
                oi = op_out(L, o, 0);
  CHECK(need_const_filter(L, fi));
  CHECK(need_rank(L, fi, 2, "filter"));
  const trec_t *in = &L->t[ii], *f = &L->t[fi], *out = &L->t[oi];
  int32_t v[2]; /* FullyConnectedOptions: activation, weights_format */
  int present;
  CHECK(options(L, "bb", v, &present));
  const int32_t act = v[0];
  if (v[1] != 0) return ofail(L, TS_ERR_UNSUPPORTED, "shuffled weights");
  const int32_t out_depth = DIM(f, 0), accum = DIM(f, 1);
  if (elems(in) % accum != 0 || elems(out) != elems(in) / accum * out_depth)
    return ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  const int32_t *bias;
  ts_fc_params_t *p = PARAMS(o, ts_fc_params_t);
  CHECK(bias_of(L, bi, out_depth, &bias));
  CHECK(act_range(L, act, out, &p->act_min, &p->act_max));
  const int per_channel = f->num_quant > 1;
  if (per_channel && (int32_t)f->num_quant != out_depth)
    return ofail(L, TS_ERR_BAD_MODEL, "filter scales do not match");
  CHECK(channel_mults(L, in, f, out, per_channel ? out_depth : 1, &p->mult, &p->shift));
  p->batches = elems(in) / accum, p->accum_depth = accum, p->out_depth = out_depth;
  p->per_channel = per_channel;
  p->input_offset = -rec_zp(in, 0), p->filter_offset = per_channel ? 0 : -rec_zp(f, 0);
  p->output_offset = rec_zp(out, 0);
  return TS_OK;
}

static ts_status_t prep_pool(loader_t *L, oprec_t *o) {
  const int32_t ii = op_in(L, o, 0), oi = op_out(L, o, 0);
  CHECK(need_rank(L, ii, 4, "input"));
  CHECK(need_rank(L, oi, 4, "output"));
  const trec_t *in = &L->t[ii], *out = &L->t[oi];
  int32_t id[4], od[4]; /* rank 4: the dims themselves */
  pad4(L, in, id);
  pad4(L, out, od);
  int32_t v[6]; /* Pool2DOptions: padding, stride_w, stride_h, filter_w, filter_h, activation */
  int present;
  CHECK(options(L, "biiiib", v, &present));
  if (!present) return ofail(L, TS_ERR_BAD_MODEL, "lacks its options");
  const int32_t padding = v[0], sw = v[1], sh = v[2], fw = v[3], fh = v[4], act = v[5];
  ts_pool_params_t *p = PARAMS(o, ts_pool_params_t);
  if (fw < 1 || fh < 1 || id[0] != od[0] || id[3] != od[3])
    return ofail(L, TS_ERR_BAD_MODEL, "pooling shapes do not match");
  CHECK(spatial(L, padding, id[1], fh, sh, 1, od[1], &p->pad_h));
  CHECK(spatial(L, padding, id[2], fw, sw, 1, od[2], &p->pad_w));
  CHECK(act_range(L, act, out, &p->act_min, &p->act_max));
  p->batches = id[0], p->in_h = id[1], p->in_w = id[2], p->depth = id[3];
  p->out_h = od[1], p->out_w = od[2], p->f_h = fh, p->f_w = fw, p->stride_h = sh;
  p->stride_w = sw;
  return TS_OK;
}


static ts_status_t prep_add(loader_t *L, oprec_t *o) {
  const int32_t ai = op_in(L, o, 0), bi = op_in(L, o, 1), oi = op_out(L, o, 0);
  CHECK(need_s8(L, ai, "first input"));
  CHECK(need_s8(L, bi, "second input"));
  CHECK(need_s8(L, oi, "output"));
  const trec_t *a = &L->t[ai], *b = &L->t[bi], *out = &L->t[oi];
  ts_add_params_t *p = PARAMS(o, ts_add_params_t);
  int32_t da[4], db[4];
  if (pad4(L, a, da) || pad4(L, b, db) || pad4(L, out, p->out_dims))
    return ofail(L, TS_ERR_UNSUPPORTED, "more than 4 dimensions");
  int32_t sa = 1, sb = 1;
  for (int k = 3; k >= 0; k--) {
    if ((da[k] != p->out_dims[k] && da[k] != 1) || (db[k] != p->out_dims[k] && db[k] != 1))
      return ofail(L, TS_ERR_BAD_MODEL, "shapes do not broadcast");
    p->in1_strides[k] = da[k] == 1 ? 0 : sa;
    p->in2_strides[k] = db[k] == 1 ? 0 : sb;
    sa *= da[k];
    sb *= db[k];
  }
  int32_t act; /* AddOptions: activation */
  int present;
  CHECK(options(L, "b", &act, &present));
  CHECK(act_range(L, act, out, &p->act_min, &p->act_max));
  /* TFLM add_common.cc: 20 bits of headroom for int8, inputs scaled to twice the larger
   * input scale, all three multipliers < 1. */
  const double s1 = rec_scale(a, 0), s2 = rec_scale(b, 0), so = rec_scale(out, 0);
  const double twice_max = 2.0 * (s1 > s2 ? s1 : s2);
  p->left_shift = 20;
  p->input1_offset = -rec_zp(a, 0);
  p->input2_offset = -rec_zp(b, 0);
  p->output_offset = rec_zp(out, 0);
  CHECK(quant_mult(L, s1 / twice_max, &p->input1_mult, &p->input1_shift));
  CHECK(quant_mult(L, s2 / twice_max, &p->input2_mult, &p->input2_shift));
  CHECK(quant_mult(L, twice_max / ((double)(1 << 20) * so), &p->output_mult,
                   &p->output_shift));
  if (p->input1_shift > 0 || p->input2_shift > 0 || p->output_shift > 0)
    return ofail(L, TS_ERR_UNSUPPORTED, "output scale too small for ADD");
  return TS_OK;
}

static ts_status_t prep_softmax(loader_t *L, oprec_t *o) {
  const int32_t ii = op_in(L, o, 0), oi = op_out(L, o, 0);
  const trec_t *in = &L->t[ii], *out = &L->t[oi];
  if (rec_zp(out, 0) != -128 || rec_scale(out, 0) != 1.0f / 256.0f)
    return ofail(L, TS_ERR_UNSUPPORTED,
                 "int8 softmax output must have scale 1/256, zero point -128");
  if (in->ndims < 1 || elems(in) != elems(out))
    return ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  int32_t beta_bits; /* SoftmaxOptions: beta (float32; 0 when absent) */
  int present;
  float beta;
  CHECK(options(L, "i", &beta_bits, &present));
  memcpy(&beta, &beta_bits, 4);
  ts_softmax_params_t *p = PARAMS(o, ts_softmax_params_t);
  p->depth = DIM(in, in->ndims - 1);
  p->outer = elems(in) / p->depth;
  /* TFLM PreprocessSoftmaxScaling with 5 integer bits for the scaled difference. */
  double real = (double)beta * (double)rec_scale(in, 0) * (double)(1 << 26);
  if (real > 2147483647.0) real = 2147483647.0;
  if (!(real > 1.0) || ts_quantize_multiplier(real, &p->input_multiplier, &p->input_left_shift) ||
      p->input_left_shift < 0 || p->input_left_shift > 31)
    return ofail(L, TS_ERR_UNSUPPORTED, "softmax beta * scale out of range");
  /* diff_min = -floor(31 * 2^26 / 2^left_shift) (CalculateInputRadius). */
  p->diff_min = -(int32_t)((INT64_C(31) << 26) >> p->input_left_shift);
  return TS_OK;
}

static ts_status_t const_ints(loader_t *L, int32_t idx, int32_t *vals, int32_t max,
                              int32_t *n) {
  if (idx < 0) return ofail(L, TS_ERR_BAD_MODEL, "lacks an input");
  const trec_t *r = &L->t[idx];
  if (!r->data_off || (r->dtype != TS_INT32 && r->dtype != TS_INT64))
    return ofail(L, TS_ERR_UNSUPPORTED, "tensor %d must be constant int32", idx);
  *n = elems(r);
  if (*n > max) return ofail(L, TS_ERR_UNSUPPORTED, "too many values");
  const int wide = r->dtype == TS_INT64; /* then the high word must be the low word's sign */
  for (int32_t k = 0; k < *n; k++) {
    const uint8_t *e = L->fb.buf + r->data_off + (4u << wide) * (uint32_t)k;
    vals[k] = (int32_t)ts_le32(e);
    if (wide && (int32_t)ts_le32(e + 4) != (vals[k] < 0 ? -1 : 0))
      return ofail(L, TS_ERR_BAD_MODEL, "value out of range");
  }
  return TS_OK;
}

static ts_status_t prep_mean(loader_t *L, oprec_t *o) {
  const int32_t ii = op_in(L, o, 0), ai = op_in(L, o, 1), oi = op_out(L, o, 0);
  const trec_t *in = &L->t[ii], *out = &L->t[oi];
  ts_mean_params_t *p = PARAMS(o, ts_mean_params_t);
  int32_t axes[8], n;
  CHECK(const_ints(L, ai, axes, 8, &n));
  if (pad4(L, in, p->in_dims))
    return ofail(L, TS_ERR_UNSUPPORTED, "more than 4 dimensions");
  memset(p->reduce, 0, sizeof p->reduce);
  for (int32_t k = 0; k < n; k++) {
    int32_t a = axes[k] < 0 ? axes[k] + in->ndims : axes[k];
    if (a < 0 || a >= in->ndims)
      return ofail(L, TS_ERR_BAD_MODEL, "axis %d out of range", axes[k]);
    p->reduce[4 - in->ndims + a] = 1;
  }
  int32_t kept = 1;
  p->count = 1;
  for (int k = 0; k < 4; k++) {
    if (p->reduce[k]) p->count *= p->in_dims[k];
    else kept *= p->in_dims[k];
  }
  if (kept != elems(out))
    return ofail(L, TS_ERR_BAD_MODEL, "output shape does not match");
  int32_t m, s;
  CHECK(quant_mult(L, (double)rec_scale(in, 0) / (double)rec_scale(out, 0), &m, &s));
  /* Fold 1/count into the multiplier as TFLM's QuantizedMeanOrSum does. */
  int32_t sh = 31 - __builtin_clz((uint32_t)p->count); /* floor(log2(count)), count >= 1 */
  if (sh > 31 + s) sh = 31 + s;
  p->mult = (int32_t)(((int64_t)m << sh) / p->count);
  p->shift = s - sh;
  p->input_zp = rec_zp(in, 0);
  p->output_zp = rec_zp(out, 0);
  return TS_OK;
}

static ts_status_t prep_pad(loader_t *L, oprec_t *o) {
  const int32_t ii = op_in(L, o, 0), pi = op_in(L, o, 1), oi = op_out(L, o, 0);
  const trec_t *in = &L->t[ii], *out = &L->t[oi];
  ts_pad_params_t *p = PARAMS(o, ts_pad_params_t);
  int32_t v[8], n, od[4];
  CHECK(const_ints(L, pi, v, 8, &n));
  if (pad4(L, in, p->in_dims) || pad4(L, out, od) || n != 2 * in->ndims ||
      out->ndims != in->ndims)
    return ofail(L, TS_ERR_UNSUPPORTED, "unsupported padding shape");
  for (int k = 0; k < 4; k++) {
    const int j = k - (4 - in->ndims);
    p->before[k] = j >= 0 ? v[2 * j] : 0;
    p->after[k] = j >= 0 ? v[2 * j + 1] : 0;
    if (p->before[k] < 0 || p->after[k] < 0 || p->before[k] > od[k] - p->in_dims[k] ||
        p->after[k] != od[k] - p->in_dims[k] - p->before[k]) /* (dims >= 1: no overflow) */
      return ofail(L, TS_ERR_BAD_MODEL, "padding does not match output");
  }
  p->pad_value = rec_zp(out, 0);
  return TS_OK;
}

static ts_status_t prep_quantize(loader_t *L, oprec_t *o) {
  const int32_t ii = op_in(L, o, 0), oi = op_out(L, o, 0);
  const trec_t *in = &L->t[ii], *out = &L->t[oi];
  if (elems(in) != elems(out))
    return ofail(L, TS_ERR_BAD_MODEL, "shapes do not match");
  ts_requant_params_t *p = PARAMS(o, ts_requant_params_t);
  p->size = elems(in);
  p->input_zp = rec_zp(in, 0);
  p->output_zp = rec_zp(out, 0);
  return quant_mult(L, (double)rec_scale(in, 0) / (double)rec_scale(out, 0), &p->mult,
                    &p->shift);
}

static ts_status_t prep_concat(loader_t *L, oprec_t *o) {
  const int32_t oi = op_out(L, o, 0);
  const trec_t *out = &L->t[oi];
  if (o->n_in < 1 || o->n_in > TS_MAX_CONCAT_INPUTS)
    return ofail(L, TS_ERR_UNSUPPORTED, "%d inputs (at most %d)", o->n_in, TS_MAX_CONCAT_INPUTS);
  int32_t v[2]; /* ConcatenationOptions: axis, activation */
  int present;
  CHECK(options(L, "ib", v, &present));
  int32_t axis = v[0];
  if (v[1] != 0)
    return ofail(L, TS_ERR_UNSUPPORTED, "fused activation on CONCATENATION");
  if (axis < 0) axis += out->ndims;
  if (axis < 0 || axis >= out->ndims)
    return ofail(L, TS_ERR_BAD_MODEL, "axis out of range");
  ts_concat_params_t *p = PARAMS(o, ts_concat_params_t);
  p->num_inputs = o->n_in;
  p->outer = 1;
  for (int k = 0; k < axis; k++) p->outer *= DIM(out, k);
  int32_t left = DIM(out, axis); /* the output's extent along the axis not yet covered */
  for (int32_t j = 0; j < o->n_in; j++) {
    const int32_t ij = op_in(L, o, j);
    CHECK(need_s8(L, ij, "input"));
    const trec_t *in = &L->t[ij];
    if (in->ndims != out->ndims)
      return ofail(L, TS_ERR_BAD_MODEL, "input ranks differ");
    for (int k = 0; k < out->ndims; k++)
      if (k != axis && DIM(in, k) != DIM(out, k))
        return ofail(L, TS_ERR_BAD_MODEL, "input shapes differ");
    p->inner[j] = elems(in) / p->outer;
    if ((left -= DIM(in, axis)) < 0) break; /* (left >= 0 before: no overflow) */
  }
  if (left) return ofail(L, TS_ERR_BAD_MODEL, "output shape does not match");
  return TS_OK;
}

static ts_status_t prep_reshape(loader_t *L, oprec_t *o) {
  const int32_t ii = op_in(L, o, 0), oi = op_out(L, o, 0);
  if (R_BYTES(&L->t[ii]) != R_BYTES(&L->t[oi]))
    return ofail(L, TS_ERR_BAD_MODEL, "reshape changes the element count");
  *PARAMS(o, uint32_t) = R_BYTES(&L->t[oi]);
  return TS_OK;
}

static ts_status_t prepare(loader_t *L, oprec_t *o) {
  /* int8 per-tensor activations (ADD checks its two inputs, then its output, itself) */
  if (o->code != OP_ADD) {
    if (o->code != OP_CONCATENATION) CHECK(need_s8(L, op_in(L, o, 0), "input"));
    CHECK(need_s8(L, op_out(L, o, 0), "output"));
  }
  switch (o->code) {
    case OP_CONV_2D:
    case OP_DEPTHWISE_CONV_2D: return prep_conv(L, o);
    case OP_FULLY_CONNECTED: return prep_fc(L, o);
    case OP_MAX_POOL_2D:
    case OP_AVERAGE_POOL_2D: return prep_pool(L, o);
    case OP_ADD: return prep_add(L, o);
    case OP_SOFTMAX: return prep_softmax(L, o);
    case OP_MEAN: return prep_mean(L, o);
    case OP_PAD: return prep_pad(L, o);
    case OP_QUANTIZE: return prep_quantize(L, o);
    case OP_CONCATENATION: return prep_concat(L, o);
    default: return prep_reshape(L, o); /* OP_RESHAPE: op_code admits supported codes only */
  }
}

/* ---------------------------------------------------------------- init */

static size_t align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

static ts_status_t index_vec(loader_t *L, const ts_fb_vec_t *v, const char *what) {
  for (uint32_t k = 0; k < v->len; k++) {
    const int32_t idx = (int32_t)ts_le32(L->fb.buf + v->pos + 4 * k);
    if (idx < -1 || idx >= (int32_t)L->tensors.len)
      return fail(L->it, TS_ERR_BAD_MODEL, "%s names tensor %d of %u", what, idx,
                  L->tensors.len);
  }
  return TS_OK;
}

/* Operators whose output may overwrite their input in place (same arena offset): RESHAPE
 * (the same bytes), QUANTIZE (element i from element i) and MAX_POOL_2D without padding
 * (output pixel k is stored after its window is read, and every later window starts at
 * input pixel >= k: both the reference and the optimized kernel are safe). Only when this
 * operator is the input's last reader and the input is not a model input or output. */
static void to_vrec(const trec_t *r, vrec_t *v) {
  v->shape_pos = r->shape_pos;
  v->name_off = r->name_off;
  v->scales_off = r->scales_off;
  v->zps_off = r->zps_off;
  v->num_quant = r->num_quant;
  v->dtype = r->dtype;
  v->qdim = r->qdim;
}

static oprec_t *op_at(const loader_t *L, int32_t i) {
  return (oprec_t *)(void *)(L->st->ops + L->opoff[i]);
}

static void mark_in_place(loader_t *L, int32_t i) {
  const oprec_t *o = op_at(L, i);
  if (o->code != OP_RESHAPE && o->code != OP_QUANTIZE &&
      !(o->code == OP_MAX_POOL_2D && PARAMS(o, ts_pool_params_t)->pad_h == 0 &&
        PARAMS(o, ts_pool_params_t)->pad_w == 0))
    return;
  const int32_t ii = op_in(L, o, 0), oi = op_out(L, o, 0);
  if (ii < 0 || oi < 0) return;
  trec_t *in = &L->t[ii], *out = &L->t[oi];
  /* (a model output lives to num_ops, so in->plan.last == i excludes it; a model input is
   * not the output of the operator at its plan.first) */
  if (in->data_off || out->data_off || in->plan.first < 0 || out->plan.first < 0 ||
      in->plan.last != i || out->plan.size > in->plan.size ||
      op_out(L, op_at(L, in->plan.first), 0) != ii)
    return;
  out->plan.share = ii;
}

static ts_status_t load(loader_t *L, uint8_t *arena, size_t arena_size) {
  ts_interp_t *it = L->it;
  ts_fb_t *fb = &L->fb;
  ts_fb_table_t root, sg;
  if (fb->size < 8) { /* "model truncated at offset <size>" */
    fb->bad_offset = fb->size;
    return corrupt(L);
  }
  if (memcmp(fb->buf + 4, "TFL3", 4) != 0)
    return fail(it, TS_ERR_BAD_MODEL, "not a TFLite model (no TFL3 identifier at offset 4)");
  FB(ts_fb_root(fb, &root));
  uint32_t version;
  FB(ts_fb_u32(fb, &root, MODEL_VERSION, 0, &version));
  if (version != TS_SCHEMA_VERSION)
    return fail(it, TS_ERR_BAD_MODEL, "model schema version %u, expected %d", version,
                TS_SCHEMA_VERSION);
  ts_fb_vec_t subgraphs;
  FB(ts_fb_vector(fb, &root, MODEL_OPCODES, 4, &L->opcodes));
  FB(ts_fb_vector(fb, &root, MODEL_SUBGRAPHS, 4, &subgraphs));
  FB(ts_fb_vector(fb, &root, MODEL_BUFFERS, 4, &L->buffers));
  if (subgraphs.len < 1) return fail(it, TS_ERR_BAD_MODEL, "model has no subgraph");
  FB(ts_fb_vec_table(fb, &subgraphs, 0, &sg));
  ts_fb_vec_t *const sgv[] = {&L->tensors, &L->inputs, &L->outputs, &L->operators};
  for (int k = SG_TENSORS; k <= SG_OPERATORS; k++) FB(ts_fb_vector(fb, &sg, k, 4, sgv[k]));
  if (L->tensors.len > TS_MAX_TENSORS || L->operators.len > TS_MAX_OPS)
    return fail(it, TS_ERR_UNSUPPORTED, "model too large (%u tensors, %u operators)",
                L->tensors.len, L->operators.len);
  if (L->inputs.len < 1 || L->outputs.len < 1 || L->operators.len < 1)
    return fail(it, TS_ERR_BAD_MODEL, "model has no inputs, outputs or operators");
  CHECK(index_vec(L, &L->inputs, "model input"));
  CHECK(index_vec(L, &L->outputs, "model output"));
  const uint32_t nt = L->tensors.len, nops = L->operators.len;
  it->num_tensors = (int32_t)nt;
  it->num_ops = (int32_t)nops;
  it->num_inputs = (int32_t)L->inputs.len;
  it->num_outputs = (int32_t)L->outputs.len;

  /* Persistent bytes: one word per tensor, a vrec_t per tensor without data, the operator
   * records and the per-channel tables (sizes known from the operator codes and the
   * filters). */
  size_t chan_slots = 0, op_bytes = 0;
  for (uint32_t i = 0; i < nops; i++) {
    uint32_t s;
    int32_t code;
    L->op = (int32_t)i;
    CHECK(op_chan_slots(L, &s, &code));
    chan_slots += s;
    op_bytes += rec_size(code);
  }
  size_t acts = 0, nvrec = 0; /* every activation apart: an upper bound */
  for (uint32_t t = 0; t < nt; t++) {
    trec_t r;
    CHECK(parse_tensor(L, t, &r));
    if (!r.data_off) acts += align_up(r.plan.size, TS_PLAN_ALIGN), nvrec++;
  }
  const size_t pad = (size_t)(-(uintptr_t)arena & 15u); /* align the arena to 16 */
  const size_t persistent = align_up(sizeof(state_t), 8) + align_up(nt * sizeof(uint32_t), 8) +
                            nvrec * sizeof(vrec_t) + align_up(op_bytes, 8) +
                            align_up(chan_slots * sizeof(int32_t), 16);
  /* Init-only records, in the (not yet used) activation area. */
  const size_t scratch = nt * sizeof(trec_t) + nops * sizeof(uint32_t);
  if (!arena || pad + persistent + scratch > arena_size) {
    /* No room to plan: report the upper bound. */
    it->arena_needed = pad + persistent + (acts > scratch ? acts : scratch);
    return fail(it, TS_ERR_ARENA_TOO_SMALL, "arena of %u bytes too small: need %u",
                (uint32_t)arena_size, (uint32_t)it->arena_needed);
  }
  uint8_t *base = arena + pad;
  state_t *st = (state_t *)(void *)base;
  memset(st, 0, sizeof *st);
  st->loc = (uint32_t *)(void *)(base + align_up(sizeof(state_t), 8));
  st->vrec = (vrec_t *)(void *)((uint8_t *)st->loc + align_up(nt * sizeof(uint32_t), 8));
  st->ops = (uint8_t *)(st->vrec + nvrec);
  L->chan = (int32_t *)(void *)(st->ops + align_up(op_bytes, 8));
  L->chan_end = L->chan + chan_slots;
  st->in_pos = L->inputs.pos;
  st->out_pos = L->outputs.pos;
  st->tensors = L->tensors;
  st->buffers = L->buffers;
  st->act = base + persistent;
  L->st = st;
  L->t = (trec_t *)(void *)st->act;
  L->opoff = (uint32_t *)(void *)(L->t + nt);

  for (uint32_t t = 0; t < nt; t++) CHECK(parse_tensor(L, t, &L->t[t]));

  /* Graph: operator io and tensor lifetimes. */
  for (uint32_t k = 0; k < L->inputs.len; k++) {
    const int32_t idx = (int32_t)ts_le32(fb->buf + L->inputs.pos + 4 * k);
    trec_t *r = idx >= 0 ? &L->t[idx] : NULL;
    if (!r || r->data_off || r->dtype != TS_INT8)
      return fail(it, TS_ERR_UNSUPPORTED, "model input %u must be an int8 tensor", k);
    r->plan.first = 0;
    r->plan.last = 0;
  }
  uint32_t at = 0;
  for (uint32_t i = 0; i < nops; i++) {
    oprec_t *o = (oprec_t *)(void *)(st->ops + at);
    ts_fb_table_t op;
    ts_fb_vec_t ins, outs;
    int32_t code;
    L->op = (int32_t)i;
    CHECK(op_code(L, &op, &code));
    const uint32_t size = rec_size(code);
    FB(ts_fb_vector(fb, &op, OPR_INPUTS, 4, &ins));
    FB(ts_fb_vector(fb, &op, OPR_OUTPUTS, 4, &outs));
    CHECK(index_vec(L, &ins, "an operator input"));
    CHECK(index_vec(L, &outs, "an operator output"));
    if (outs.len != 1)
      return ofail(L, TS_ERR_BAD_MODEL, "must have one output");
    L->opoff[i] = at;
    at += size;
    memset(o, 0, size);
    o->code = (uint8_t)code; /* supported: <= 114 */
    o->in_pos = ins.pos;
    o->out_pos = outs.pos;
    o->n_in = (uint8_t)(ins.len > 255 ? 255 : ins.len);
    o->size = (uint16_t)size;
    for (uint32_t k = 0; k < ins.len; k++) {
      const int32_t idx = (int32_t)ts_le32(fb->buf + ins.pos + 4 * k);
      if (idx < 0 || L->t[idx].data_off) continue;
      if (L->t[idx].plan.first < 0)
        return ofail(L, TS_ERR_BAD_MODEL, "reads tensor %d before it is written", idx);
      L->t[idx].plan.last = (int32_t)i;
    }
    const int32_t idx = op_out(L, o, 0);
    if (idx < 0 || L->t[idx].data_off || L->t[idx].plan.first >= 0)
      return ofail(L, TS_ERR_BAD_MODEL, "writes tensor %d that is constant or already written",
                   idx);
    L->t[idx].plan.first = (int32_t)i;
    L->t[idx].plan.last = (int32_t)i;
  }
  for (uint32_t k = 0; k < L->outputs.len; k++) {
    const int32_t idx = (int32_t)ts_le32(fb->buf + L->outputs.pos + 4 * k);
    if (idx < 0 || L->t[idx].plan.first < 0)
      return fail(it, TS_ERR_BAD_MODEL, "model output %u is never written", k);
    L->t[idx].plan.last = (int32_t)nops;
  }
  for (L->op = 0; L->op < (int32_t)nops; L->op++) CHECK(prepare(L, op_at(L, L->op)));
  for (uint32_t i = 0; i < nops; i++) mark_in_place(L, (int32_t)i);

  /* Plan the activations right after the persistent part (over the init-only records). */
  size_t act_bytes = ts_plan(&L->t[0].plan, sizeof(trec_t), nt);
  if (act_bytes >= LOC_ACT || act_bytes > SIZE_MAX - pad - persistent)
    return fail(it, TS_ERR_UNSUPPORTED, "model activations exceed 2 GB");
  for (uint32_t t = 0, k = 0; t < nt; t++) {
    const trec_t *r = &L->t[t];
    if (r->data_off) {
      st->loc[t] = r->data_off;
    } else {
      to_vrec(r, &st->vrec[k]);
      st->vrec[k].offset = r->plan.first >= 0 ? r->plan.offset : NO_DATA;
      st->loc[t] = LOC_ACT | k++;
    }
  }
  if (act_bytes < scratch) act_bytes = scratch;
  it->arena_needed = pad + persistent + act_bytes;
  if (it->arena_needed > arena_size)
    return fail(it, TS_ERR_ARENA_TOO_SMALL, "arena of %u bytes too small: need %u",
                (uint32_t)arena_size, (uint32_t)it->arena_needed);
  it->arena_used = it->arena_needed;
  it->priv = st;
  return TS_OK;
}

ts_status_t ts_interp_init(ts_interp_t *it, const uint8_t *model, size_t model_size,
                           uint8_t *arena, size_t arena_size) {
  if (!it) return TS_ERR_BAD_ARG;
  memset(it, 0, sizeof *it);
  if (!model) return fail(it, TS_ERR_BAD_ARG, "no model");
  if (model_size > 0x7fffffffu) return fail(it, TS_ERR_BAD_MODEL, "model larger than 2 GB");
  it->model = model;
  it->model_size = model_size;
  it->arena = arena;
  it->arena_size = arena_size;
  loader_t L;
  memset(&L, 0, sizeof L);
  L.it = it;
  L.fb.buf = model;
  L.fb.size = (uint32_t)model_size;
  const ts_status_t s = load(&L, arena, arena_size);
  if (s == TS_OK) it->ready = 1;
  return s;
}

/* ---------------------------------------------------------------- access */

static const state_t *ready_state(const ts_interp_t *it) {
  return (it && it->ready) ? (const state_t *)it->priv : NULL;
}

static void *tdata(const ts_interp_t *it, const state_t *st, int32_t idx) {
  const uint32_t loc = st->loc[idx];
  if (loc & LOC_ACT) {
    const uint32_t off = st->vrec[loc & ~LOC_ACT].offset;
    return off == NO_DATA ? NULL : st->act + off;
  }
  return (void *)(uintptr_t)(it->model + loc);
}

/* A non-constant tensor's view comes from its vrec_t; a constant's is re-read from the
 * (validated) model. */
static void view(const ts_interp_t *it, const state_t *st, int32_t idx, ts_tensor_t *out) {
  const uint8_t *m = it->model;
  const uint32_t loc = st->loc[idx];
  vrec_t tmp;
  const vrec_t *v = &tmp;
  if (loc & LOC_ACT) {
    v = &st->vrec[loc & ~LOC_ACT];
  } else {
    loader_t L;
    trec_t r;
    memset(&L, 0, sizeof L);
    L.fb.buf = m;
    L.fb.size = (uint32_t)it->model_size;
    L.tensors = st->tensors;
    L.buffers = st->buffers;
    if (parse_tensor(&L, (uint32_t)idx, &r) != TS_OK) memset(&r, 0, sizeof r);
    to_vrec(&r, &tmp);
  }
  memset(out, 0, sizeof *out);
  out->index = idx;
  out->name = v->name_off ? (const char *)m + v->name_off : "";
  out->dtype = v->dtype;
  out->ndims = (uint8_t)(v->shape_pos ? ts_le32(m + v->shape_pos - 4) : 0);
  out->bytes = dtype_size(v->dtype);
  for (uint32_t k = 0; k < out->ndims; k++) {
    out->dims[k] = (int32_t)ts_le32(m + v->shape_pos + 4 * k);
    out->bytes *= (uint32_t)out->dims[k];
  }
  out->data = tdata(it, st, idx);
  out->num_quant = v->num_quant;
  out->quantized_dimension = v->qdim;
  out->scales_le = v->num_quant ? m + v->scales_off : NULL;
  out->zero_points_le = v->num_quant ? m + v->zps_off : NULL;
}

float ts_tensor_scale(const ts_tensor_t *t, uint32_t i) {
  if (!t || i >= t->num_quant) return 0.0f;
  const uint32_t u = ts_le32(t->scales_le + 4 * i);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

int32_t ts_tensor_zero_point(const ts_tensor_t *t, uint32_t i) {
  if (!t || i >= t->num_quant) return 0;
  return (int32_t)ts_le32(t->zero_points_le + 8 * i);
}

ts_status_t ts_interp_tensor(const ts_interp_t *it, int32_t idx, ts_tensor_t *out) {
  const state_t *st = ready_state(it);
  if (!st) return TS_ERR_NOT_READY;
  if (!out || idx < 0 || idx >= it->num_tensors) return TS_ERR_BAD_ARG;
  view(it, st, idx, out);
  return TS_OK;
}

/* Element i of the subgraph's input (out = 0) or output (out = 1) index vector. */
static ts_status_t io_view(const ts_interp_t *it, int out, int32_t i, ts_tensor_t *t) {
  const state_t *st = ready_state(it);
  if (!st) return TS_ERR_NOT_READY;
  if (!t || i < 0 || i >= (out ? it->num_outputs : it->num_inputs)) return TS_ERR_BAD_ARG;
  view(it, st, (int32_t)ts_le32(it->model + (out ? st->out_pos : st->in_pos) + 4 * (uint32_t)i),
       t);
  return TS_OK;
}

ts_status_t ts_interp_input(const ts_interp_t *it, int32_t i, ts_tensor_t *out) {
  return io_view(it, 0, i, out);
}

ts_status_t ts_interp_output(const ts_interp_t *it, int32_t i, ts_tensor_t *out) {
  return io_view(it, 1, i, out);
}

ts_status_t ts_interp_op(const ts_interp_t *it, int32_t op_index, int32_t *builtin_op,
                         int32_t *output_tensor) {
  const state_t *st = ready_state(it);
  if (!st) return TS_ERR_NOT_READY;
  if (op_index < 0 || op_index >= it->num_ops) return TS_ERR_BAD_ARG;
  const oprec_t *o = (const oprec_t *)(const void *)st->ops;
  for (int32_t i = 0; i < op_index; i++)
    o = (const oprec_t *)(const void *)((const uint8_t *)o + o->size);
  if (builtin_op) *builtin_op = o->code;
  if (output_tensor) *output_tensor = (int32_t)ts_le32(it->model + o->out_pos);
  return TS_OK;
}

const char *ts_interp_error(const ts_interp_t *it) { return it ? it->error : "no interpreter"; }

const char *ts_status_name(ts_status_t s) {
  switch (s) {
    case TS_OK: return "TS_OK";
    case TS_ERR_BAD_MODEL: return "TS_ERR_BAD_MODEL";
    case TS_ERR_UNSUPPORTED: return "TS_ERR_UNSUPPORTED";
    case TS_ERR_ARENA_TOO_SMALL: return "TS_ERR_ARENA_TOO_SMALL";
    case TS_ERR_BAD_ARG: return "TS_ERR_BAD_ARG";
    case TS_ERR_NOT_READY: return "TS_ERR_NOT_READY";
    default: return "TS_ERR_UNKNOWN";
  }
}

/* ---------------------------------------------------------------- invoke */

ts_status_t ts_interp_invoke(ts_interp_t *it, ts_op_callback_t cb, void *user) {
  const state_t *st = ready_state(it);
  if (!st) return it ? fail(it, TS_ERR_NOT_READY, "invoke before a successful init")
                     : TS_ERR_BAD_ARG;
  const uint8_t *m = it->model;
  const oprec_t *o = (const oprec_t *)(const void *)st->ops, *next;
  for (int32_t i = 0; i < it->num_ops; i++, o = next) {
    next = (const oprec_t *)(const void *)((const uint8_t *)o + o->size);
#define IN(k) ((k) < o->n_in ? (int32_t)ts_le32(m + o->in_pos + 4 * (uint32_t)(k)) : -1)
    const int32_t oi = (int32_t)ts_le32(m + o->out_pos);
    int8_t *out = (int8_t *)tdata(it, st, oi);
    const int8_t *in0 = (const int8_t *)tdata(it, st, IN(0));
    const int32_t b = IN(2);
    const int32_t *bias = b >= 0 ? (const int32_t *)tdata(it, st, b) : NULL;
    const int8_t *in1 = o->n_in > 1 ? (const int8_t *)tdata(it, st, IN(1)) : NULL;
    switch (o->code) {
      case OP_CONV_2D:
        KERNEL_CONV(PARAMS(o, const ts_conv_params_t), in0, in1, bias, out);
        break;
      case OP_DEPTHWISE_CONV_2D:
        KERNEL_DW(PARAMS(o, const ts_dw_params_t), in0, in1, bias, out);
        break;
      case OP_FULLY_CONNECTED:
        KERNEL_FC(PARAMS(o, const ts_fc_params_t), in0, in1, bias, out);
        break;
      case OP_MAX_POOL_2D:
        KERNEL_MAX_POOL(PARAMS(o, const ts_pool_params_t), in0, out);
        break;
      case OP_AVERAGE_POOL_2D:
        if (ts_ref_avg_pool_s8(PARAMS(o, const ts_pool_params_t), in0, out))
          return fail(it, TS_ERR_BAD_MODEL, "operator %d: empty pooling window", i);
        break;
      case OP_ADD:
        ts_ref_add_s8(PARAMS(o, const ts_add_params_t), in0, in1, out);
        break;
      case OP_SOFTMAX:
        ts_ref_softmax_s8(PARAMS(o, const ts_softmax_params_t), in0, out);
        break;
      case OP_MEAN:
        KERNEL_MEAN(PARAMS(o, const ts_mean_params_t), in0, out);
        break;
      case OP_PAD:
        ts_ref_pad_s8(PARAMS(o, const ts_pad_params_t), in0, out);
        break;
      case OP_QUANTIZE:
        ts_ref_requantize_s8(PARAMS(o, const ts_requant_params_t), in0, out);
        break;
      case OP_CONCATENATION: {
        const int8_t *ins[TS_MAX_CONCAT_INPUTS];
        const ts_concat_params_t *p = PARAMS(o, const ts_concat_params_t);
        for (int32_t k = 0; k < p->num_inputs; k++)
          ins[k] = (const int8_t *)tdata(it, st, IN(k));
        ts_ref_concat_s8(p, ins, out);
        break;
      }
      case OP_RESHAPE:
        if ((const void *)out != (const void *)in0) memmove(out, in0, *PARAMS(o, const uint32_t));
        break;
      default:
        return fail(it, TS_ERR_UNSUPPORTED, "operator %d: no kernel", i);
    }
#undef IN
    if (cb) {
      ts_tensor_t v;
      view(it, st, oi, &v);
      cb(user, i, o->code, &v);
    }
  }
  return TS_OK;
}
