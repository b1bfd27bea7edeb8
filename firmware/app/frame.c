#include "frame.h"

#include <string.h>

static uint32_t s_crc_table[256];

void tsp_crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    s_crc_table[i] = c;
  }
}

uint32_t tsp_crc_update(uint32_t crc, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) crc = s_crc_table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return crc;
}

/* Decode COBS in place; returns the decoded length or -1. The output never overtakes the
 * input (each block of `code` input bytes yields at most `code` output bytes). */
static int cobs_decode(uint8_t *buf, size_t n) {
  size_t in = 0, out = 0;
  while (in < n) {
    uint8_t code = buf[in];
    if (code == 0 || code > n - in) return -1;
    memmove(buf + out, buf + in + 1, code - 1u);
    out += code - 1u;
    in += code;
    if (code != 0xFF && in < n) buf[out++] = 0;
  }
  return (int)out;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

link_status_t tsp_decode_frame(uint8_t *buf, size_t n, link_frame_t *f) {
  return tsp_decode_frame_max(buf, n, TSP_MAX_PAYLOAD, f);
}

link_status_t tsp_decode_frame_max(uint8_t *buf, size_t n, size_t max_payload,
                                   link_frame_t *f) {
  if (n > TSP_ENCODED_MAX(max_payload)) return LINK_TOO_LARGE;
  int len = cobs_decode(buf, n);
  if (len < TSP_HEADER_SIZE + TSP_CRC_SIZE) return LINK_BAD_FRAME;
  size_t body = (size_t)len - TSP_CRC_SIZE;
  uint32_t crc = tsp_crc_update(0xFFFFFFFFu, buf, body) ^ 0xFFFFFFFFu;
  if (crc != rd32(buf + body)) return LINK_BAD_FRAME;
  uint16_t length = rd16(buf + 4);
  if (length != body - TSP_HEADER_SIZE || length > max_payload) return LINK_BAD_FRAME;
  f->type = buf[1];
  f->seq = rd16(buf + 2);
  f->length = length;
  f->payload = buf + TSP_HEADER_SIZE;
  if (buf[0] != TSP_VERSION) return LINK_BAD_VERSION;
  return LINK_OK;
}
