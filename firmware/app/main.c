/*
 * tinyscope firmware: serves the host's requests over the UART (docs/protocol.md).
 *
 * Boot: board init, hash the model (SHA-256 of the bytes actually flashed), initialise the
 * runtime in a static arena. Then wait for requests; nothing is sent unasked, so output is
 * never lost on a link nobody listens to yet. A runtime that refuses the model (e.g. arena
 * too small) is reported in INFO and as ERROR MODEL to SET_INPUT/RUN.
 * Activations leave the runtime only through on_op(), the per-operator callback, which also
 * computes the operators' digests (RUN flag DIGEST) outside the operators' timed regions.
 * Payloads are written and read by wire.c, expanded from the layouts of protocol_defs.h.
 *
 * Test-only fault injection (make FAULT=op:3,index:17): -DTS_FAULT_OP=3 -DTS_FAULT_INDEX=17
 * flips the lowest bit of byte 17 of operator 3's output in every RUN, before it is digested
 * or streamed (and before the next operator reads it), to prove that the host finds it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "app.h"
#include "board.h"
#include "digest.h"
#include "link.h"
#include "protocol_defs.h"
#include "sha256.h"
#include "ts_runtime.h"
#include "wire.h"

#ifndef TS_ARENA_BYTES
#define TS_ARENA_BYTES (256u * 1024u)
#endif
#ifndef TS_APP_MAX_OPS
#define TS_APP_MAX_OPS 512
#endif
#ifndef TS_FW_VERSION
#define TS_FW_VERSION "dev"
#endif

/* The model, from $(MODEL_DIR)/model_data.{h,cc} written by `tinyscope convert`:
 * g_model_data[] and g_model_data_size (a constant in C). */
#include "model_data.h"

/* The model's per-channel requantization tables in flash (TS_MODEL_TABLES: firmware/Makefile
 * generates OUT/model_tables.c with `tinyscope-run --tables` for the same model file; the
 * arena is then planned without them). A build without them (native test builds, a model
 * the runtime cannot plan) keeps the tables in the arena. */
#ifdef TS_MODEL_TABLES
extern const int32_t g_model_tables[];
extern const uint32_t g_model_tables_words;
extern const uint8_t g_model_tables_sha256[32];
#endif
static bool s_tables_foreign; /* the linked tables were made for another model */
static bool s_tables_given;   /* init was given the linked tables */

static uint8_t s_arena[TS_ARENA_BYTES] __attribute__((aligned(16)));
static ts_interp_t s_it;
static ts_status_t s_model_status = TS_ERR_NOT_READY;
static uint8_t s_sha256[32];
static uint8_t s_buf[TSP_MAX_PAYLOAD]; /* builds INFO / ERROR payloads */

/* per-request state */
static uint32_t s_input_next;  /* bytes of the input received in order so far */
static bool s_input_ready;     /* a complete input waits for RUN */
static uint8_t s_selected[(TS_APP_MAX_OPS + 7) / 8];
static uint32_t s_op_ticks[TS_APP_MAX_OPS];
static uint32_t s_digests[TS_APP_MAX_OPS];
static bool s_digest_on;        /* this RUN asked for DIGEST */
static uint64_t s_digest_ticks; /* ticks spent computing this RUN's digests */
static uint16_t s_seq;
static uint32_t s_frames;      /* frames sent for the current request (before DONE) */
static int s_stream_error;
static int32_t s_output_index;  /* tensor index of the model output, -1 if none */
static bool s_output_streamed;  /* the output went out as a TENSOR in this run */

static void send_error(uint16_t seq, uint16_t code, const char *a, const char *b) {
  tsp_error_t e = {.code = code};
  uint8_t *p = tsp_put_error(s_buf, &e);
  size_t room = sizeof s_buf - TSP_ERROR_FIXED_SIZE;
  size_t n = 0;
  for (const char *s = a; s && *s && n < room; s++) p[n++] = (uint8_t)*s;
  for (const char *s = b; s && *s && n < room; s++) p[n++] = (uint8_t)*s;
  link_send(TSP_ERROR, seq, s_buf, (uint16_t)(TSP_ERROR_FIXED_SIZE + n));
}

/* Decimal text of v into out (>= 11 bytes). */
static const char *utoa10(uint32_t v, char *out) {
  char tmp[11];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v);
  for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = 0;
  return out;
}

