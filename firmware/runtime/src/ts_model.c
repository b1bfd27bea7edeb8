/* Walking the TFLite schema: tensor records (shape, type, constant data, quantization),
 * operator codes and builtin options. Every read is bounds-checked (ts_fb.h); a malformed
 * model gives TS_ERR_BAD_MODEL with a message naming the tensor or operator. */
#include "ts_internal.h"

#include <float.h>
#include <string.h>

uint32_t ts_dtype_size(int32_t t) {
  switch (t) {
    case TS_FLOAT32: case TS_INT32: return 4;
    case TS_INT64: return 8;
    case TS_INT16: return 2;
    case TS_UINT8: case TS_INT8: return 1;
    default: return 0;
  }
}

ts_status_t ts_parse_tensor(ts_loader_t *L, uint32_t idx, ts_trec_t *r) {
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
    return ts_tfail(L, TS_ERR_UNSUPPORTED, idx, "has %u dimensions (at most %d)", shape.len,
                    TS_MAX_DIMS);
  int32_t type;
  FB(ts_fb_i8(fb, &t, TEN_TYPE, 0, &type));
  const uint32_t esize = ts_dtype_size(type);
  if (esize == 0)
    return ts_tfail(L, TS_ERR_UNSUPPORTED, idx, "has unsupported type %d", type);
  uint32_t bytes = esize;
  r->ndims = (uint8_t)shape.len;
  r->shape_pos = shape.pos;
  r->dtype = (uint8_t)type;
  for (uint32_t i = 0; i < shape.len; i++) {
    const int32_t d = (int32_t)ts_le32(fb->buf + shape.pos + 4 * i);
    if (d < 1)
      return ts_tfail(L, TS_ERR_BAD_MODEL, idx, "has dimension %u of size %d", i, d);
    if ((uint32_t)d > TS_MAX_TENSOR_BYTES / bytes)
      return ts_tfail(L, TS_ERR_BAD_MODEL, idx, "shape overflows (more than %u bytes)",
                      TS_MAX_TENSOR_BYTES);
    bytes *= (uint32_t)d;
  }
  r->plan.size = (uint32_t)bytes;
  const char *name;
  FB(ts_fb_string(fb, &t, TEN_NAME, &name));
  r->name_off = *name ? (uint32_t)((const uint8_t *)name - fb->buf) : 0;
  ts_fb_table_t sp;
  FB(ts_fb_subtable(fb, &t, TEN_SPARSITY, &sp, &present));
  if (present) return ts_tfail(L, TS_ERR_UNSUPPORTED, idx, "is sparse");
  /* constant data */
  uint32_t buf_idx;
  FB(ts_fb_u32(fb, &t, TEN_BUFFER, 0, &buf_idx));
  if (buf_idx >= L->buffers.len && !(buf_idx == 0 && L->buffers.len == 0))
    return ts_tfail(L, TS_ERR_BAD_MODEL, idx, "names buffer %u of %u", buf_idx,
                    L->buffers.len);
  if (buf_idx != 0) {
    FB(ts_fb_vec_table(fb, &L->buffers, buf_idx, &b));
    uint64_t off;
    FB(ts_fb_scalar(fb, &b, BUF_OFFSET, 8, &off, &present));
    if (present && off > 1)
      return ts_tfail(L, TS_ERR_UNSUPPORTED, idx,
                      "keeps its data outside the flatbuffer (offset buffers)");
    ts_fb_vec_t data;
    FB(ts_fb_vector(fb, &b, BUF_DATA, 1, &data));
    if (data.len) {
      if (data.len != r->plan.size)
        return ts_tfail(L, TS_ERR_BAD_MODEL, idx, "has %u data bytes, its shape needs %u",
                        data.len, r->plan.size);
      r->data_off = data.pos;
      if (esize > 1 && ((uintptr_t)(fb->buf + data.pos) % esize) != 0)
        return ts_tfail(L, TS_ERR_BAD_MODEL, idx,
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
        return ts_tfail(L, TS_ERR_BAD_MODEL, idx, "has %u scales but %u zero points", sc.len,
                        zp.len);
      if (sc.len > 1 && (qdim < 0 || qdim >= r->ndims || (uint32_t)DIM(r, qdim) != sc.len))
        return ts_tfail(L, TS_ERR_BAD_MODEL, idx, "has %u scales for dimension %d", sc.len,
                        qdim);
      for (uint32_t i = 0; i < sc.len; i++) {
        /* Every requantization divides by or multiplies with a scale: it must be a positive,
         * finite number (a NaN or infinite scale makes the float-to-int conversions of the
         * prepares undefined). */
        const uint32_t su = ts_le32(fb->buf + sc.pos + 4 * i);
        float s;
        memcpy(&s, &su, 4);
        if (!(s > 0.0f) || s > FLT_MAX)
          return ts_tfail(L, TS_ERR_BAD_MODEL, idx, "scale %u is not a positive finite number",
                          i);
        const uint8_t *z = fb->buf + zp.pos + 8 * i;
        const int32_t zv = (int32_t)ts_le32(z); /* an int64 within int32: its high word is
                                                  * the low word's sign */
        if ((int32_t)ts_le32(z + 4) != (zv < 0 ? -1 : 0))
          return ts_tfail(L, TS_ERR_BAD_MODEL, idx, "zero point out of range");
        /* The kernels' int32 arithmetic assumes zero points inside the element type (as
         * TFLM's Prepare checks); a larger one overflows it (found by fuzz_model). */
        if ((r->dtype == TS_INT8 && (zv < -128 || zv > 127)) ||
            (r->dtype == TS_INT16 && (zv < -32768 || zv > 32767)) ||
            (r->dtype == TS_UINT8 && (zv < 0 || zv > 255)))
          return ts_tfail(L, TS_ERR_BAD_MODEL, idx, "zero point %d outside its type's range",
                          zv);
      }
      r->num_quant = (uint16_t)sc.len;
      r->qdim = (int8_t)qdim;
      r->scales_off = sc.pos;
      r->zps_off = zp.pos;
    }
  }
  return TS_OK;
}

ts_status_t ts_op_code(ts_loader_t *L, ts_fb_table_t *op, int32_t *code, int *kind) {
  uint32_t oc;
  FB(ts_fb_vec_table(&L->fb, &L->operators, (uint32_t)L->op, op));
  FB(ts_fb_u32(&L->fb, op, OPR_OPCODE, 0, &oc));
  if (oc >= L->opcodes.len)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "names operator code %u of %u", oc, L->opcodes.len);
  ts_fb_table_t c;
  int32_t dep, bi;
  FB(ts_fb_vec_table(&L->fb, &L->opcodes, oc, &c));
  FB(ts_fb_i8(&L->fb, &c, OPC_DEPRECATED, 0, &dep));
  FB(ts_fb_i32(&L->fb, &c, OPC_BUILTIN, 0, &bi));
  /* Old models only fill the int8 deprecated code, new ones both (the deprecated one
   * saturating at 127): the real code is the larger. */
  *code = dep > bi ? dep : bi;
  if (*code < 0)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "has negative code %d", *code);
  if ((*kind = ts_op_kind(*code)) >= 0) return TS_OK;
  if (*code == 32) {
    const char *name;
    FB(ts_fb_string(&L->fb, &c, OPC_CUSTOM, &name));
    return ts_fail_op(L, TS_ERR_UNSUPPORTED, "unsupported custom op %s at operator %d", name,
                      L->op);
  }
  /* by its builtin code: the host names it (ts_opnames.h, tinyscope's Python side) */
  return ts_fail_op(L, TS_ERR_UNSUPPORTED, "unsupported op code %d at operator %d", *code,
                    L->op);
}

ts_status_t ts_options(ts_loader_t *L, const char *spec, int32_t *v, int *present) {
  ts_fb_table_t op, opt;
  FB(ts_fb_vec_table(&L->fb, &L->operators, (uint32_t)L->op, &op));
  FB(ts_fb_subtable(&L->fb, &op, OPR_OPTIONS, &opt, present));
  for (int k = 0; spec[k]; k++) {
    const int32_t dflt = spec[k] == 'I';
    v[k] = dflt;
    if (*present)
      FB(ts_fb_int(&L->fb, &opt, k, spec[k] == 'b' ? 1 : 4, dflt, &v[k]));
  }
  return TS_OK;
}
