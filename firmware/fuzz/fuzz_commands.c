/*
 * libFuzzer target: the firmware's request handling (app_handle in firmware/app/main.c)
 * with the model of MODEL_DIR, fed with sequences of requests.
 *
 * Input: byte 0 chooses the mode.
 *   even: "wire" mode: the rest is the UART byte stream; frames end at 0x00 and go through
 *         the real frame decoder (COBS, CRC) first, as on the device.
 *   odd:  "raw" mode: records [type u8][seq u16][length u16][payload] go to app_handle
 *         directly, so mutations reach the request parsers past the CRC.
 * Oracles (besides ASan/UBSan): every answer is a sequence of well-formed frames (COBS,
 * CRC, length, version) carrying the request's seq (or SEQ_NONE for an untrusted frame),
 * ending in exactly one DONE or ERROR, and DONE counts the frames before it.
 */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "frame.h"
#include "fuzz_board.h"
#include "wire.h"

static uint8_t s_frame[TSP_RX_MAX];
static uint8_t s_payload[TSP_MAX_PAYLOAD];
static uint8_t s_check[TSP_RESPONSE_ENCODED_MAX]; /* answers: up to 65535-byte payloads */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* Check the firmware's answer to one request. */
static void check_answer(uint16_t seq, int trusted) {
  size_t pos = 0, frames = 0;
  int ended = 0;
  while (pos < g_fuzz_out_len) {
    const uint8_t *z = memchr(g_fuzz_out + pos, 0, g_fuzz_out_len - pos);
    if (z == NULL) abort(); /* a frame without its delimiter */
    size_t n = (size_t)(z - (g_fuzz_out + pos));
    if (n == 0 || n > sizeof s_check) abort();
    memcpy(s_check, g_fuzz_out + pos, n);
    link_frame_t f;
    if (tsp_decode_frame_max(s_check, n, TSP_MAX_RESPONSE_PAYLOAD, &f) != LINK_OK)
      abort(); /* a malformed answer */
    if (ended) abort();                                        /* frames after DONE/ERROR */
    if (f.seq != (trusted ? seq : TSP_SEQ_NONE)) abort();
    if (f.type == TSP_DONE) {
      /* the DONE layout (wire.c, the firmware's one decoder), nothing after it */
      tsp_done_t done;
      size_t used = tsp_get_done(f.payload, f.length, &done);
      if (used == 0 || used != f.length || done.frames != frames) abort();
      ended = 1;
    } else if (f.type == TSP_ERROR) {
      if (f.length < TSP_ERROR_FIXED_SIZE) abort();
      ended = 1;
    } else if (f.type < TSP_INFO || (f.type > TSP_TIMING && f.type != TSP_DIGEST)) {
      abort();
    }
    frames++;
    pos += n + 1;
  }
  if (!ended) abort(); /* every request gets an answer */
}

static void handle(link_status_t st, const link_frame_t *f) {
  g_fuzz_out_len = 0;
  app_handle(st, f);
  check_answer(f->seq, st == LINK_OK || st == LINK_BAD_VERSION);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    tsp_crc_init();
    app_init();
    ready = 1;
  }
  if (size < 1) return 0;
  /* Every input starts from a freshly reset device (RESET re-initialises the runtime). */
  static const uint8_t reset_payload[1];
  link_frame_t r = {TSP_RESET, 0, 0, reset_payload};
  handle(LINK_OK, &r);
  int raw = data[0] & 1;
  data++;
  size--;
  if (raw) {
    while (size >= 5) {
      link_frame_t f;
      size_t len = rd16(data + 3);
      if (len > size - 5) len = size - 5;
      if (len > TSP_MAX_PAYLOAD) len = TSP_MAX_PAYLOAD;
      memcpy(s_payload, data + 5, len); /* exact copy: ASan catches reads past length */
      f.type = data[0];
      f.seq = rd16(data + 1);
      f.length = (uint16_t)len;
      f.payload = s_payload;
      handle(LINK_OK, &f);
      data += 5 + len;
      size -= 5 + len;
    }
    return 0;
  }
  size_t n = 0;
  int overflow = 0;
  for (size_t i = 0; i < size; i++) {
    if (data[i] != 0) {
      if (n < sizeof s_frame) s_frame[n++] = data[i];
      else overflow = 1;
      continue;
    }
    link_frame_t f = {0, TSP_SEQ_NONE, 0, 0};
    if (overflow) {
      handle(LINK_TOO_LARGE, &f);
    } else if (n > 0) {
      link_status_t st = tsp_decode_frame(s_frame, n, &f);
      if (st != LINK_OK && st != LINK_BAD_VERSION) f.seq = TSP_SEQ_NONE;
      handle(st, &f);
    }
    n = 0;
    overflow = 0;
  }
  return 0;
}
