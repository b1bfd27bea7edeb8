/* Bounds-checked FlatBuffers reader; see ts_fb.h. */
#include "ts_fb.h"

#include <string.h>

static int bad(ts_fb_t *fb, uint64_t off) {
  fb->bad_offset = off > 0xffffffffu ? 0xffffffffu : (uint32_t)off;
  return -1;
}

/* [pos, pos + n) inside the buffer? */
static int has(ts_fb_t *fb, uint64_t pos, uint64_t n) {
  if (pos > fb->size || n > (uint64_t)fb->size - pos) return bad(fb, pos);
  return 0;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

int ts_fb_table_at(ts_fb_t *fb, uint32_t pos, ts_fb_table_t *t) {
  if (has(fb, pos, 4)) return -1;
  const int32_t soff = (int32_t)ts_le32(fb->buf + pos);
  const uint32_t vt = pos - (uint32_t)soff; /* refused if it wrapped below 0 or past 2^32 */
  if ((soff > 0 ? (uint32_t)soff > pos : vt < pos) || has(fb, vt, 4)) return bad(fb, pos);
  const uint16_t vt_size = le16(fb->buf + vt);
  const uint16_t tbl_size = le16(fb->buf + vt + 2);
  if (vt_size < 4 || (vt_size & 1) || has(fb, vt, vt_size)) return bad(fb, vt);
  if (tbl_size < 4 || has(fb, pos, tbl_size)) return bad(fb, pos);
  t->pos = pos;
  t->vt = vt;
  t->vt_size = vt_size;
  t->tbl_size = tbl_size;
  return 0;
}

int ts_fb_root(ts_fb_t *fb, ts_fb_table_t *root) {
  if (has(fb, 0, 8)) return -1;
  return ts_fb_table_at(fb, ts_le32(fb->buf), root);
}

/* Position of field `id` with `width` bytes, 0 if absent; -1 if it leaves the table. */
static int field_pos(ts_fb_t *fb, const ts_fb_table_t *t, int id, uint32_t width,
                     uint32_t *pos) {
  const uint32_t slot = 4u + 2u * (uint32_t)id;
  *pos = 0;
  if (slot + 2u > t->vt_size) return 0; /* field not in this (older) vtable */
  const uint16_t off = le16(fb->buf + t->vt + slot);
  if (off == 0) return 0;
  if ((uint32_t)off + width > t->tbl_size) return bad(fb, (uint64_t)t->pos + off);
  *pos = t->pos + off;
  return 0;
}

int ts_fb_scalar(ts_fb_t *fb, const ts_fb_table_t *t, int id, uint32_t width, uint64_t *value,
                 int *present) {
  uint32_t pos;
  if (field_pos(fb, t, id, width, &pos)) return -1;
  uint8_t b[8] = {0};
  if (width > sizeof b) return bad(fb, pos);
  *present = pos != 0;
  if (pos) memcpy(b, fb->buf + pos, width);
  *value = ts_le32(b) | (uint64_t)ts_le32(b + 4) << 32;
  return 0;
}

int ts_fb_int(ts_fb_t *fb, const ts_fb_table_t *t, int id, uint32_t width, int32_t dflt,
              int32_t *out) {
  uint64_t v;
  int present;
  if (ts_fb_scalar(fb, t, id, width, &v, &present)) return -1;
  *out = !present ? dflt : width == 1 ? (int32_t)(int8_t)(uint8_t)v : (int32_t)(uint32_t)v;
  return 0;
}

/* Follow the uoffset stored in field `id`; *target = 0 if absent. */
static int follow(ts_fb_t *fb, const ts_fb_table_t *t, int id, uint32_t *target) {
  uint32_t pos;
  if (field_pos(fb, t, id, 4, &pos)) return -1;
  *target = 0;
  if (!pos) return 0;
  const uint64_t tgt = (uint64_t)pos + ts_le32(fb->buf + pos);
  if (has(fb, tgt, 4)) return -1;
  *target = (uint32_t)tgt;
  return 0;
}

int ts_fb_subtable(ts_fb_t *fb, const ts_fb_table_t *t, int id, ts_fb_table_t *sub,
                   int *present) {
  uint32_t tgt;
  if (follow(fb, t, id, &tgt)) return -1;
  *present = tgt != 0;
  if (!tgt) return 0;
  return ts_fb_table_at(fb, tgt, sub);
}

int ts_fb_vector(ts_fb_t *fb, const ts_fb_table_t *t, int id, uint32_t elem_size,
                 ts_fb_vec_t *v) {
  uint32_t tgt;
  v->pos = 0;
  v->len = 0;
  if (follow(fb, t, id, &tgt)) return -1;
  if (!tgt) return 0;
  const uint32_t len = ts_le32(fb->buf + tgt);
  if (has(fb, (uint64_t)tgt + 4, (uint64_t)len * elem_size)) return -1;
  v->pos = tgt + 4;
  v->len = len;
  return 0;
}

int ts_fb_vec_table(ts_fb_t *fb, const ts_fb_vec_t *v, uint32_t i, ts_fb_table_t *t) {
  if (i >= v->len) return bad(fb, v->pos);
  const uint32_t at = v->pos + 4u * i;
  const uint64_t tgt = (uint64_t)at + ts_le32(fb->buf + at);
  if (tgt > fb->size) return bad(fb, tgt);
  return ts_fb_table_at(fb, (uint32_t)tgt, t);
}

int ts_fb_string(ts_fb_t *fb, const ts_fb_table_t *t, int id, const char **s) {
  ts_fb_vec_t v;
  *s = "";
  if (ts_fb_vector(fb, t, id, 1, &v)) return -1;
  if (!v.pos) return 0;
  if (has(fb, v.pos, (uint64_t)v.len + 1) || fb->buf[v.pos + v.len] != 0)
    return bad(fb, (uint64_t)v.pos + v.len);
  *s = (const char *)fb->buf + v.pos;
  return 0;
}
