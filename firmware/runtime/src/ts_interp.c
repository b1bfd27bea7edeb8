/*
 * tinyscope interpreter: model loading and validation, arena planning, tensor views and
 * Invoke (no allocation). The operators live in ops/<op>.c (prepare + eval) and are listed
 * once in ts_ops.def; the schema walking is ts_model.c, the prepare helpers ts_prep.c, the
 * messages ts_fmt.c.
 *
 * Arena layout (one caller-provided buffer, no heap):
 *   [state][loc: 1 word/tensor][vrec_t/non-constant tensor][op records][mult/shift][activations]
 *   '----------------------------- persistent -----------------------------------''- planned -'
 * Activation buffers, and the scratch an operator asked for (alive while it runs), are
 * placed by ts_plan() (greedy by size, lifetime-aware). During init the full tensor records
 * (ts_trec_t, then one per operator of a kind that may ask for scratch) and the op record
 * offsets live where the activations will be, so the activation area is at least that
 * large; afterwards a constant tensor's fields are re-read from the model on demand.
 */
#include "ts_internal.h"

#define TS_SCHEMA_VERSION 3
#define TS_MAX_TENSORS 65535
#define TS_MAX_OPS 65535

_Static_assert(TS_NUM_KINDS < 256, "an operator record keeps its kind in a byte");

/* Per tensor after init, one word: the model offset of a constant's data, or LOC_ACT | the
 * index of the tensor's vrec_t (every tensor without data: activations). A constant's other
 * fields are re-read from the model on demand. */
#define LOC_ACT 0x80000000u

/* What a view of a non-constant tensor needs (the callback's output view costs no parse). */
typedef struct {
  uint32_t offset;    /* in the activation area; NO_DATA: never written */
  uint32_t shape_pos; /* int32 dims inside the model (ndims: the vector's length); 0: none */
  uint32_t name_off, scales_off, zps_off; /* as in ts_trec_t */
  uint16_t num_quant;
  uint8_t dtype;
  int8_t qdim;
} vrec_t;

typedef struct ts_state {
  uint32_t *loc;            /* [num_tensors] */
  vrec_t *vrec;             /* [tensors without data] */
  uint8_t *ops;             /* operator records */
  uint32_t in_pos, out_pos; /* subgraph input / output index vectors */
  ts_fb_vec_t tensors, buffers;
  uint8_t *act;             /* activation area */
  const int32_t *chan;      /* per-channel tables (in the arena or the caller's) */
  uint32_t chan_words;
} state_t;

static size_t align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

TS_COLD static ts_status_t index_vec(ts_loader_t *L, const ts_fb_vec_t *v, const char *what) {
  for (uint32_t k = 0; k < v->len; k++) {
    const int32_t idx = (int32_t)ts_le32(L->fb.buf + v->pos + 4 * k);
    if (idx < -1 || idx >= (int32_t)L->tensors.len)
      return ts_fail(L->it, TS_ERR_BAD_MODEL, "%s names tensor %d of %u", what, idx,
                     L->tensors.len);
  }
  return TS_OK;
}

/* Operator L->op's kind and the per-channel int32 slots (multiplier + shift) it needs. */
TS_COLD static ts_status_t op_chan_slots(ts_loader_t *L, uint32_t *slots, int *kind) {
  ts_fb_table_t op;
  int32_t code;
  *slots = 0;
  CHECK(ts_op_code(L, &op, &code, kind));
  if (!(ts_ops[*kind].flags & TS_OPT_PER_CHANNEL)) return TS_OK;
  ts_fb_vec_t ins;
  FB(ts_fb_vector(&L->fb, &op, OPR_INPUTS, 4, &ins));
  if (ins.len < 2) return ts_ofail(L, TS_ERR_BAD_MODEL, "has no filter");
  const int32_t f = (int32_t)ts_le32(L->fb.buf + ins.pos + 4);
  if (f < 0 || (uint32_t)f >= L->tensors.len)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "names tensor %d", f);
  ts_trec_t r;
  CHECK(ts_parse_tensor(L, (uint32_t)f, &r));
  *slots = 2 * (r.num_quant ? r.num_quant : 1);
  return TS_OK;
}

static __attribute__((noinline)) void to_vrec(const ts_trec_t *r, vrec_t *v) {
  v->shape_pos = r->shape_pos;
  v->name_off = r->name_off;
  v->scales_off = r->scales_off;
  v->zps_off = r->zps_off;
  v->num_quant = r->num_quant;
  v->dtype = r->dtype;
  v->qdim = r->qdim;
}

