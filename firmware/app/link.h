/*
 * Frames on the UART (see docs/protocol.md): COBS( header | payload | CRC-32 ) 0x00.
 * Sending streams through a COBS encoder with one 254-byte block buffer, so a frame's
 * payload never needs to sit in RAM in one piece. Receiving keeps one whole frame.
 */
#ifndef TS_LINK_H
#define TS_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "protocol_defs.h"

void link_init(void);

/* Block until a complete frame arrives. */
link_status_t link_receive(link_frame_t *frame);

/* Send one frame: begin (declares the payload length), payload bytes, end. */
void link_begin(uint8_t type, uint16_t seq, uint16_t length);
void link_write(const void *data, size_t n);
/* Returns 0, or -1 if the bytes written differ from the declared length (a bug). */
int link_end(void);

/* Convenience: a whole frame from one buffer. */
void link_send(uint8_t type, uint16_t seq, const void *payload, uint16_t length);

#endif /* TS_LINK_H */
