/*
 * The request handler of the firmware, separate from the main loop so it builds natively:
 * firmware/fuzz/fuzz_commands.c drives it with mutated requests and checks every answer.
 */
#ifndef TS_APP_H
#define TS_APP_H

#include "frame.h"

/* Hash the model and initialise the runtime (once, after board_init and link_init). */
void app_init(void);

/* Answer one received frame (or the link error st) with response frames ending in DONE or
 * ERROR. f is only read when st is LINK_OK or LINK_BAD_VERSION. */
void app_handle(link_status_t st, const link_frame_t *f);

#endif /* TS_APP_H */
