/*
 * libFuzzer target: the firmware's frame decoder (COBS, length, CRC-32, version) on
 * arbitrary bytes. Oracles: ASan/UBSan, and for an accepted frame: its payload lies inside
 * the buffer, its length field matches, and the CRC recomputed over header + payload equals
 * the one on the wire.
 */
#include <stdlib.h>
#include <string.h>

#include "frame.h"

static uint8_t s_buf[TSP_RX_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    tsp_crc_init();
    ready = 1;
  }
  if (size > TSP_RX_MAX || memchr(data, 0, size) != NULL) return 0; /* not one frame */
  /* Put the frame at the end of the buffer so ASan sees any read past it. */
  uint8_t *buf = s_buf + (TSP_RX_MAX - size);
  memcpy(buf, data, size);
  link_frame_t f;
  link_status_t st = tsp_decode_frame(buf, size, &f);
  if (st == LINK_OK || st == LINK_BAD_VERSION) {
    const uint8_t *end = s_buf + TSP_RX_MAX;
    if (f.length > TSP_MAX_PAYLOAD) abort();
    if (f.payload != buf + TSP_HEADER_SIZE || f.payload + f.length + TSP_CRC_SIZE > end) abort();
    uint32_t crc = tsp_crc_update(0xFFFFFFFFu, buf, TSP_HEADER_SIZE + f.length) ^ 0xFFFFFFFFu;
    const uint8_t *c = f.payload + f.length;
    uint32_t wire = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 |
                    (uint32_t)c[3] << 24;
    if (crc != wire) abort();
    if ((st == LINK_OK) != (buf[0] == TSP_VERSION)) abort();
  }
  return 0;
}
