/*
 * The firmware's request handler (app/main.c) as a native program, for byte-exact tests of
 * its answers without an emulator (tests/device/test_wire.py): requests come on stdin as
 * records [u8 type][u16 seq][u16 length][payload], the answers' wire bytes (COBS frames)
 * go to stdout. The board is fuzz_board.c: every tick count is 1, INFO's clocks and tick
 * unit are fixed, distinct values. An optional argument names an input bank file (BANK head +
 * inputs, protocol.input_bank) placed in the native board's bank memory before app_init.
 */
#include <stdio.h>
#include <stdlib.h>

#include "app.h"
#include "frame.h"
#include "fuzz_board.h"

static uint8_t s_payload[TSP_MAX_PAYLOAD];

int main(int argc, char **argv) {
  if (argc > 1) {
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) return 4;
    size_t n = fread(g_fuzz_bank, 1, sizeof g_fuzz_bank, f);
    fclose(f);
    if (n == 0) return 4;
  }
  tsp_crc_init();
  app_init();
  for (;;) {
    uint8_t h[5];
    if (fread(h, 1, sizeof h, stdin) != sizeof h) return 0;
    link_frame_t f = {h[0], (uint16_t)(h[1] | h[2] << 8), (uint16_t)(h[3] | h[4] << 8), s_payload};
    if (f.length > sizeof s_payload || fread(s_payload, 1, f.length, stdin) != f.length) {
      fprintf(stderr, "app_native: bad request record\n");
      return 2;
    }
    g_fuzz_out_len = 0;
    app_handle(LINK_OK, &f);
    if (fwrite(g_fuzz_out, 1, g_fuzz_out_len, stdout) != g_fuzz_out_len) return 3;
    fflush(stdout);
  }
}
