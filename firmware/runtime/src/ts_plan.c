/* Greedy arena planner; see ts_plan.h.
 *
 * Buffers are taken largest first (ties: earlier first use, then lower index). Each goes
 * at the lowest offset where it overlaps no already placed buffer that is alive at the same
 * time; the candidate offsets are 0 and the ends of the placed, time-overlapping buffers.
 * Lifetimes are inclusive, so an operator's inputs and outputs never share bytes, except a
 * buffer and its `share` partner at the same offset: a buffer whose partner is placed is
 * taken next and tried at the partner's offset first. */
#include "ts_plan.h"

#define UNPLACED 0xffffffffu

static ts_plan_buf_t *at(ts_plan_buf_t *b, size_t stride, uint32_t i) {
  return (ts_plan_buf_t *)(void *)((uint8_t *)b + (size_t)i * stride);
}

static uint32_t aligned(uint32_t s) {
  return (s + (TS_PLAN_ALIGN - 1)) & ~(uint32_t)(TS_PLAN_ALIGN - 1);
}

static int live_together(const ts_plan_buf_t *a, const ts_plan_buf_t *b) {
  return a->first <= b->last && b->first <= a->last;
}

static int partners(ts_plan_buf_t *b, size_t stride, const ts_plan_buf_t *x,
                    const ts_plan_buf_t *y) {
  return (x->share >= 0 && at(b, stride, (uint32_t)x->share) == y) ||
         (y->share >= 0 && at(b, stride, (uint32_t)y->share) == x);
}

static int fits(ts_plan_buf_t *b, size_t stride, uint32_t n, const ts_plan_buf_t *x,
                uint64_t off) {
  const uint64_t end = off + aligned(x->size);
  for (uint32_t j = 0; j < n; j++) {
    const ts_plan_buf_t *y = at(b, stride, j);
    if (y->first < 0 || y->offset == UNPLACED || y == x || !live_together(x, y)) continue;
    if (y->offset == off && partners(b, stride, x, y)) continue;
    if (off < (uint64_t)y->offset + aligned(y->size) && y->offset < end) return 0;
  }
  return 1;
}

size_t ts_plan(ts_plan_buf_t *b, size_t stride, uint32_t n) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; i++) at(b, stride, i)->offset = UNPLACED;
  for (;;) {
    /* Next: a buffer whose share partner is placed (tried at the partner's offset first),
     * else the largest unplaced one. */
    ts_plan_buf_t *x = 0;
    const ts_plan_buf_t *xp = 0; /* x's placed partner */
    for (uint32_t i = 0; i < n; i++) {
      ts_plan_buf_t *c = at(b, stride, i);
      if (c->first < 0 || c->offset != UNPLACED) continue;
      const ts_plan_buf_t *cp = c->share >= 0 ? at(b, stride, (uint32_t)c->share) : 0;
      if (cp && cp->offset == UNPLACED) cp = 0;
      if (!x || (cp && !xp) ||
          (!cp == !xp && (c->size > x->size || (c->size == x->size && c->first < x->first)))) {
        x = c;
        xp = cp;
      }
    }
    if (!x) break;
    uint64_t best = xp && fits(b, stride, n, x, xp->offset) ? xp->offset : UINT64_MAX;
    if (best == UINT64_MAX && fits(b, stride, n, x, 0)) best = 0;
    for (uint32_t j = 0; j < n && best != 0; j++) {
      const ts_plan_buf_t *y = at(b, stride, j);
      if (y->first < 0 || y->offset == UNPLACED || !live_together(x, y)) continue;
      const uint64_t cand = (uint64_t)y->offset + aligned(y->size);
      if (cand < best && fits(b, stride, n, x, cand)) best = cand;
    }
    if (best + aligned(x->size) > 0xffffffffu) return SIZE_MAX; /* offsets are 32-bit */
    x->offset = (uint32_t)best;
    if (best + aligned(x->size) > total) total = best + aligned(x->size);
  }
  return (size_t)total;
}