static void send_done(uint16_t seq, uint8_t request) {
  uint8_t d[TSP_DONE_MAX];
  tsp_done_t v = {.request = request, .frames = s_frames};
  uint8_t *p = tsp_put_done(d, &v);
  link_send(TSP_DONE, seq, d, (uint16_t)(p - d));
}

static void model_init(void) {
  memset(&s_it, 0, sizeof s_it);
  const int32_t *tables = NULL;
  size_t words = 0;
#ifdef TS_MODEL_TABLES
  tables = g_model_tables_words ? g_model_tables : NULL;
  words = g_model_tables_words;
  s_tables_foreign = words && memcmp(g_model_tables_sha256, s_sha256, 32) != 0;
  s_tables_given = words != 0;
#endif
  /* Tables made for another model are refused here; tables of this model file that differ
   * from what the runtime computes are refused by init (it recomputes every value). */
  s_model_status = s_tables_foreign ? TS_ERR_BAD_ARG
                                    : ts_interp_init_tables(&s_it, g_model_data, g_model_data_size,
                                                            s_arena, sizeof s_arena, tables, words);
  if (s_model_status == TS_OK && s_it.num_ops > TS_APP_MAX_OPS) s_model_status = TS_ERR_UNSUPPORTED;
  s_input_next = 0;
  s_input_ready = false;
}

