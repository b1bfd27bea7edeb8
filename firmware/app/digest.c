#include "digest.h"

#include "protocol_defs.h"

/* An unaligned, aliasing-safe 32-bit load: one LDR on the Cortex-M4 (memcpy would be a call
 * under -ffreestanding). */
typedef uint32_t __attribute__((aligned(1), may_alias)) ts_u32_any_t;

static inline uint32_t load_le32(const uint8_t *p) {
  uint32_t w = *(const ts_u32_any_t *)p;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap32(w);
#endif
  return w;
}

uint32_t ts_digest(const void *data, size_t n) {
  const uint8_t *p = data;
  const uint32_t m = TSP_DIGEST_MULTIPLIER;
  uint32_t h = (uint32_t)n;
  size_t words = n / 4;
  size_t i = 0;
  for (; i + 4 <= words; i += 4, p += 16) { /* unrolled: 4 loads, 4 multiply-adds */
    h = h * m + load_le32(p);
    h = h * m + load_le32(p + 4);
    h = h * m + load_le32(p + 8);
    h = h * m + load_le32(p + 12);
  }
  for (; i < words; i++, p += 4) h = h * m + load_le32(p);
  if (n % 4) {
    uint8_t last[4] = {0, 0, 0, 0};
    for (size_t k = 0; k < n % 4; k++) last[k] = p[k];
    h = h * m + load_le32(last);
  }
  return h;
}
