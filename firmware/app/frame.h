/*
 * The pure part of the frame layer: CRC-32 and the decoding of one received frame.
 * No UART, no global state besides the CRC table: it builds natively for the fuzzers
 * (firmware/fuzz/fuzz_frame.c) exactly as it runs on the device.
 */
#ifndef TS_FRAME_H
#define TS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "protocol_defs.h"

typedef struct {
  uint8_t type;
  uint16_t seq;
  uint16_t length;
  const uint8_t *payload; /* inside the decoded buffer; valid until it is reused */
} link_frame_t;

typedef enum {
  LINK_OK = 0,
  LINK_BAD_FRAME,   /* COBS / length / CRC failure: header not trustworthy */
  LINK_TOO_LARGE,   /* more bytes than the receive buffer holds before the delimiter */
  LINK_BAD_VERSION  /* CRC fine, but another protocol version (frame->seq is valid) */
} link_status_t;

/* Largest COBS encoding (without its delimiter) of a frame with `payload` bytes. */
#define TSP_ENCODED_MAX(payload) (TSP_HEADER_SIZE + (payload) + TSP_CRC_SIZE + \
                                  (TSP_HEADER_SIZE + (payload) + TSP_CRC_SIZE) / 254 + 2)
/* Largest COBS-encoded frame (without its delimiter) the device accepts: a request. */
#define TSP_RX_MAX TSP_ENCODED_MAX(TSP_MAX_PAYLOAD)
/* Largest COBS-encoded response (the device streams them; only a checker buffers one). */
#define TSP_RESPONSE_ENCODED_MAX TSP_ENCODED_MAX(TSP_MAX_RESPONSE_PAYLOAD)

void tsp_crc_init(void);
uint32_t tsp_crc_update(uint32_t crc, const uint8_t *p, size_t n);

/* Decode the n COBS bytes in buf (n <= TSP_RX_MAX, no delimiter) in place and check
 * length, CRC and version. On LINK_OK and LINK_BAD_VERSION, *f describes the frame and
 * its payload points into buf. */
link_status_t tsp_decode_frame(uint8_t *buf, size_t n, link_frame_t *f);
/* The same for a frame of up to max_payload payload bytes (n <= TSP_ENCODED_MAX(max_payload));
 * tsp_decode_frame is this with the request limit TSP_MAX_PAYLOAD. */
link_status_t tsp_decode_frame_max(uint8_t *buf, size_t n, size_t max_payload,
                                   link_frame_t *f);

#endif /* TS_FRAME_H */
