/*
 * The board port: the only things the tinyscope firmware needs from a board.
 * One folder per board (firmware/boards/<board>/) implements these functions and
 * provides its startup code, linker script and board.mk (compiler flags, sources).
 */
#ifndef TS_BOARD_H
#define TS_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Clocks, UART and the tick counter. Called once from main, interrupts enabled after. */
void board_init(void);

/* Blocking read of one byte from the host UART. */
uint8_t board_uart_read(void);

/* Blocking write of n bytes to the host UART. */
void board_uart_write(const uint8_t *data, size_t n);

/* Restart the tick counter at 0. On QEMU this also realigns the tick phase with the current
 * instruction, so a duration measured from a reset is exact (see board.c). */
void board_ticks_reset(void);

/* Ticks since the last board_ticks_reset() (or boot); monotonic, 64-bit. */
uint64_t board_ticks(void);

/* Ticks per second of board_ticks(). */
uint32_t board_tick_hz(void);

/* What one tick is (INFO tick_unit, docs/protocol.md): */
typedef enum {
  BOARD_TICK_TIMER = 0,       /* a timer at board_tick_hz(): wall time only */
  BOARD_TICK_CYCLES = 1,      /* CPU cycles (a cycle counter) */
  BOARD_TICK_INSTRUCTIONS = 2 /* executed instructions, *instructions_per_tick per tick */
} board_tick_unit_t;
board_tick_unit_t board_tick_unit(uint32_t *instructions_per_tick);

/* The input bank's memory (docs/protocol.md, USE_INPUT): where a bank of test inputs may
 * have been placed before boot (QEMU: -device loader into PSRAM), and its capacity in bytes;
 * NULL (capacity 0) if the board has none. The firmware checks the bank's head itself. */
const uint8_t *board_input_bank(size_t *capacity);

/* CPU core clock in Hz. */
uint32_t board_cpu_hz(void);

/* Short board name, e.g. "qemu-mps2-an386". */
const char *board_name(void);

#endif /* TS_BOARD_H */
