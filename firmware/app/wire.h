/*
 * Payload encoders and decoders, expanded from the layouts of protocol_defs.h (generated from
 * host/tinyscope/device/protocol.py, the single definition): each layout is a struct with one
 * member per field and a put/get function writing/reading the fields in wire order. No
 * UART, no state: it builds natively, and tests/device/test_wire.py compares the native
 * firmware's bytes with the Python codecs.
 */
#ifndef TS_WIRE_H
#define TS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol_defs.h"

typedef uint8_t tsp_u8_t;
typedef uint16_t tsp_u16_t;
typedef uint32_t tsp_u32_t;
typedef int16_t tsp_i16_t;
typedef int32_t tsp_i32_t;
typedef uint32_t tsp_uvarint_t;
typedef int32_t tsp_svarint_t;
typedef uint8_t tsp_sha256_t[32];

#define TSP_MEMBER(name, type) tsp_##type##_t name;
typedef struct { TSP_INFO_FIELDS(TSP_MEMBER) } tsp_info_t;
typedef struct { TSP_TENSOR_HEAD_FIELDS(TSP_MEMBER) } tsp_tensor_head_t;
typedef struct { TSP_SET_INPUT_FIELDS(TSP_MEMBER) } tsp_set_input_t;
typedef struct { TSP_RUN_FIELDS(TSP_MEMBER) } tsp_run_t;
typedef struct { TSP_USE_INPUT_FIELDS(TSP_MEMBER) } tsp_use_input_t;
typedef struct { TSP_BANK_FIELDS(TSP_MEMBER) } tsp_bank_t;
typedef struct { TSP_TIMING_FIELDS(TSP_MEMBER) } tsp_timing_t;
typedef struct { TSP_DIGEST_FIELDS(TSP_MEMBER) } tsp_digest_t;
typedef struct { TSP_ERROR_FIELDS(TSP_MEMBER) } tsp_error_t;
typedef struct { TSP_DONE_FIELDS(TSP_MEMBER) } tsp_done_t;
#undef TSP_MEMBER

/* Largest encodings of the layouts with varints (every varint at its longest). */
#define TSP_TENSOR_HEAD_MAX (4 * TSP_VARINT_MAX + 2)
#define TSP_TIMING_MAX (3 * TSP_VARINT_MAX)
#define TSP_DIGEST_MAX (2 * TSP_VARINT_MAX)
#define TSP_DONE_MAX (1 + TSP_VARINT_MAX)

/* Encoders: write the fields at p, return the advanced pointer. */
uint8_t *tsp_put_info(uint8_t *p, const tsp_info_t *v);
uint8_t *tsp_put_tensor_head(uint8_t *p, const tsp_tensor_head_t *v);
uint8_t *tsp_put_timing(uint8_t *p, const tsp_timing_t *v);
uint8_t *tsp_put_digest(uint8_t *p, const tsp_digest_t *v);
uint8_t *tsp_put_error(uint8_t *p, const tsp_error_t *v);
uint8_t *tsp_put_done(uint8_t *p, const tsp_done_t *v);

/* Decoders: read the fields from p[0..n); return the bytes read, or 0 if they do not fit
 * or a varint is malformed. */
size_t tsp_get_set_input(const uint8_t *p, size_t n, tsp_set_input_t *v);
size_t tsp_get_run(const uint8_t *p, size_t n, tsp_run_t *v);
size_t tsp_get_use_input(const uint8_t *p, size_t n, tsp_use_input_t *v);
size_t tsp_get_bank(const uint8_t *p, size_t n, tsp_bank_t *v);
size_t tsp_get_done(const uint8_t *p, size_t n, tsp_done_t *v);

/* Field writers and readers (little-endian; LEB128 varints, zigzag for svarint). */
uint8_t *tsp_put_u8(uint8_t *p, uint8_t v);
uint8_t *tsp_put_u16(uint8_t *p, uint16_t v);
uint8_t *tsp_put_u32(uint8_t *p, uint32_t v);
uint8_t *tsp_put_i16(uint8_t *p, int16_t v);
uint8_t *tsp_put_i32(uint8_t *p, int32_t v);
uint8_t *tsp_put_sha256(uint8_t *p, const uint8_t v[32]);
uint8_t *tsp_put_uvarint(uint8_t *p, uint32_t v);
uint8_t *tsp_put_svarint(uint8_t *p, int32_t v);
/* The one varint decoder: the uvarint at p[0..n) into *v; bytes read, 0 if malformed
 * (runs past n, longer than TSP_VARINT_MAX bytes or above 2^32 - 1). */
size_t tsp_get_uvarint(const uint8_t *p, size_t n, uint32_t *v);

#endif /* TS_WIRE_H */