static __attribute__((noinline)) ts_oprec_t *op_at(const ts_loader_t *L, int32_t i) {
  return (ts_oprec_t *)(void *)(L->st->ops + L->opoff[i]);
}

/* The first tensor of t's in-place group (its chain of `share` partners). */
TS_COLD static int32_t group_root(const ts_loader_t *L, int32_t t) {
  for (uint32_t k = 0; k < L->tensors.len && L->t[t].plan.share >= 0; k++) t = L->t[t].plan.share;
  return t;
}

/* Whether every tensor planned so far (written at or before operator i) that shares input
 * ii's bytes is dead after i and none is a model input (not the output of the operator at
 * its plan.first), so that i may write over them. */
TS_COLD static int group_dies_at(ts_loader_t *L, int32_t ii, int32_t i) {
  const int32_t r = group_root(L, ii);
  for (uint32_t t = 0; t < L->tensors.len; t++) {
    const ts_plan_buf_t *p = &L->t[t].plan;
    if (p->first < 0 || p->first > i || group_root(L, (int32_t)t) != r) continue;
    if (p->last > i || op_out(L, op_at(L, p->first), 0) != (int32_t)t) return 0;
  }
  return 1;
}

/* Whether operator i's output may be written over its input k (same arena offset): the
 * input is not another input of i, the output is not larger, and i is the last reader of
 * every tensor sharing the input's bytes, none a model input (a model output lives to
 * num_ops). An alias (TS_OPF_ALIAS: RESHAPE, SQUEEZE) writes nothing: its output may be
 * any activation input's bytes, a model input or one read again later. */
TS_COLD static int may_overwrite(ts_loader_t *L, int32_t i, int32_t k) {
  const ts_oprec_t *o = op_at(L, i);
  const int32_t ii = op_in(L, o, k), oi = op_out(L, o, 0);
  if (ii < 0 || oi < 0) return 0;
  const ts_trec_t *in = &L->t[ii], *out = &L->t[oi];
  for (int32_t j = 0; j < o->n_in; j++)
    if (j != k && op_in(L, o, j) == ii) return 0; /* x + x: read twice */
  if (in->data_off || out->data_off || in->plan.first < 0 || out->plan.first < 0 ||
      out->plan.size > in->plan.size)
    return 0;
  return (o->flags & TS_OPF_ALIAS) || group_dies_at(L, ii, i);
}

/* An operator whose prepare set TS_OPF_IN_PLACE writes its output over input 0 where
 * may_overwrite allows it; with TS_OPF_IN_PLACE_ANY (element-wise binary operators) over
 * input 1 where input 0 may not be. Operators that need a copy (TS_OPF_IN_PLACE_COPY) are
 * linked only if `copies`, and their scratch is then planned. Returns whether it linked
 * such an operator. */
TS_COLD static __attribute__((noinline)) int mark_in_place(ts_loader_t *L, int32_t i, int copies) {
  const ts_oprec_t *o = op_at(L, i);
  if (!(o->flags & TS_OPF_IN_PLACE)) return 0;
  const int copy = (o->flags & TS_OPF_IN_PLACE_COPY) != 0;
  ts_plan_buf_t *out = &L->t[op_out(L, o, 0)].plan;
  out->share = -1;
  if (copy) {
#ifndef TS_TEST_SCRATCH /* (the tests' runner keeps every operator's scratch) */
    L->t[*SCRATCH_SLOT(o, ts_ops[o->kind].rec_size)].plan.first = -1;
#endif
    if (!copies) return 0;
  }
  int32_t k = 0;
  if (!may_overwrite(L, i, 0)) {
    if (!(o->flags & TS_OPF_IN_PLACE_ANY) || !may_overwrite(L, i, 1)) return 0;
    k = 1;
  }
  out->share = op_in(L, o, k);
  if (copy) {
    ts_plan_buf_t *s = &L->t[*SCRATCH_SLOT(o, ts_ops[o->kind].rec_size)].plan;
    s->first = s->last = i;
  }
  return copy;
}

#ifdef TS_TEST_SCRATCH
/* Tests only (tinyscope-run-scratch): every operator asks for TS_TEST_SCRATCH bytes of
 * scratch and invoke fills them with a pattern before the operator runs, so a scratch the
 * planner placed over a live tensor corrupts the results the tests compare with TFLM. */
