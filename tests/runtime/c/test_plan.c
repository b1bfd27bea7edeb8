/* Unit tests of the arena planner (firmware/runtime/src/ts_plan.c), built with the host
 * compiler (and ASan + UBSan) by tests/runtime/test_native_units.py. Exit status 0: every
 * check passed; otherwise each failed check is printed with its line. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ts_plan.h"

static int failures;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "test_plan.c:%d: check failed: %s\n", __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static uint32_t aligned(uint32_t s) {
  return (s + TS_PLAN_ALIGN - 1) & ~(uint32_t)(TS_PLAN_ALIGN - 1);
}

static ts_plan_buf_t buf(int32_t first, int32_t last, uint32_t size) {
  ts_plan_buf_t b = {first, last, size, 0, -1};
  return b;
}

static int live_together(const ts_plan_buf_t *a, const ts_plan_buf_t *b) {
  return a->first <= b->last && b->first <= a->last;
}

/* The first buffer of i's chain of share partners (a tree: aliases of one buffer). */
static uint32_t root(const ts_plan_buf_t *b, uint32_t n, uint32_t i) {
  for (uint32_t k = 0; k < n && b[i].share >= 0 && b[b[i].share].first >= 0; k++)
    i = (uint32_t)b[i].share;
  return i;
}

/* Every planned buffer is aligned and inside the block; no two buffers alive at the same
 * operator share a byte unless they are in one group of share partners (same root) at the
 * same offset; the block is at least the largest sum of sizes alive at one operator.
 * Returns 1 if all hold. */
static int plan_is_valid(const ts_plan_buf_t *b, uint32_t n, size_t total) {
  int32_t max_op = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (b[i].first < 0) continue;
    if (b[i].offset % TS_PLAN_ALIGN || b[i].offset + (uint64_t)aligned(b[i].size) > total)
      return 0;
    if (b[i].last > max_op) max_op = b[i].last;
    for (uint32_t j = 0; j < i; j++) {
      if (b[j].first < 0 || !live_together(&b[i], &b[j])) continue;
      const int partners = root(b, n, i) == root(b, n, j);
      if (partners && b[i].offset == b[j].offset) continue;
      if (b[i].offset < b[j].offset + aligned(b[j].size) &&
          b[j].offset < b[i].offset + aligned(b[i].size))
        return 0;
    }
  }
  for (int32_t op = 0; op <= max_op; op++) {
    uint64_t live = 0;
    for (uint32_t i = 0; i < n; i++)
      if (b[i].first >= 0 && b[i].first <= op && op <= b[i].last && b[i].share < 0)
        live += aligned(b[i].size);
    if (live > total) return 0;
  }
  return 1;
}

static void test_disjoint_lifetimes_reuse_offset_zero(void) {
  ts_plan_buf_t b[3] = {buf(0, 1, 100), buf(1, 2, 50), buf(2, 3, 100)};
  const size_t total = ts_plan(b, sizeof b[0], 3);
  /* largest first: b0 at 0; b2 (not alive with b0) at 0; b1 (alive with both) after them */
  CHECK(b[0].offset == 0);
  CHECK(b[2].offset == 0);
  CHECK(b[1].offset == aligned(100));
  CHECK(total == aligned(100) + aligned(50));
  CHECK(plan_is_valid(b, 3, total));
}

static void test_all_alive_is_the_sum(void) {
  ts_plan_buf_t b[4] = {buf(0, 4, 1), buf(0, 4, 17), buf(0, 4, 32), buf(0, 4, 33)};
  const size_t total = ts_plan(b, sizeof b[0], 4);
  CHECK(total == aligned(1) + aligned(17) + aligned(32) + aligned(33));
  CHECK(b[3].offset == 0); /* the largest goes first, at 0 */
  CHECK(plan_is_valid(b, 4, total));
}

static void test_unplanned_and_empty(void) {
  ts_plan_buf_t b[2] = {buf(-1, 3, 1000), buf(0, 1, 8)};
  const size_t total = ts_plan(b, sizeof b[0], 2);
  CHECK(total == aligned(8));
  CHECK(b[0].offset == 0xffffffffu); /* first < 0: left unplaced */
  CHECK(ts_plan(b, sizeof b[0], 0) == 0);
}

