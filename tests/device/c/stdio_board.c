/*
 * A board whose UART is the process's stdin/stdout, for host tests of the capture path
 * against the real firmware (tests/device/native_board.py): the firmware's own main loop
 * (link_receive: COBS, length, CRC; app_handle: every request) runs natively and the test
 * serves its stdin/stdout on a TCP port, as QEMU serves the emulated UART.
 *
 * Built by fuzz/fuzz.mk's app-native recipe with this file in place of the fuzz board,
 * app_native.c and app/main.c, which this file includes with its main() (see the end).
 * Ticks are a monotonic microsecond timer (tick_unit TIMER); there is no input bank.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, read, write under -std=c11 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "board.h"

void board_init(void) {}

uint8_t board_uart_read(void) {
  uint8_t b;
  for (;;) {
    ssize_t n = read(0, &b, 1);
    if (n == 1) return b;
    if (n == 0) exit(0); /* the host side closed: the board is switched off */
    /* n < 0: EINTR; try again */
  }
}

void board_uart_write(const uint8_t *data, size_t n) {
  while (n > 0) {
    ssize_t k = write(1, data, n);
    if (k <= 0) exit(0);
    data += k;
    n -= (size_t)k;
  }
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t s_tick0;
void board_ticks_reset(void) { s_tick0 = now_us(); }
uint64_t board_ticks(void) { return now_us() - s_tick0; }
uint32_t board_tick_hz(void) { return 1000000u; }
uint32_t board_cpu_hz(void) { return 1000000u; }

board_tick_unit_t board_tick_unit(uint32_t *instructions_per_tick) {
  *instructions_per_tick = 0u;
  return BOARD_TICK_TIMER;
}

const uint8_t *board_input_bank(size_t *capacity) {
  *capacity = 0;
  return NULL;
}

const char *board_name(void) { return "native-stdio"; }

/* The firmware's own main (board_init, link_init, app_init, then link_receive -> app_handle
 * for ever), compiled here because the app-native recipe builds main.c's handlers without
 * it (TS_APP_NO_MAIN); native_board.py leaves main.c out of the source list. */
#undef TS_APP_NO_MAIN
#include "main.c"
