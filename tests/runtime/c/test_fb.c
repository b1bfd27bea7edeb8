/* Unit tests of the bounds-checked FlatBuffers reader (firmware/runtime/src/ts_fb.c), built
 * with the host compiler (and ASan + UBSan) by tests/runtime/test_native_units.py.
 *
 * A small buffer is laid out by hand (root table with an int32, an int8, an absent field, a
 * sub-table, a byte vector, a string and a vector of tables). Every reader must return the
 * written values; on every truncation of the buffer and on every single-byte change it must
 * either succeed or return -1 with bad_offset set, and never read outside the buffer (the
 * buffer is copied into an allocation of exactly its size, so ASan sees any overread). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_fb.h"

static int failures;
#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "test_fb.c:%d: check failed: %s\n", __LINE__, #cond); \
      failures++;                                                            \
    }                                                                        \
  } while (0)

enum {
  ROOT_VT = 4,     /* root vtable: 4 + 2 * 7 fields = 18 bytes */
  ROOT = 24,       /* root table: soffset, i32 @4, i8 @8, sub @12, bytes @16, name @20, list @24 */
  ROOT_SIZE = 28,
  LIST = 52,       /* vector of 2 tables: SUB and SUB2 (uoffsets only point forward) */
  BYTES = 64,      /* vector<u8> [1, 2, 3] */
  NAME = 72,       /* string "hello" */
  SUB_VT = 84,     /* sub-table vtable: 4 + 2 = 6 bytes */
  SUB = 92,        /* sub-table: soffset, u32 @4 */
  SUB2 = 100,      /* a second table sharing SUB_VT */
  SIZE = 108,
};

static uint8_t model[SIZE];

static void put16(uint32_t at, uint16_t v) {
  model[at] = (uint8_t)v;
  model[at + 1] = (uint8_t)(v >> 8);
}
static void put32(uint32_t at, uint32_t v) {
  for (int i = 0; i < 4; i++) model[at + (uint32_t)i] = (uint8_t)(v >> (8 * i));
}
static void uoffset(uint32_t at, uint32_t target) { put32(at, target - at); }

static void build(void) {
  memset(model, 0, sizeof model);
  put32(0, ROOT);
  put16(ROOT_VT, 18);
  put16(ROOT_VT + 2, ROOT_SIZE);
  const uint16_t fields[7] = {4, 8, 0, 12, 16, 20, 24}; /* field 2 absent */
  for (int i = 0; i < 7; i++) put16(ROOT_VT + 4 + 2 * (uint32_t)i, fields[i]);
  put32(ROOT, ROOT - ROOT_VT);       /* soffset: vtable = table - soffset */
  put32(ROOT + 4, (uint32_t)-123456); /* field 0: int32 */
  model[ROOT + 8] = (uint8_t)-5;     /* field 1: int8 */
  uoffset(ROOT + 12, SUB);
  uoffset(ROOT + 16, BYTES);
  uoffset(ROOT + 20, NAME);
  uoffset(ROOT + 24, LIST);
  put32(BYTES, 3);
  model[BYTES + 4] = 1, model[BYTES + 5] = 2, model[BYTES + 6] = 3;
  put32(NAME, 5);
  memcpy(model + NAME + 4, "hello", 6);
  put16(SUB_VT, 6);
  put16(SUB_VT + 2, 8);
  put16(SUB_VT + 4, 4);
  put32(SUB, SUB - SUB_VT);
  put32(SUB + 4, 0xdeadbeefu);
  put32(LIST, 2);
  uoffset(LIST + 4, SUB);
  uoffset(LIST + 8, SUB2);
  put32(SUB2, SUB2 - SUB_VT);
  put32(SUB2 + 4, 7);
}

/* Read everything; 0 if every read succeeded (values checked when `expect`), -1 at the
 * first failed read (then bad_offset must be set inside or just past the buffer). */