#define TEST_SCRATCH(L, o) CHECK(ts_request_scratch((L), (o), TS_TEST_SCRATCH))
#define TEST_SCRIBBLE(e) \
  if ((e)->scratch) memset((e)->scratch, 0xa5, TS_TEST_SCRATCH)
#else
#define TEST_SCRATCH(L, o) (void)0
#define TEST_SCRIBBLE(e) (void)0
#endif

TS_COLD static ts_status_t load(ts_loader_t *L, uint8_t *arena, size_t arena_size,
                                const int32_t *tables, size_t table_words) {
  ts_interp_t *it = L->it;
  ts_fb_t *fb = &L->fb;
  ts_fb_table_t root, sg;
  if (fb->size < 8) { /* "model truncated at offset <size>" */
    fb->bad_offset = fb->size;
    return ts_corrupt(L);
  }
  if (memcmp(fb->buf + 4, "TFL3", 4) != 0)
    return ts_fail(it, TS_ERR_BAD_MODEL, "not a TFLite model (no TFL3 identifier at offset 4)");
  FB(ts_fb_root(fb, &root));
  uint32_t version;
  FB(ts_fb_u32(fb, &root, MODEL_VERSION, 0, &version));
  if (version != TS_SCHEMA_VERSION)
    return ts_fail(it, TS_ERR_BAD_MODEL, "model schema version %u, expected %d", version,
                TS_SCHEMA_VERSION);
  ts_fb_vec_t subgraphs;
  FB(ts_fb_vector(fb, &root, MODEL_OPCODES, 4, &L->opcodes));
  FB(ts_fb_vector(fb, &root, MODEL_SUBGRAPHS, 4, &subgraphs));
  FB(ts_fb_vector(fb, &root, MODEL_BUFFERS, 4, &L->buffers));
  if (subgraphs.len < 1) return ts_fail(it, TS_ERR_BAD_MODEL, "model has no subgraph");
  FB(ts_fb_vec_table(fb, &subgraphs, 0, &sg));
  ts_fb_vec_t *const sgv[] = {&L->tensors, &L->inputs, &L->outputs, &L->operators};
  for (int k = SG_TENSORS; k <= SG_OPERATORS; k++) FB(ts_fb_vector(fb, &sg, k, 4, sgv[k]));
  if (L->tensors.len > TS_MAX_TENSORS || L->operators.len > TS_MAX_OPS)
    return ts_fail(it, TS_ERR_UNSUPPORTED, "model too large (%u tensors, %u operators)",
                L->tensors.len, L->operators.len);
  if (L->inputs.len < 1 || L->outputs.len < 1 || L->operators.len < 1)
    return ts_fail(it, TS_ERR_BAD_MODEL, "model has no inputs, outputs or operators");
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
  uint32_t nscr = 0; /* operators of a kind that may ask for scratch */
  for (uint32_t i = 0; i < nops; i++) {
    uint32_t s;
    int kind;
    L->op = (int32_t)i;
    CHECK(op_chan_slots(L, &s, &kind));
    chan_slots += s;
    op_bytes += ts_ops[kind].rec_size;
    nscr += (ts_ops[kind].flags & TS_OPT_SCRATCH) != 0;
  }
  size_t acts = 0, nvrec = 0; /* every activation apart: an upper bound */
  for (uint32_t t = 0; t < nt; t++) {
    ts_trec_t r;
    CHECK(ts_parse_tensor(L, t, &r));
    if (!r.data_off) acts += align_up(r.plan.size, TS_PLAN_ALIGN), nvrec++;
  }
  if (tables && table_words != chan_slots)
    return ts_fail(it, TS_ERR_BAD_ARG, "channel tables of %u words, the model needs %u",
                   (uint32_t)table_words, (uint32_t)chan_slots);
  const size_t pad = (size_t)(-(uintptr_t)arena & 15u); /* align the arena to 16 */
  const size_t persistent = align_up(sizeof(state_t), 8) + align_up(nt * sizeof(uint32_t), 8) +
                            nvrec * sizeof(vrec_t) + align_up(op_bytes, 8) +
                            (tables ? 0 : align_up(chan_slots * sizeof(int32_t), 16));
  /* Init-only records, in the (not yet used) activation area: one per tensor, one per
   * scratch an operator may ask for, and the operator record offsets. */
  const size_t scratch = (nt + nscr) * sizeof(ts_trec_t) + nops * sizeof(uint32_t);
  if (!arena || pad + persistent + scratch > arena_size) {
    /* No room to plan: report the upper bound. */
    it->arena_needed = pad + persistent + (acts > scratch ? acts : scratch);
    return ts_fail(it, TS_ERR_ARENA_TOO_SMALL, "arena of %u bytes too small: need %u",
                (uint32_t)arena_size, (uint32_t)it->arena_needed);
  }
  uint8_t *base = arena + pad;
  state_t *st = (state_t *)(void *)base;
  memset(st, 0, sizeof *st);
  st->loc = (uint32_t *)(void *)(base + align_up(sizeof(state_t), 8));
  st->vrec = (vrec_t *)(void *)((uint8_t *)st->loc + align_up(nt * sizeof(uint32_t), 8));
  st->ops = (uint8_t *)(st->vrec + nvrec);
  /* the caller's tables are only read (ts_channel_mults checks them) */
  L->chan = tables ? (int32_t *)(uintptr_t)tables
                   : (int32_t *)(void *)(st->ops + align_up(op_bytes, 8));
  L->chan_end = L->chan + chan_slots;
  L->chan_given = tables != NULL;
  st->chan = L->chan;
  st->chan_words = (uint32_t)chan_slots;
  st->in_pos = L->inputs.pos;
  st->out_pos = L->outputs.pos;
  st->tensors = L->tensors;
  st->buffers = L->buffers;
  st->act = base + persistent;
  L->st = st;
  L->t = (ts_trec_t *)(void *)st->act;
  L->opoff = (uint32_t *)(void *)(L->t + nt + nscr);

  for (uint32_t t = 0; t < nt; t++) CHECK(ts_parse_tensor(L, t, &L->t[t]));
  for (uint32_t i = 0; i < nscr; i++) { /* scratch records: none until an op asks */
    memset(&L->t[nt + i], 0, sizeof(ts_trec_t));
    L->t[nt + i].plan.first = -1;
    L->t[nt + i].plan.share = -1;
  }

  /* Graph: operator io and tensor lifetimes. */
  for (uint32_t k = 0; k < L->inputs.len; k++) {
    const int32_t idx = (int32_t)ts_le32(fb->buf + L->inputs.pos + 4 * k);
    ts_trec_t *r = idx >= 0 ? &L->t[idx] : NULL;
    if (!r || r->data_off || (r->dtype != TS_INT8 && r->dtype != TS_FLOAT32))
      return ts_fail(it, TS_ERR_UNSUPPORTED, "model input %u must be an int8 or float32 tensor",
                     k);
    r->plan.first = 0;
    r->plan.last = 0;
  }
  uint32_t at = 0, k_scr = 0;
  for (uint32_t i = 0; i < nops; i++) {
    ts_oprec_t *o = (ts_oprec_t *)(void *)(st->ops + at);
    ts_fb_table_t op;
    ts_fb_vec_t ins, outs;
    int32_t code;
    int kind;
    L->op = (int32_t)i;
    CHECK(ts_op_code(L, &op, &code, &kind));
    const uint32_t size = ts_ops[kind].rec_size;
    FB(ts_fb_vector(fb, &op, OPR_INPUTS, 4, &ins));
    FB(ts_fb_vector(fb, &op, OPR_OUTPUTS, 4, &outs));
    CHECK(index_vec(L, &ins, "an operator input"));
    CHECK(index_vec(L, &outs, "an operator output"));
    if (outs.len != 1)
      return ts_ofail(L, TS_ERR_BAD_MODEL, "must have one output");
    L->opoff[i] = at;
    at += size;
    memset(o, 0, size);
    o->kind = (uint8_t)kind;
    o->in_pos = ins.pos;
    o->out_pos = outs.pos;
    /* until planned, the scratch slot holds the index of the operator's scratch record */
    if (ts_ops[kind].flags & TS_OPT_SCRATCH) *SCRATCH_SLOT(o, size) = nt + k_scr++;
    o->n_in = (uint8_t)(ins.len > 255 ? 255 : ins.len);
    for (uint32_t k = 0; k < ins.len; k++) {
      const int32_t idx = (int32_t)ts_le32(fb->buf + ins.pos + 4 * k);
      if (idx < 0 || L->t[idx].data_off) continue;
      if (L->t[idx].plan.first < 0)
        return ts_ofail(L, TS_ERR_BAD_MODEL, "reads tensor %d before it is written", idx);
      L->t[idx].plan.last = (int32_t)i;
    }
    const int32_t idx = op_out(L, o, 0);
    if (idx < 0 || L->t[idx].data_off || L->t[idx].plan.first >= 0)
      return ts_ofail(L, TS_ERR_BAD_MODEL, "writes tensor %d that is constant or already written",
                   idx);
    L->t[idx].plan.first = (int32_t)i;
    L->t[idx].plan.last = (int32_t)i;
  }
  for (uint32_t k = 0; k < L->outputs.len; k++) {
    const int32_t idx = (int32_t)ts_le32(fb->buf + L->outputs.pos + 4 * k);
    if (idx < 0 || L->t[idx].plan.first < 0)
      return ts_fail(it, TS_ERR_BAD_MODEL, "model output %u is never written", k);
    L->t[idx].plan.last = (int32_t)nops;
  }
  for (L->op = 0; L->op < (int32_t)nops; L->op++) {
    ts_oprec_t *o = op_at(L, L->op);
    CHECK(ts_ops[o->kind].prepare(L, o));
    TEST_SCRATCH(L, o);
  }
  /* Plan the activations right after the persistent part (over the init-only records):
   * with the operators that run in place through a copy, and without them; the copies
   * stay only if they make the block smaller. */
  size_t act_bytes = 0;
  for (int pass = 0;; pass++) { /* with the copies; without; with them again if smaller */
    int copies = 0;
    for (uint32_t i = 0; i < nops; i++) copies |= mark_in_place(L, (int32_t)i, pass != 1);
    const size_t bytes = ts_plan(&L->t[0].plan, sizeof(ts_trec_t), nt + nscr);
    const int done = pass == 0 ? !copies : pass == 2 || bytes <= act_bytes;
    if (pass != 1 || done) act_bytes = bytes;
    if (done) break;
  }
  if (act_bytes >= LOC_ACT || act_bytes > SIZE_MAX - pad - persistent)
    return ts_fail(it, TS_ERR_UNSUPPORTED, "model activations exceed 2 GB");
  for (uint32_t t = 0, k = 0; t < nt; t++) {
    const ts_trec_t *r = &L->t[t];
    if (r->data_off) {
      st->loc[t] = r->data_off;
    } else {
      to_vrec(r, &st->vrec[k]);
      st->vrec[k].offset = r->plan.first >= 0 ? r->plan.offset : NO_DATA;
      st->loc[t] = LOC_ACT | k++;
    }
  }
  for (uint32_t i = 0; i < nops; i++) {
    ts_oprec_t *o = op_at(L, (int32_t)i);
    if (!(ts_ops[o->kind].flags & TS_OPT_SCRATCH)) continue;
    uint32_t *slot = SCRATCH_SLOT(o, ts_ops[o->kind].rec_size);
    const ts_plan_buf_t *p = &L->t[*slot].plan;
    *slot = p->first >= 0 ? p->offset : NO_DATA;
  }
  if (act_bytes < scratch) act_bytes = scratch;
  it->arena_needed = pad + persistent + act_bytes;
  if (it->arena_needed > arena_size)
    return ts_fail(it, TS_ERR_ARENA_TOO_SMALL, "arena of %u bytes too small: need %u",
                (uint32_t)arena_size, (uint32_t)it->arena_needed);
  it->arena_used = it->arena_needed;
  it->priv = st;
  return TS_OK;
}