static void test_share_partner_at_the_same_offset(void) {
  /* b1 is an in-place output of b0 (e.g. RESHAPE): both alive at op 1, same offset. */
  ts_plan_buf_t b[3] = {buf(0, 1, 64), buf(1, 2, 64), buf(0, 2, 32)};
  b[1].share = 0;
  const size_t total = ts_plan(b, sizeof b[0], 3);
  CHECK(b[1].offset == b[0].offset);
  CHECK(total == 64 + 32);
  CHECK(plan_is_valid(b, 3, total));
}

static void test_chain_is_placed_as_one_group(void) {
  /* b0 -> b1 -> b2 in place (DEPTHWISE then RELU over it), b3 alive over the whole chain
   * (a residual branch): the chain sits at one offset and b3 beside all of it. */
  ts_plan_buf_t b[4] = {buf(0, 1, 96), buf(1, 2, 96), buf(2, 3, 96), buf(0, 3, 48)};
  b[1].share = 0;
  b[2].share = 1;
  const size_t total = ts_plan(b, sizeof b[0], 4);
  CHECK(b[0].offset == b[1].offset && b[1].offset == b[2].offset);
  CHECK(total == 96 + 48);
  CHECK(plan_is_valid(b, 4, total));
}

static void test_group_takes_its_lifetime_from_every_member(void) {
  /* b1 (in place over b0) lives on to op 3, where b2 is born: b2 may not go at the chain's
   * offset although the root b0 died at op 1. */
  ts_plan_buf_t b[3] = {buf(0, 1, 64), buf(1, 3, 64), buf(3, 4, 64)};
  b[1].share = 0;
  const size_t total = ts_plan(b, sizeof b[0], 3);
  CHECK(b[1].offset == b[0].offset);
  CHECK(b[2].offset != b[1].offset);
  CHECK(total == 128);
  CHECK(plan_is_valid(b, 3, total));
}

static void test_aliases_of_a_buffer_that_lives_on(void) {
  /* RESHAPE / SQUEEZE as aliases (the loader's TS_OPF_ALIAS): b0 (a model input, read by
   * ops 0, 1 and 3) has two aliases, b1 written at op 0 and b2 at op 1, each alive with b0;
   * b3 lives beside them at ops 1-2. The three share one offset (a tree, not a chain) and
   * the group lives from op 0 to op 3, so b4 (born at op 3) goes beside it. */
  ts_plan_buf_t b[5] = {buf(0, 3, 64), buf(0, 2, 64), buf(1, 3, 64), buf(1, 2, 32),
                        buf(3, 4, 48)};
  b[1].share = 0;
  b[2].share = 0;
  const size_t total = ts_plan(b, sizeof b[0], 5);
  CHECK(b[1].offset == b[0].offset && b[2].offset == b[0].offset);
  CHECK(b[3].offset >= 64 || b[3].offset + 32 <= b[0].offset);
  CHECK(b[4].offset >= b[0].offset + 64 || b[4].offset + 48 <= b[0].offset);
  CHECK(total == 64 + 48);
  CHECK(plan_is_valid(b, 5, total));
}

static void test_mobilenet_chain_reaches_the_largest_live_pair(void) {
  /* MobileNetV1-0.25's first layers: input 96x96x3, conv1 48x48x8, dw1 48x48x8, pw1
   * 48x48x16, dw2 24x24x16, pw2 24x24x32. The largest pair alive at one operator is
   * pw1's (18,432 + 36,864 B); largest-first alone strands dw1's output above the input
   * (64,512 B); the earliest-first-use order reaches the pair. */
  ts_plan_buf_t b[6] = {buf(0, 0, 27648), buf(0, 1, 18432), buf(1, 2, 18432),
                        buf(2, 3, 36864), buf(3, 4, 9216), buf(4, 5, 18432)};
  const size_t total = ts_plan(b, sizeof b[0], 6);
  CHECK(total == 18432 + 36864);
  CHECK(plan_is_valid(b, 6, total));
  /* the same with dw1 in place over conv1's output: still the pair */
  ts_plan_buf_t c[6] = {buf(0, 0, 27648), buf(0, 1, 18432), buf(1, 2, 18432),
                        buf(2, 3, 36864), buf(3, 4, 9216), buf(4, 5, 18432)};
  c[2].share = 1;
  const size_t t2 = ts_plan(c, sizeof c[0], 6);
  CHECK(t2 == 18432 + 36864);
  CHECK(c[2].offset == c[1].offset);
  CHECK(plan_is_valid(c, 6, t2));
}

