#include "wire.h"

#include <string.h>

uint8_t *tsp_put_u8(uint8_t *p, uint8_t v) {
  p[0] = v;
  return p + 1;
}
uint8_t *tsp_put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  return p + 2;
}
uint8_t *tsp_put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
  return p + 4;
}
uint8_t *tsp_put_i16(uint8_t *p, int16_t v) { return tsp_put_u16(p, (uint16_t)v); }
uint8_t *tsp_put_i32(uint8_t *p, int32_t v) { return tsp_put_u32(p, (uint32_t)v); }
uint8_t *tsp_put_sha256(uint8_t *p, const uint8_t v[32]) {
  memcpy(p, v, 32);
  return p + 32;
}
uint8_t *tsp_put_uvarint(uint8_t *p, uint32_t v) {
  while (v >= 0x80u) {
    *p++ = (uint8_t)(v | 0x80u);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}
uint8_t *tsp_put_svarint(uint8_t *p, int32_t v) {
  return tsp_put_uvarint(p, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31)); /* zigzag */
}

size_t tsp_get_uvarint(const uint8_t *p, size_t n, uint32_t *v) {
  uint32_t value = 0;
  for (size_t i = 0; i < TSP_VARINT_MAX && i < n; i++) {
    uint8_t b = p[i];
    if (i == TSP_VARINT_MAX - 1 && b > 0x0Fu) return 0; /* above 2^32 - 1 (or too long) */
    value |= (uint32_t)(b & 0x7Fu) << (7 * i);
    if (!(b & 0x80u)) {
      *v = value;
      return i + 1;
    }
  }
  return 0;
}

static size_t get_u8(const uint8_t *p, size_t n, uint8_t *v) {
  if (n < 1) return 0;
  *v = p[0];
  return 1;
}
static size_t get_u16(const uint8_t *p, size_t n, uint16_t *v) {
  if (n < 2) return 0;
  *v = (uint16_t)(p[0] | (p[1] << 8));
  return 2;
}
static size_t get_u32(const uint8_t *p, size_t n, uint32_t *v) {
  if (n < 4) return 0;
  *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  return 4;
}
static size_t get_uvarint(const uint8_t *p, size_t n, uint32_t *v) {
  return tsp_get_uvarint(p, n, v);
}

#define TSP_PUT(name, type) p = tsp_put_##type(p, v->name);
#define TSP_GET(name, type)                                 \
  {                                                         \
    size_t k = get_##type(p + used, n - used, &v->name);    \
    if (k == 0) return 0;                                   \
    used += k;                                              \
  }

uint8_t *tsp_put_info(uint8_t *p, const tsp_info_t *v) {
  TSP_INFO_FIELDS(TSP_PUT)
  return p;
}
uint8_t *tsp_put_tensor_head(uint8_t *p, const tsp_tensor_head_t *v) {
  TSP_TENSOR_HEAD_FIELDS(TSP_PUT)
  return p;
}
uint8_t *tsp_put_timing(uint8_t *p, const tsp_timing_t *v) {
  TSP_TIMING_FIELDS(TSP_PUT)
  return p;
}
uint8_t *tsp_put_digest(uint8_t *p, const tsp_digest_t *v) {
  TSP_DIGEST_FIELDS(TSP_PUT)
  return p;
}
uint8_t *tsp_put_error(uint8_t *p, const tsp_error_t *v) {
  TSP_ERROR_FIELDS(TSP_PUT)
  return p;
}
uint8_t *tsp_put_done(uint8_t *p, const tsp_done_t *v) {
  TSP_DONE_FIELDS(TSP_PUT)
  return p;
}

size_t tsp_get_set_input(const uint8_t *p, size_t n, tsp_set_input_t *v) {
  size_t used = 0;
  TSP_SET_INPUT_FIELDS(TSP_GET)
  return used;
}
size_t tsp_get_run(const uint8_t *p, size_t n, tsp_run_t *v) {
  size_t used = 0;
  TSP_RUN_FIELDS(TSP_GET)
  return used;
}
size_t tsp_get_use_input(const uint8_t *p, size_t n, tsp_use_input_t *v) {
  size_t used = 0;
  TSP_USE_INPUT_FIELDS(TSP_GET)
  return used;
}
size_t tsp_get_bank(const uint8_t *p, size_t n, tsp_bank_t *v) {
  size_t used = 0;
  TSP_BANK_FIELDS(TSP_GET)
  return used;
}
size_t tsp_get_done(const uint8_t *p, size_t n, tsp_done_t *v) {
  size_t used = 0;
  TSP_DONE_FIELDS(TSP_GET)
  return used;
}
