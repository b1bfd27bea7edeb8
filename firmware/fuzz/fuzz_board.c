/*
 * A board for the native fuzz builds: the UART's output goes to a buffer the harness
 * checks; there is no input side (the harness hands frames to app_handle directly).
 */
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "fuzz_board.h"

uint8_t g_fuzz_out[FUZZ_OUT_MAX];
size_t g_fuzz_out_len;

void board_init(void) {}

uint8_t board_uart_read(void) { abort(); /* never called: frames are handed in */ }

void board_uart_write(const uint8_t *data, size_t n) {
  if (n > FUZZ_OUT_MAX - g_fuzz_out_len) abort(); /* one answer larger than any we expect */
  memcpy(g_fuzz_out + g_fuzz_out_len, data, n);
  g_fuzz_out_len += n;
}

void board_ticks_reset(void) {}
uint64_t board_ticks(void) { return 1; }
uint32_t board_tick_hz(void) { return 1000000u; }
uint32_t board_cpu_hz(void) { return 1000003u; } /* distinct from tick_hz: a test of order */
/* Bank memory a harness may fill (app_native.c); all zero (no bank) otherwise. */
uint8_t g_fuzz_bank[FUZZ_BANK_BYTES];
const uint8_t *board_input_bank(size_t *capacity) {
  *capacity = sizeof g_fuzz_bank;
  return g_fuzz_bank;
}

board_tick_unit_t board_tick_unit(uint32_t *instructions_per_tick) {
  *instructions_per_tick = 7u;
  return BOARD_TICK_INSTRUCTIONS;
}
const char *board_name(void) { return "fuzz"; }
