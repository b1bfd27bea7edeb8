/* Greedy arena planner; see ts_plan.h.
 *
 * In-place chains: a buffer with a `share` partner lives at its partner's offset, so a
 * chain of partners (b2 -> b1 -> b0: a RESHAPE of a RELU's output over a DEPTHWISE's input)
 * is one group, placed as a unit at one offset: the group must fit beside every placed
 * buffer that any of its members is alive with. Groups are taken one after the other in a
 * given order; each goes at the lowest offset where it fits; the candidate offsets are 0
 * and the ends of the placed buffers alive with a member. Lifetimes are inclusive, so an
 * operator's inputs and outputs never share bytes, except the members of a group.
 *
 * Two orders are tried and the smaller block is kept (TFLM's GreedyMemoryPlanner uses the
 * first only):
 *   - largest first (ties: earlier first use): good when a few big buffers dominate;
 *   - earliest first use first (ties: larger): a linear scan, which for a chain of layers
 *     puts each output where the inputs of two layers back have died. On a MobileNetV1
 *     (96x96x3 -> 48x48x8 -> 48x48x8 -> 48x48x16 ...) the first order strands the 48x48x8
 *     tensors above the input (64,512 B) where the second reaches the largest pair of
 *     tensors alive at one operator (55,296 B). */
#include "ts_plan.h"

#define UNPLACED 0xffffffffu

enum { BY_SIZE = 0, BY_FIRST_USE = 1 };

static ts_plan_buf_t *at(ts_plan_buf_t *b, size_t stride, uint32_t i) {
  return (ts_plan_buf_t *)(void *)((uint8_t *)b + (size_t)i * stride);
}

static uint32_t aligned(uint32_t s) {
  return (s + (TS_PLAN_ALIGN - 1)) & ~(uint32_t)(TS_PLAN_ALIGN - 1);
}

static int live_together(const ts_plan_buf_t *a, const ts_plan_buf_t *b) {
  return a->first <= b->last && b->first <= a->last;
}

/* The first buffer of x's chain (follow `share` at most n steps: a malformed cycle ends). */
static __attribute__((noinline)) uint32_t root_of(ts_plan_buf_t *b, size_t stride, uint32_t n,
                                                   uint32_t x) {
  for (uint32_t k = 0; k < n; k++) {
    const int32_t s = at(b, stride, x)->share;
    if (s < 0 || (uint32_t)s >= n || at(b, stride, (uint32_t)s)->first < 0) break;
    x = (uint32_t)s;
  }
  return x;
}

/* Whether buffer j may be planned and belongs to the group of root r. */
static int member(ts_plan_buf_t *b, size_t stride, uint32_t n, uint32_t j, uint32_t r) {
  const ts_plan_buf_t *y = at(b, stride, j);
  return y->first >= 0 && (j == r || (y->share >= 0 && root_of(b, stride, n, j) == r));
}

/* Whether group r fits at offset off beside every placed buffer outside it. */
static int fits(ts_plan_buf_t *b, size_t stride, uint32_t n, uint32_t r, uint64_t off) {
  for (uint32_t i = 0; i < n; i++) {
    if (!member(b, stride, n, i, r)) continue;
    const ts_plan_buf_t *x = at(b, stride, i);
    const uint64_t end = off + aligned(x->size);
    for (uint32_t j = 0; j < n; j++) {
      const ts_plan_buf_t *y = at(b, stride, j);
      if (y->first < 0 || y->offset == UNPLACED || !live_together(x, y)) continue;
      if (off < (uint64_t)y->offset + aligned(y->size) && y->offset < end &&
          !member(b, stride, n, j, r))
        return 0;
    }
  }
  return 1;
}

/* Group r's key: its largest member and its earliest first use. */
static void group_key(ts_plan_buf_t *b, size_t stride, uint32_t n, uint32_t r, uint32_t *size,
                      int32_t *first) {
  *size = 0;
  *first = at(b, stride, r)->first;
  for (uint32_t i = 0; i < n; i++) {
    if (!member(b, stride, n, i, r)) continue;
    const ts_plan_buf_t *x = at(b, stride, i);
    if (x->size > *size) *size = x->size;
    if (x->first < *first) *first = x->first;
  }
}

static size_t plan_in_order(ts_plan_buf_t *b, size_t stride, uint32_t n, int order) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; i++) at(b, stride, i)->offset = UNPLACED;
  for (;;) {
    /* The next group: its root is an unplaced buffer that is not a member of another. */
    uint32_t r = UNPLACED, rsize = 0;
    uint64_t rkey = 0;
    for (uint32_t i = 0; i < n; i++) {
      const ts_plan_buf_t *c = at(b, stride, i);
      if (c->first < 0 || c->offset != UNPLACED || root_of(b, stride, n, i) != i) continue;
      uint32_t size;
      int32_t first;
      group_key(b, stride, n, i, &size, &first);
      /* the order as one number: larger size, then earlier first use (first >= 0, so ~first
       * grows as first falls), or the other way round; ties keep the earlier buffer */
      const uint32_t early = ~(uint32_t)first;
      const uint64_t key = order == BY_SIZE ? (uint64_t)size << 32 | early
                                            : (uint64_t)early << 32 | size;
      if (r == UNPLACED || key > rkey) {
        r = i;
        rsize = size;
        rkey = key;
      }
    }
    if (r == UNPLACED) break;
    /* the lowest candidate that fits: 0 (j == n) or the end of a placed buffer alive with
     * a member (r is one; the highest end always fits) */
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; i < n && best != 0; i++) {
      if (!member(b, stride, n, i, r)) continue;
      const ts_plan_buf_t *x = at(b, stride, i);
      for (uint32_t j = 0; j <= n; j++) {
        uint64_t cand = 0;
        if (j < n) {
          const ts_plan_buf_t *y = at(b, stride, j);
          if (y->first < 0 || y->offset == UNPLACED || !live_together(x, y)) continue;
          cand = (uint64_t)y->offset + aligned(y->size);
        }
        if (cand < best && fits(b, stride, n, r, cand)) best = cand;
      }
    }
    if (best + aligned(rsize) > 0xffffffffu) return SIZE_MAX; /* offsets are 32-bit */
    for (uint32_t i = 0; i < n; i++)
      if (member(b, stride, n, i, r)) at(b, stride, i)->offset = (uint32_t)best;
    if (best + aligned(rsize) > total) total = best + aligned(rsize);
  }
  return (size_t)total;
}

size_t ts_plan(ts_plan_buf_t *b, size_t stride, uint32_t n) {
  const size_t by_size = plan_in_order(b, stride, n, BY_SIZE);
  const size_t by_first = plan_in_order(b, stride, n, BY_FIRST_USE);
  if (by_first <= by_size) return by_first;
  return plan_in_order(b, stride, n, BY_SIZE); /* the offsets of the smaller plan */
}
