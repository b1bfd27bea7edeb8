#ifndef TS_FUZZ_BOARD_H
#define TS_FUZZ_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Everything the firmware wrote for the current request. */
#define FUZZ_OUT_MAX (4u << 20)
extern uint8_t g_fuzz_out[FUZZ_OUT_MAX];
extern size_t g_fuzz_out_len;
/* The input bank the native board offers (zero: none; a harness may fill it). */
#define FUZZ_BANK_BYTES (64u << 10)
extern uint8_t g_fuzz_bank[FUZZ_BANK_BYTES];

#endif