ts_status_t ts_interp_init(ts_interp_t *it, const uint8_t *model, size_t model_size,
                           uint8_t *arena, size_t arena_size) {
  return ts_interp_init_tables(it, model, model_size, arena, arena_size, NULL, 0);
}

ts_status_t ts_interp_init_tables(ts_interp_t *it, const uint8_t *model, size_t model_size,
                                  uint8_t *arena, size_t arena_size, const int32_t *tables,
                                  size_t table_words) {
  if (!it) return TS_ERR_BAD_ARG;
  memset(it, 0, sizeof *it);
  if (!model) return ts_fail(it, TS_ERR_BAD_ARG, "no model");
  if (model_size > 0x7fffffffu) return ts_fail(it, TS_ERR_BAD_MODEL, "model larger than 2 GB");
  it->model = model;
  it->model_size = model_size;
  it->arena = arena;
  it->arena_size = arena_size;
  ts_loader_t L;
  memset(&L, 0, sizeof L);
  L.it = it;
  L.fb.buf = model;
  L.fb.size = (uint32_t)model_size;
  const ts_status_t s = load(&L, arena, arena_size, tables, table_words);
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
    ts_loader_t L;
    ts_trec_t r;
    memset(&L, 0, sizeof L);
    L.fb.buf = m;
    L.fb.size = (uint32_t)it->model_size;
    L.tensors = st->tensors;
    L.buffers = st->buffers;
    if (ts_parse_tensor(&L, (uint32_t)idx, &r) != TS_OK) memset(&r, 0, sizeof r);
    to_vrec(&r, &tmp);
  }
  memset(out, 0, sizeof *out);
  out->index = idx;
  out->name = v->name_off ? (const char *)m + v->name_off : "";
  out->dtype = v->dtype;
  out->ndims = (uint8_t)(v->shape_pos ? ts_le32(m + v->shape_pos - 4) : 0);
  out->bytes = ts_dtype_size(v->dtype);
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
static __attribute__((noinline)) ts_status_t io_view(const ts_interp_t *it, int out, int32_t i,
                                                   ts_tensor_t *t) {
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
  const ts_oprec_t *o = (const ts_oprec_t *)(const void *)st->ops;
  for (int32_t i = 0; i < op_index; i++)
    o = (const ts_oprec_t *)(const void *)((const uint8_t *)o + ts_ops[o->kind].rec_size);
  if (builtin_op) *builtin_op = ts_ops[o->kind].code;
  if (output_tensor) *output_tensor = (int32_t)ts_le32(it->model + o->out_pos);
  return TS_OK;
}


