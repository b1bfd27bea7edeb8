/*
 * The tensor digest of protocol version 3 (docs/protocol.md, "DIGEST"): a 32-bit
 * polynomial hash over little-endian 32-bit words, computed by Horner's rule
 *
 *   h = byte_length;  for each word w (the last one zero-padded):  h = h * 0x01000193 + w
 *
 * all modulo 2^32. The multiplier is odd, so changing any single word always changes the
 * digest (the change is multiplied by an odd power, never 0 mod 2^32): one corrupted element
 * is always found. One multiply-accumulate per 4 int8 elements keeps it cheap on a
 * Cortex-M4; the host computes the same value as a dot product with the powers of the
 * multiplier (tinyscope.device.protocol.tensor_digest).
 */
#ifndef TS_DIGEST_H
#define TS_DIGEST_H

#include <stddef.h>
#include <stdint.h>

uint32_t ts_digest(const void *data, size_t n);

#endif /* TS_DIGEST_H */
