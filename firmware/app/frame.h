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

/* Largest COBS-encoded frame (without its delimiter) the device accepts. */
#define TSP_RX_MAX (TSP_HEADER_SIZE + TSP_MAX_PAYLOAD + TSP_CRC_SIZE + \
                    (TSP_HEADER_SIZE + TSP_MAX_PAYLOAD + TSP_CRC_SIZE) / 254 + 2)

void tsp_crc_init(void);
uint32_t tsp_crc_update(uint32_t crc, const uint8_t *p, size_t n);

/* Decode the n COBS bytes in buf (n <= TSP_RX_MAX, no delimiter) in place and check
 * length, CRC and version. On LINK_OK and LINK_BAD_VERSION, *f describes the frame and
 * its payload points into buf. */
link_status_t tsp_decode_frame(uint8_t *buf, size_t n, link_frame_t *f);

#endif /* TS_FRAME_H */
