/* SHA-256 (FIPS 180-4), streaming; used once at boot to hash the model bytes. */
#ifndef TS_SHA256_H
#define TS_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t state[8];
  uint64_t bytes;
  uint8_t block[64];
  uint32_t used;
} sha256_ctx_t;

void sha256_init(sha256_ctx_t *c);
void sha256_update(sha256_ctx_t *c, const uint8_t *data, size_t n);
void sha256_final(sha256_ctx_t *c, uint8_t digest[32]);

#endif /* TS_SHA256_H */
