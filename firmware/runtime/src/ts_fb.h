/*
 * A bounds-checked reader for the subset of FlatBuffers that TFLite models use.
 * The model bytes are untrusted: every function checks that what it reads lies inside
 * the buffer (and inside the table's declared size for table fields) and returns -1
 * otherwise, recording the offending offset in fb->bad_offset. Multi-byte values are read
 * little-endian with memcpy (one unaligned LDR on the Cortex-M4, whose UNALIGN_TRP is left
 * clear; bytes assembled on a big-endian host), so the buffer needs no alignment.
 */
#ifndef TS_FB_H
#define TS_FB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  const uint8_t *buf;
  uint32_t size;
  uint32_t bad_offset; /* where the first failed read pointed */
} ts_fb_t;

typedef struct {
  uint32_t pos;      /* start of the table (its soffset to the vtable) */
  uint32_t vt;       /* start of the vtable */
  uint16_t vt_size;  /* bytes of vtable */
  uint16_t tbl_size; /* bytes of table inline data */
} ts_fb_table_t;

typedef struct {
  uint32_t pos; /* first element; 0 when the field is absent */
  uint32_t len; /* number of elements */
} ts_fb_vec_t;

static inline uint32_t ts_le32(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint32_t v; /* one (unaligned) load on little-endian targets, e.g. LDR on a Cortex-M4 */
  __builtin_memcpy(&v, p, 4); /* not a libc call under -ffreestanding */
  return v;
#else
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
#endif
}

int ts_fb_root(ts_fb_t *fb, ts_fb_table_t *root);
int ts_fb_table_at(ts_fb_t *fb, uint32_t pos, ts_fb_table_t *t);
/* Scalar field `id` (0-based) of `width` bytes: *present = 0 and nothing read if absent. */
int ts_fb_scalar(ts_fb_t *fb, const ts_fb_table_t *t, int id, uint32_t width, uint64_t *value,
                 int *present);
/* Signed integer field of `width` bytes (1 or 4), sign-extended; dflt if absent. */
int ts_fb_int(ts_fb_t *fb, const ts_fb_table_t *t, int id, uint32_t width, int32_t dflt,
              int32_t *out);
static inline int ts_fb_i32(ts_fb_t *fb, const ts_fb_table_t *t, int id, int32_t dflt,
                            int32_t *out) {
  return ts_fb_int(fb, t, id, 4, dflt, out);
}
static inline int ts_fb_i8(ts_fb_t *fb, const ts_fb_table_t *t, int id, int32_t dflt,
                           int32_t *out) {
  return ts_fb_int(fb, t, id, 1, dflt, out);
}
static inline int ts_fb_u32(ts_fb_t *fb, const ts_fb_table_t *t, int id, uint32_t dflt,
                            uint32_t *out) { /* (an int32 read: the bits are the same) */
  return ts_fb_i32(fb, t, id, (int32_t)dflt, (int32_t *)(void *)out);
}
/* Sub-table field; *present = 0 if absent. */
int ts_fb_subtable(ts_fb_t *fb, const ts_fb_table_t *t, int id, ts_fb_table_t *sub,
                   int *present);
/* Vector field with elements of elem_size bytes (4 for offsets to tables). */
int ts_fb_vector(ts_fb_t *fb, const ts_fb_table_t *t, int id, uint32_t elem_size,
                 ts_fb_vec_t *v);
/* Element i of a vector of tables. */
int ts_fb_vec_table(ts_fb_t *fb, const ts_fb_vec_t *v, uint32_t i, ts_fb_table_t *t);
/* String field: NUL-terminated inside the buffer; "" if absent. */
int ts_fb_string(ts_fb_t *fb, const ts_fb_table_t *t, int id, const char **s);

#endif /* TS_FB_H */