static void test_largest_first_is_kept_when_smaller(void) {
  /* Two short-lived small buffers then a long-lived big one: earliest-first puts the small
   * ones at 0 and 16, so the big one (alive with the second) starts at 32: 96 B;
   * largest-first puts the big one at 0, the first small one (not alive with it) at 0 too
   * and the second above it: 80 B. The planner keeps the smaller plan. */
  ts_plan_buf_t b[3] = {buf(0, 1, 16), buf(1, 2, 16), buf(2, 5, 64)};
  const size_t total = ts_plan(b, sizeof b[0], 3);
  CHECK(total == 80);
  CHECK(plan_is_valid(b, 3, total));
}

static void test_records_with_a_stride(void) {
  struct rec {
    char name[12];
    ts_plan_buf_t buf;
    uint32_t tail;
  } r[3];
  memset(r, 0x5a, sizeof r);
  r[0].buf = buf(0, 1, 100);
  r[1].buf = buf(1, 2, 50);
  r[2].buf = buf(2, 3, 100);
  const size_t total = ts_plan(&r[0].buf, sizeof r[0], 3);
  CHECK(total == aligned(100) + aligned(50));
  CHECK(r[1].buf.offset == aligned(100));
  for (int i = 0; i < 3; i++) CHECK(r[i].tail == 0x5a5a5a5au && r[i].name[11] == 0x5a);
}

static void test_offsets_past_32_bits_are_refused(void) {
  ts_plan_buf_t b[2] = {buf(0, 1, 0xf0000000u), buf(0, 1, 0x20000000u)};
  CHECK(ts_plan(b, sizeof b[0], 2) == SIZE_MAX);
}

static uint32_t rng = 12345;
static uint32_t next(uint32_t n) { /* xorshift32, in [0, n) */
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng % n;
}

static void test_random_plans_are_valid(void) {
  enum { N = 24, CASES = 3000 };
  for (int c = 0; c < CASES; c++) {
    ts_plan_buf_t b[N];
    const uint32_t n = 1 + next(N);
    const int32_t ops = 1 + (int32_t)next(12);
    for (uint32_t i = 0; i < n; i++) {
      const int32_t first = (int32_t)next((uint32_t)ops);
      b[i] = buf(next(10) == 0 ? -1 : first, first + (int32_t)next((uint32_t)(ops - first + 1)),
                 1 + next(next(2) ? 64 : 5000));
      /* an in-place partner, as the runtime links them: an earlier buffer, written before
       * the operator that reads it last, whose life ends where this one starts and that no
       * other buffer names (chains form when the partner has a partner itself) */
      if (i && next(3) == 0) {
        const uint32_t p = next(i);
        int named = 0;
        for (uint32_t j = 0; j < i; j++) named |= b[j].share == (int32_t)p;
        if (b[p].first >= 0 && b[p].first < b[p].last && b[p].last == b[i].first && !named)
          b[i].share = (int32_t)p;
      } else if (i && next(4) == 0) {
        /* an alias (RESHAPE of p): p's bytes, written while p is alive; p may live on and
         * have other aliases */
        const uint32_t p = next(i);
        if (b[p].first >= 0 && b[i].first >= 0 && b[p].first <= b[i].first &&
            b[i].first <= b[p].last) {
          b[i].share = (int32_t)p;
          b[i].size = b[p].size;
        }
      }
    }
    const size_t total = ts_plan(b, sizeof b[0], n);
    if (!plan_is_valid(b, n, total)) {
      fprintf(stderr, "test_plan.c: random case %d (%u buffers) planned wrongly\n", c, n);
      failures++;
      return;
    }
  }
}

int main(void) {
  test_disjoint_lifetimes_reuse_offset_zero();
  test_all_alive_is_the_sum();
  test_unplanned_and_empty();
  test_share_partner_at_the_same_offset();
  test_chain_is_placed_as_one_group();
  test_group_takes_its_lifetime_from_every_member();
  test_aliases_of_a_buffer_that_lives_on();
  test_mobilenet_chain_reaches_the_largest_live_pair();
  test_largest_first_is_kept_when_smaller();
  test_records_with_a_stride();
  test_offsets_past_32_bits_are_refused();
  test_random_plans_are_valid();
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("test_plan: all checks passed\n");
  return failures != 0;
}
