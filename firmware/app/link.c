#include "link.h"

#include <string.h>

#include "board.h"

/* ---- CRC-32 (IEEE 802.3, reflected, as zlib.crc32) */

static uint32_t s_crc_table[256];

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    s_crc_table[i] = c;
  }
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) crc = s_crc_table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return crc;
}

/* ---- little-endian helpers */

uint8_t *put_u8(uint8_t *p, uint8_t v) {
  p[0] = v;
  return p + 1;
}
uint8_t *put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  return p + 2;
}
uint8_t *put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
  return p + 4;
}
uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- sending: streaming COBS */

static uint8_t s_block[255]; /* s_block[0] is the code byte */
static uint32_t s_block_len;  /* data bytes in s_block[1..] */
static uint32_t s_tx_crc;
static uint32_t s_tx_left;
static int s_tx_bad;

static void cobs_flush(uint8_t code) {
  s_block[0] = code;
  board_uart_write(s_block, s_block_len + 1u);
  s_block_len = 0;
}

static void cobs_put(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] == 0) {
      cobs_flush((uint8_t)(s_block_len + 1u));
    } else {
      s_block[1u + s_block_len++] = p[i];
      if (s_block_len == 254u) cobs_flush(0xFF);
    }
  }
}

void link_begin(uint8_t type, uint16_t seq, uint16_t length) {
  uint8_t h[TSP_HEADER_SIZE];
  uint8_t *p = put_u8(h, TSP_VERSION);
  p = put_u8(p, type);
  p = put_u16(p, seq);
  put_u16(p, length);
  s_block_len = 0;
  s_tx_crc = crc_update(0xFFFFFFFFu, h, sizeof h);
  s_tx_left = length;
  s_tx_bad = 0;
  cobs_put(h, sizeof h);
}

void link_write(const void *data, size_t n) {
  if (n > s_tx_left) {
    s_tx_bad = 1;
    n = s_tx_left;
  }
  s_tx_left -= (uint32_t)n;
  s_tx_crc = crc_update(s_tx_crc, data, n);
  cobs_put(data, n);
}

int link_end(void) {
  if (s_tx_left != 0) {
    /* Keep the frame well-formed for the host: pad; the CRC covers the padding. */
    static const uint8_t zeros[16];
    s_tx_bad = 1;
    while (s_tx_left) link_write(zeros, s_tx_left < sizeof zeros ? s_tx_left : sizeof zeros);
  }
  uint8_t c[TSP_CRC_SIZE];
  put_u32(c, s_tx_crc ^ 0xFFFFFFFFu);
  cobs_put(c, sizeof c);
  cobs_flush((uint8_t)(s_block_len + 1u));
  static const uint8_t delim = 0;
  board_uart_write(&delim, 1);
  return s_tx_bad ? -1 : 0;
}

void link_send(uint8_t type, uint16_t seq, const void *payload, uint16_t length) {
  link_begin(type, seq, length);
  link_write(payload, length);
  (void)link_end();
}

/* ---- receiving */

#define RX_MAX (TSP_HEADER_SIZE + TSP_MAX_PAYLOAD + TSP_CRC_SIZE + \
                (TSP_HEADER_SIZE + TSP_MAX_PAYLOAD + TSP_CRC_SIZE) / 254 + 2)

static uint8_t s_rx[RX_MAX];

void link_init(void) { crc_init(); }

/* Decode COBS in place; returns the decoded length or -1. */
static int cobs_decode(uint8_t *buf, size_t n) {
  size_t in = 0, out = 0;
  while (in < n) {
    uint8_t code = buf[in];
    if (code == 0 || in + code > n) return -1;
    memmove(buf + out, buf + in + 1, code - 1u);
    out += code - 1u;
    in += code;
    if (code != 0xFF && in < n) buf[out++] = 0;
  }
  return (int)out;
}

link_status_t link_receive(link_frame_t *f) {
  for (;;) {
    size_t n = 0;
    int overflow = 0;
    for (;;) {
      uint8_t b = board_uart_read();
      if (b == 0) break;
      if (n < sizeof s_rx) {
        s_rx[n++] = b;
      } else {
        overflow = 1;
      }
    }
    if (overflow) return LINK_TOO_LARGE;
    if (n == 0) continue; /* empty frame: the host flushes with a lone delimiter */
    int len = cobs_decode(s_rx, n);
    if (len < TSP_HEADER_SIZE + TSP_CRC_SIZE) return LINK_BAD_FRAME;
    size_t body = (size_t)len - TSP_CRC_SIZE;
    uint32_t crc = crc_update(0xFFFFFFFFu, s_rx, body) ^ 0xFFFFFFFFu;
    if (crc != get_u32(s_rx + body)) return LINK_BAD_FRAME;
    uint16_t length = get_u16(s_rx + 4);
    if (length != body - TSP_HEADER_SIZE) return LINK_BAD_FRAME;
    f->type = s_rx[1];
    f->seq = get_u16(s_rx + 2);
    f->length = length;
    f->payload = s_rx + TSP_HEADER_SIZE;
    if (s_rx[0] != TSP_VERSION) return LINK_BAD_VERSION;
    return LINK_OK;
  }
}