/* The model error text for INFO / ERROR MODEL (empty when the model is ready). */
static const char *model_error(char *out, size_t size) {
  char num[11], num2[11];
  out[0] = 0;
  if (s_model_status == TS_OK) return out;
  if (s_model_status == TS_ERR_ARENA_TOO_SMALL) {
    /* e.g. "arena too small: the model needs 300000 bytes, the firmware has 262144; ..." */
    const char *parts[] = {"arena too small: the model needs ",
                           utoa10((uint32_t)s_it.arena_needed, num),
                           " bytes, the firmware has ",
                           utoa10((uint32_t)sizeof s_arena, num2),
                           "; rebuild with make flash ARENA_BYTES=<more>"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
      for (const char *s = parts[i]; *s && n + 1 < size; s++) out[n++] = *s;
    out[n] = 0;
    return out;
  }
  if (s_model_status == TS_ERR_UNSUPPORTED && s_it.num_ops > TS_APP_MAX_OPS && !s_it.error[0]) {
    const char *m = "model has more operators than the firmware's TS_APP_MAX_OPS";
    strncpy(out, m, size - 1);
    out[size - 1] = 0;
    return out;
  }
  const char *name = ts_status_name(s_model_status);
  const char *err = s_tables_foreign
                        ? "per-channel tables made for another model: rebuild the firmware "
                          "from this MODEL_DIR"
                        : ts_interp_error(&s_it);
  /* with valid tables init has no other TS_ERR_BAD_ARG (its texts may be stripped) */
  const char *pre = !s_tables_foreign && s_tables_given && s_model_status == TS_ERR_BAD_ARG
                        ? "per-channel tables do not match the model (rebuild the firmware "
                          "from this MODEL_DIR): "
                        : "";
  size_t n = 0;
  for (const char *s = name; *s && n + 1 < size; s++) out[n++] = *s;
  for (const char *s = ": "; *s && n + 1 < size; s++) out[n++] = *s;
  for (const char *s = pre; *s && n + 1 < size; s++) out[n++] = *s;
  for (const char *s = err; *s && n + 1 < size; s++) out[n++] = *s;
  out[n] = 0;
  return out;
}

static uint8_t *put_str(uint8_t *p, const char *s) {
  size_t n = strlen(s);
  if (n > 255) n = 255;
  p = tsp_put_u8(p, (uint8_t)n);
  memcpy(p, s, n);
  return p + n;
}

/* The input bank the board holds, checked: its inputs (NULL if none, or not of the model's
 * input size, or larger than the board's bank memory); *count inputs. */
static const uint8_t *input_bank(uint32_t *count) {
  size_t capacity = 0;
  const uint8_t *mem = board_input_bank(&capacity);
  tsp_bank_t bank;
  ts_tensor_t in;
  *count = 0;
  if (mem == NULL || s_model_status != TS_OK || ts_interp_input(&s_it, 0, &in) != TS_OK ||
      tsp_get_bank(mem, capacity, &bank) != TSP_BANK_FIXED_SIZE || bank.magic != TSP_BANK_MAGIC ||
      bank.input_bytes != in.bytes || in.bytes == 0 ||
      bank.count > (capacity - TSP_BANK_FIXED_SIZE) / in.bytes)
    return NULL;
  *count = bank.count;
  return mem + TSP_BANK_FIXED_SIZE;
}

static void handle_hello(uint16_t seq) {
  char err[128];
  ts_tensor_t in, out;
  int32_t num_ops = s_model_status == TS_OK ? s_it.num_ops : 0;
  bool ok = s_model_status == TS_OK;
  bool have_in = ok && ts_interp_input(&s_it, 0, &in) == TS_OK;
  bool have_out = ok && ts_interp_output(&s_it, 0, &out) == TS_OK;
  uint32_t per_tick = 0;
  tsp_info_t v = {
      .protocol_version = TSP_VERSION,
      .num_ops = (uint16_t)num_ops,
      .cpu_hz = board_cpu_hz(),
      .tick_hz = board_tick_hz(),
      .tick_unit = (uint8_t)board_tick_unit(&per_tick),
      .model_bytes = g_model_data_size,
      .arena_bytes = (uint32_t)sizeof s_arena,
      .arena_used = (uint32_t)(ok ? s_it.arena_used : s_it.arena_needed),
      .input_tensor = have_in ? in.index : -1,
      .input_bytes = have_in ? in.bytes : 0,
      .output_tensor = have_out ? out.index : -1,
      .output_bytes = have_out ? out.bytes : 0,
      .model_status = (uint8_t)s_model_status,
  };
  v.instructions_per_tick = per_tick;
  (void)input_bank(&v.input_bank);
  memcpy(v.model_sha256, s_sha256, 32);
  uint8_t *p = tsp_put_info(s_buf, &v);
  if (p - s_buf != TSP_INFO_FIXED_SIZE) {
    send_error(seq, TSP_ERR_RUNTIME, "firmware bug: INFO layout differs from protocol_defs.h", 0);
    return;
  }
  p = put_str(p, TS_FW_VERSION);
  p = put_str(p, board_name());
  p = put_str(p, model_error(err, sizeof err));
  for (int32_t i = 0; i < num_ops; i++) {
    int32_t code = -1, tensor = -1;
    (void)ts_interp_op(&s_it, i, &code, &tensor);
    p = tsp_put_u16(p, (uint16_t)code);
    p = tsp_put_i16(p, (int16_t)tensor);
  }
  link_send(TSP_INFO, seq, s_buf, (uint16_t)(p - s_buf));
  s_frames = 1;
  send_done(seq, TSP_HELLO);
}

static bool model_ready(uint16_t seq) {
  if (s_model_status == TS_OK) return true;
  char err[128];
  send_error(seq, TSP_ERR_MODEL, "the runtime refused the model at boot: ",
             model_error(err, sizeof err));
  return false;
}

static void handle_set_input(uint16_t seq, const uint8_t *p, uint16_t len) {
  if (!model_ready(seq)) return;
  tsp_set_input_t req;
  if (tsp_get_set_input(p, len, &req) != TSP_SET_INPUT_FIXED_SIZE) {
    send_error(seq, TSP_ERR_BAD_REQUEST, "SET_INPUT payload shorter than offset+total", 0);
    return;
  }
  uint32_t offset = req.offset, total = req.total;
  uint32_t n = len - TSP_SET_INPUT_FIXED_SIZE;
  ts_tensor_t in;
  if (ts_interp_input(&s_it, 0, &in) != TS_OK || in.data == NULL) {
    send_error(seq, TSP_ERR_RUNTIME, "the runtime has no input tensor 0", 0);
    return;
  }
  char a[11], b[11];
  if (total != in.bytes) {
    s_input_ready = false;
    send_error(seq, TSP_ERR_OUT_OF_RANGE, "SET_INPUT total differs from the input size ",
               utoa10(in.bytes, a));
    return;
  }
  if (offset != 0 && offset != s_input_next) {
    utoa10(s_input_next, b);
    s_input_ready = false;
    s_input_next = 0;
    send_error(seq, TSP_ERR_OUT_OF_RANGE, "SET_INPUT chunk out of order; expected offset ", b);
    return;
  }
  if (n > total - offset) {
    s_input_ready = false;
    send_error(seq, TSP_ERR_OUT_OF_RANGE, "SET_INPUT chunk runs past the input size ",
               utoa10(total, a));
    return;
  }
  memcpy((uint8_t *)in.data + offset, p + TSP_SET_INPUT_FIXED_SIZE, n);
  s_input_next = offset + n;
  s_input_ready = s_input_next == total;
  s_frames = 0;
  send_done(seq, TSP_SET_INPUT);
}

/* USE_INPUT: input `index` of the bank becomes the input, as a complete SET_INPUT would. */
static void handle_use_input(uint16_t seq, const uint8_t *p, uint16_t len) {
  if (!model_ready(seq)) return;
  tsp_use_input_t req;
  if (tsp_get_use_input(p, len, &req) != len) {
    send_error(seq, TSP_ERR_BAD_REQUEST, "USE_INPUT payload is not one u32 index", 0);
    return;
  }
  uint32_t count;
  const uint8_t *bank = input_bank(&count);
  ts_tensor_t in;
  char a[11];
  if (ts_interp_input(&s_it, 0, &in) != TS_OK || in.data == NULL) {
    send_error(seq, TSP_ERR_RUNTIME, "the runtime has no input tensor 0", 0);
    return;
  }
  if (bank == NULL || req.index >= count) {
    s_input_ready = false;
    send_error(seq, TSP_ERR_OUT_OF_RANGE, "USE_INPUT index >= inputs in the bank ",
               utoa10(count, a));
    return;
  }
  memcpy(in.data, bank + (size_t)req.index * in.bytes, in.bytes);
  s_input_next = 0;
  s_input_ready = true;
  s_frames = 0;
  send_done(seq, TSP_USE_INPUT);
}

/* One tensor as TENSOR/OUTPUT frames (protocol version 2): each frame carries the compact
 * metadata (varints) and as many data bytes as fit TSP_MAX_RESPONSE_PAYLOAD; the frame is
 * streamed through link_write, so nothing but the metadata is buffered. */
static int send_tensor(uint8_t type, uint16_t op_index, uint16_t builtin, const ts_tensor_t *t) {
  static const uint8_t sizes[] = TSP_DTYPE_SIZES;
  uint32_t nq = t->num_quant;
  if (t->data == NULL || t->ndims > TSP_TENSOR_MAX_DIMS || t->dtype >= sizeof sizes ||
      sizes[t->dtype] == 0)
    return -1;
  uint64_t elems = 1;
  for (uint32_t d = 0; d < t->ndims; d++) elems *= (uint64_t)(uint32_t)t->dims[d];
  if (elems * sizes[t->dtype] != t->bytes) return -1; /* the host derives the size */
  /* quantization part: f32 scales then zigzag zero points (sized first, sent per value) */
  uint32_t quant = 4u * nq;
  for (uint32_t q = 0; q < nq; q++) {
    uint8_t v[TSP_VARINT_MAX];
    quant += (uint32_t)(tsp_put_svarint(v, ts_tensor_zero_point(t, q)) - v);
  }
  uint32_t offset = 0;
  do {
    uint8_t h[TSP_TENSOR_HEAD_MAX + (TSP_TENSOR_MAX_DIMS + 2) * TSP_VARINT_MAX];
    tsp_tensor_head_t head = {.op_index = op_index, .builtin_op = builtin,
                              .tensor_index = (uint32_t)t->index, .offset = offset,
                              .dtype = t->dtype, .ndims = (uint8_t)t->ndims};
    uint8_t *p = tsp_put_tensor_head(h, &head);
    for (uint32_t d = 0; d < t->ndims; d++) p = tsp_put_uvarint(p, (uint32_t)t->dims[d]);
    p = tsp_put_uvarint(p, nq);
    if (nq > 1) p = tsp_put_uvarint(p, (uint32_t)t->quantized_dimension); /* per-channel only */
    uint32_t meta = (uint32_t)(p - h) + quant;
    if (meta + 1u > TSP_MAX_RESPONSE_PAYLOAD) return -1;
    uint32_t room = TSP_MAX_RESPONSE_PAYLOAD - meta;
    uint32_t n = t->bytes - offset < room ? t->bytes - offset : room;
    link_begin(type, s_seq, (uint16_t)(meta + n));
    link_write(h, (size_t)(p - h));
    for (uint32_t q = 0; q < nq; q++) {
      float s = ts_tensor_scale(t, q);
      uint32_t bits;
      memcpy(&bits, &s, 4);
      uint8_t v[4];
      tsp_put_u32(v, bits);
      link_write(v, 4);
    }
    for (uint32_t q = 0; q < nq; q++) {
      uint8_t v[TSP_VARINT_MAX];
      link_write(v, (size_t)(tsp_put_svarint(v, ts_tensor_zero_point(t, q)) - v));
    }
    link_write((const uint8_t *)t->data + offset, n);
    if (link_end() != 0) return -1;
    s_frames++;
    offset += n;
  } while (offset < t->bytes);
  return 0;
}

#if defined(TS_FAULT_OP) && defined(TS_FAULT_INDEX)
static void inject_fault(int32_t op_index, const ts_tensor_t *t) {
  if (op_index == TS_FAULT_OP && t->data != NULL && (uint32_t)TS_FAULT_INDEX < t->bytes)
    ((uint8_t *)t->data)[TS_FAULT_INDEX] ^= 1u; /* the runtime's own buffer: propagates */
}
#else
static void inject_fault(int32_t op_index, const ts_tensor_t *t) {
  (void)op_index;
  (void)t;
}
#endif

/* Each operator is timed from the end of the previous callback (a tick counter reset) to
 * the start of its own: digests and streaming are not the operator's time, and the reset
 * realigns the tick phase after the UART waits, so the counts are reproducible. */
static void on_op(void *user, int32_t op_index, int32_t builtin_op, const ts_tensor_t *output) {
  (void)user;
  uint64_t ticks = board_ticks();
  if (op_index >= 0 && op_index < TS_APP_MAX_OPS) {
    s_op_ticks[op_index] = (uint32_t)ticks;
    inject_fault(op_index, output);
    if (s_digest_on) {
      board_ticks_reset();
      s_digests[op_index] = output->data ? ts_digest(output->data, output->bytes) : 0;
      s_digest_ticks += board_ticks();
    }
    if ((s_selected[op_index / 8] >> (op_index % 8)) & 1u) {
      if (send_tensor(TSP_TENSOR, (uint16_t)op_index, (uint16_t)builtin_op, output) != 0)
        s_stream_error = 1;
      else if (output->index == s_output_index)
        s_output_streamed = true;
    }
  }
  board_ticks_reset();
}

static void handle_run(uint16_t seq, const uint8_t *p, uint16_t len) {
  if (!model_ready(seq)) return;
  tsp_run_t req;
  if (tsp_get_run(p, len, &req) != TSP_RUN_FIXED_SIZE) {
    send_error(seq, TSP_ERR_BAD_REQUEST, "RUN payload shorter than mode+flags+count", 0);
    return;
  }
  uint8_t mode = req.mode, flags = req.flags;
  uint16_t count = req.count;
  char a[11];
  if (len != TSP_RUN_FIXED_SIZE + 2u * count) {
    send_error(seq, TSP_ERR_BAD_REQUEST, "RUN payload length does not match its op count", 0);
    return;
  }
  memset(s_selected, 0, sizeof s_selected);
  switch (mode) {
    case TSP_RUN_FIRST:
      s_selected[0] = 1;
      break;
    case TSP_RUN_ALL:
      memset(s_selected, 0xFF, sizeof s_selected);
      break;
    case TSP_RUN_NONE:
      break;
    case TSP_RUN_LIST:
      for (uint16_t i = 0; i < count; i++) {
        const uint8_t *q = p + TSP_RUN_FIXED_SIZE + 2u * i;
        uint16_t op = (uint16_t)(q[0] | (q[1] << 8));
        if (op >= s_it.num_ops) {
          send_error(seq, TSP_ERR_OUT_OF_RANGE, "RUN names an operator index >= num_ops ",
                     utoa10((uint32_t)s_it.num_ops, a));
          return;
        }
        s_selected[op / 8] |= (uint8_t)(1u << (op % 8));
      }
      break;
    default:
      send_error(seq, TSP_ERR_BAD_REQUEST, "RUN mode unknown: ", utoa10(mode, a));
      return;
  }
  if (!s_input_ready) {
    send_error(seq, TSP_ERR_NO_INPUT, "RUN before a complete SET_INPUT", 0);
    return;
  }
  s_input_ready = false; /* the arena may reuse the input buffer during the run */
  s_input_next = 0;
  s_seq = seq;
  s_frames = 0;
  s_stream_error = 0;
  ts_tensor_t out;
  s_output_index = ts_interp_output(&s_it, 0, &out) == TS_OK ? out.index : -1;
  s_output_streamed = false;
  memset(s_op_ticks, 0, sizeof s_op_ticks);
  memset(s_digests, 0, sizeof s_digests);
  s_digest_on = (flags & TSP_FLAG_DIGEST) != 0;
  s_digest_ticks = 0;
  board_ticks_reset();
  ts_status_t st = ts_interp_invoke(&s_it, on_op, 0);
  uint64_t total = 0;
  for (int32_t i = 0; i < s_it.num_ops; i++) total += s_op_ticks[i];
  if (st != TS_OK) {
    send_error(seq, TSP_ERR_RUNTIME, ts_status_name(st), ts_interp_error(&s_it));
    return;
  }
  if (s_stream_error) {
    send_error(seq, TSP_ERR_RUNTIME, "a tensor could not be streamed (no data or too many "
               "quantization parameters)", 0);
    return;
  }
  /* The output is sent as OUTPUT only if no TENSOR frame of this run carried it already
   * (the host takes it from that TENSOR: its tensor_index is INFO's output_tensor). */
  if ((flags & TSP_FLAG_OUTPUT) && !s_output_streamed) {
    if (ts_interp_output(&s_it, 0, &out) != TS_OK ||
        send_tensor(TSP_OUTPUT, TSP_OP_NONE, TSP_OP_NONE, &out) != 0) {
      send_error(seq, TSP_ERR_RUNTIME, "the model output could not be sent", 0);
      return;
    }
  }
  if (flags & TSP_FLAG_TIMING) {
    uint16_t n = (uint16_t)s_it.num_ops;
    uint8_t h[TSP_TIMING_MAX], v[TSP_VARINT_MAX];
    tsp_timing_t head = {.tick_hz = board_tick_hz(), .total_ticks = (uint32_t)total,
                         .num_ops = n};
    uint8_t *p = tsp_put_timing(h, &head);
    uint32_t length = (uint32_t)(p - h);
    for (uint16_t i = 0; i < n; i++) length += (uint32_t)(tsp_put_uvarint(v, s_op_ticks[i]) - v);
    link_begin(TSP_TIMING, seq, (uint16_t)length); /* <= 15 + 5 * TS_APP_MAX_OPS bytes */
    link_write(h, (size_t)(p - h));
    for (uint16_t i = 0; i < n; i++)
      link_write(v, (size_t)(tsp_put_uvarint(v, s_op_ticks[i]) - v));
    (void)link_end();
    s_frames++;
  }
  if (s_digest_on) {
    uint16_t n = (uint16_t)s_it.num_ops;
    uint8_t h[TSP_DIGEST_MAX], v[4];
    tsp_digest_t head = {.num_ops = n, .digest_ticks = (uint32_t)s_digest_ticks};
    uint8_t *p = tsp_put_digest(h, &head);
    link_begin(TSP_DIGEST, seq, (uint16_t)((size_t)(p - h) + 4u * n)); /* <= 10 + 4 * 512 */
    link_write(h, (size_t)(p - h));
    for (uint16_t i = 0; i < n; i++) link_write(v, (size_t)(tsp_put_u32(v, s_digests[i]) - v));
    (void)link_end();
    s_frames++;
  }
  send_done(seq, TSP_RUN);
}

void app_init(void) {
  sha256_ctx_t h;
  sha256_init(&h);
  sha256_update(&h, g_model_data, g_model_data_size);
  sha256_final(&h, s_sha256);
  model_init();
}

void app_handle(link_status_t st, const link_frame_t *f) {
  if (st == LINK_BAD_FRAME) {
    send_error(TSP_SEQ_NONE, TSP_ERR_BAD_FRAME, "bad frame (COBS, length or CRC)", 0);
    return;
  }
  if (st == LINK_TOO_LARGE) {
    send_error(TSP_SEQ_NONE, TSP_ERR_TOO_LARGE, "frame longer than TSP_MAX_PAYLOAD", 0);
    return;
  }
  if (st == LINK_BAD_VERSION) {
    send_error(f->seq, TSP_ERR_BAD_VERSION, "unsupported protocol version", 0);
    return;
  }
  s_frames = 0;
  switch (f->type) {
    case TSP_HELLO:
      handle_hello(f->seq);
      break;
    case TSP_SET_INPUT:
      handle_set_input(f->seq, f->payload, f->length);
      break;
    case TSP_RUN:
      handle_run(f->seq, f->payload, f->length);
      break;
    case TSP_USE_INPUT:
      handle_use_input(f->seq, f->payload, f->length);
      break;
    case TSP_PING:
      send_done(f->seq, TSP_PING);
      break;
    case TSP_RESET:
      model_init();
      send_done(f->seq, TSP_RESET);
      break;
    default:
      send_error(f->seq, TSP_ERR_UNKNOWN_TYPE, "unknown request type", 0);
      break;
  }
}

#ifndef TS_APP_NO_MAIN
int main(void) {
  board_init();
  link_init();
  app_init();
  for (;;) {
    link_frame_t f;
    link_status_t st = link_receive(&f);
    app_handle(st, &f);
  }
}
#endif
