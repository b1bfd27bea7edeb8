#include "link.h"

#include <string.h>

#include "board.h"
#include "wire.h"

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
  uint8_t *p = tsp_put_u8(h, TSP_VERSION);
  p = tsp_put_u8(p, type);
  p = tsp_put_u16(p, seq);
  tsp_put_u16(p, length);
  s_block_len = 0;
  s_tx_crc = tsp_crc_update(0xFFFFFFFFu, h, sizeof h);
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
  s_tx_crc = tsp_crc_update(s_tx_crc, data, n);
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
  tsp_put_u32(c, s_tx_crc ^ 0xFFFFFFFFu);
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

static uint8_t s_rx[TSP_RX_MAX];

void link_init(void) { tsp_crc_init(); }

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
    return tsp_decode_frame(s_rx, n, f);
  }
}