const char *ts_interp_error(const ts_interp_t *it) { return it ? it->error : "no interpreter"; }

ts_status_t ts_interp_tables(const ts_interp_t *it, const int32_t **tables, size_t *words) {
  const state_t *st = ready_state(it);
  if (!st) return TS_ERR_NOT_READY;
  if (!tables || !words) return TS_ERR_BAD_ARG;
  *tables = st->chan;
  *words = st->chan_words;
  return TS_OK;
}

/* ---------------------------------------------------------------- invoke */

#define IN_IDX(m, o, k) \
  ((k) < (o)->n_in ? (int32_t)ts_le32((m) + (o)->in_pos + 4 * (uint32_t)(k)) : -1)

const void *ts_eval_input(const ts_eval_t *e, int32_t k) {
  const int32_t idx = IN_IDX(e->it->model, e->o, k);
  return idx >= 0 ? tdata(e->it, e->st, idx) : NULL;
}

ts_status_t ts_interp_invoke(ts_interp_t *it, ts_op_callback_t cb, void *user) {
  const state_t *st = ready_state(it);
  if (!st) return it ? ts_fail(it, TS_ERR_NOT_READY, "invoke before a successful init")
                     : TS_ERR_BAD_ARG;
  const uint8_t *m = it->model;
  const ts_oprec_t *o = (const ts_oprec_t *)(const void *)st->ops, *next;
  ts_eval_t e;
  e.it = it;
  e.st = st;
  for (int32_t i = 0; i < it->num_ops; i++, o = next) {
    const ts_op_t *op = &ts_ops[o->kind];
    next = (const ts_oprec_t *)(const void *)((const uint8_t *)o + op->rec_size);
    const int32_t oi = (int32_t)ts_le32(m + o->out_pos);
    e.params = (const uint8_t *)o + PARAM_OFF;
    e.out = tdata(it, st, oi);
    e.in0 = tdata(it, st, IN_IDX(m, o, 0));
    e.in1 = o->n_in > 1 ? tdata(it, st, IN_IDX(m, o, 1)) : NULL;
    const int32_t b = IN_IDX(m, o, 2);
    e.in2 = b >= 0 ? tdata(it, st, b) : NULL;
    e.scratch = NULL;
    if (op->flags & TS_OPT_SCRATCH) {
      const uint32_t off = *SCRATCH_SLOT(o, op->rec_size);
      if (off != NO_DATA) e.scratch = st->act + off;
    }
    e.o = o;
    e.index = i;
    TEST_SCRIBBLE(&e);
    CHECK(op->eval(&e));
    if (cb) {
      ts_tensor_t v;
      view(it, st, oi, &v);
      cb(user, i, op->code, &v);
    }
  }
  return TS_OK;
}