static int read_all(const uint8_t *buf, uint32_t size, int expect) {
  ts_fb_t fb = {buf, size, 0};
  ts_fb_table_t root, sub, item;
  int32_t i32, i8, absent;
  uint32_t u32;
  int present;
  ts_fb_vec_t bytes, list;
  const char *name;
  if (ts_fb_root(&fb, &root) || ts_fb_i32(&fb, &root, 0, 0, &i32) ||
      ts_fb_i8(&fb, &root, 1, 0, &i8) || ts_fb_i32(&fb, &root, 2, 42, &absent) ||
      ts_fb_subtable(&fb, &root, 3, &sub, &present) ||
      (present && ts_fb_u32(&fb, &sub, 0, 0, &u32)) ||
      ts_fb_vector(&fb, &root, 4, 1, &bytes) || ts_fb_string(&fb, &root, 5, &name) ||
      ts_fb_vector(&fb, &root, 6, 4, &list))
    return -1;
  for (uint32_t i = 0; i < list.len; i++) {
    uint32_t v;
    if (ts_fb_vec_table(&fb, &list, i, &item) || ts_fb_u32(&fb, &item, 0, 0, &v)) return -1;
    if (expect) CHECK(v == (i == 0 ? 0xdeadbeefu : 7u));
  }
  if (expect) {
    CHECK(i32 == -123456);
    CHECK(i8 == -5);
    CHECK(absent == 42); /* absent field: the default */
    CHECK(present && u32 == 0xdeadbeefu);
    CHECK(bytes.len == 3 && buf[bytes.pos] == 1 && buf[bytes.pos + 2] == 3);
    CHECK(strcmp(name, "hello") == 0);
    CHECK(list.len == 2);
    int32_t beyond; /* a field id past the vtable (an older schema): the default */
    CHECK(ts_fb_i32(&fb, &sub, 5, -1, &beyond) == 0 && beyond == -1);
    CHECK(ts_fb_vec_table(&fb, &list, 2, &item) == -1); /* index past the end */
  }
  return 0;
}

static int read_copy(uint32_t size, int *bad_set) {
  uint8_t *copy = malloc(size ? size : 1);
  memcpy(copy, model, size);
  ts_fb_t probe = {copy, size, 0xffffffffu};
  ts_fb_table_t root;
  const int rc = read_all(copy, size, 0);
  /* bad_offset is written by the failing read; check it on the root read at least */
  if (ts_fb_root(&probe, &root)) *bad_set = probe.bad_offset != 0xffffffffu;
  free(copy);
  return rc;
}

static void test_reads_the_written_values(void) {
  build();
  CHECK(read_all(model, SIZE, 1) == 0);
}

static void test_every_truncation_fails_cleanly(void) {
  build();
  for (uint32_t size = 0; size < SIZE; size++) {
    int bad_set = 1;
    /* SUB2 ends the buffer and is read last: every shorter buffer must fail */
    if (read_copy(size, &bad_set) == 0) {
      fprintf(stderr, "test_fb.c: a buffer cut to %u bytes was read without error\n", size);
      failures++;
    }
    CHECK(bad_set);
  }
}

static void test_every_byte_change_is_read_safely(void) {
  /* Each of the 256 values at each position: the reader may accept or refuse, but reads
   * stay inside the buffer (ASan) and integer maths stays defined (UBSan). */
  for (uint32_t pos = 0; pos < SIZE; pos++) {
    for (int v = 0; v < 256; v++) {
      build();
      model[pos] = (uint8_t)v;
      int bad_set;
      (void)read_copy(SIZE, &bad_set);
    }
  }
}

static void test_offsets_that_wrap_are_refused(void) {
  build();
  put32(ROOT, 0x80000000u); /* soffset pointing below address 0 */
  ts_fb_t fb = {model, SIZE, 0};
  ts_fb_table_t root;
  CHECK(ts_fb_root(&fb, &root) == -1 && fb.bad_offset == ROOT);
  build();
  put32(BYTES, 0x40000001u); /* vector length * 4 past 2^32 */
  ts_fb_t fb2 = {model, SIZE, 0};
  ts_fb_vec_t v;
  CHECK(ts_fb_root(&fb2, &root) == 0);
  CHECK(ts_fb_vector(&fb2, &root, 4, 4, &v) == -1);
  build();
  model[NAME + 4 + 5] = '!'; /* string without its NUL */
  ts_fb_t fb3 = {model, SIZE, 0};
  const char *s;
  CHECK(ts_fb_root(&fb3, &root) == 0);
  CHECK(ts_fb_string(&fb3, &root, 5, &s) == -1 && fb3.bad_offset == NAME + 4 + 5);
}

int main(void) {
  test_reads_the_written_values();
  test_every_truncation_fails_cleanly();
  test_every_byte_change_is_read_safely();
  test_offsets_that_wrap_are_refused();
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("test_fb: all checks passed\n");
  return failures != 0;
}
