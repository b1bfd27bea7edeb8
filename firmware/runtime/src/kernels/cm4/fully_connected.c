/* FULLY_CONNECTED int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_fully_connected_s8.
 *
 * The input (+ input offset) is widened once per batch to int16 on the stack, in SXTB16
 * order: per 4 inputs the words (x0, x2) and (x1, x3); SXTAB16 adds the offset for free
 * (LDM, 8 SXTAB16, STM per 16 inputs, 4 of those per loop pass: 42 instructions per 64).
 * Five output rows at a time: per 4 inputs one LDM of inputs, per row one LDR +
 * SXTB16/SXTB16-ROR8 of weights and 2 SMLAD, 26 instructions per 20 MACs. The five rows
 * are reached from one post-incremented weight pointer w and the row stride s as [w, s],
 * [w, s, lsl 1], [w, 3s], [w, s, lsl 2], [w], #4, so the loop needs 14 registers (5
 * accumulators, w, s, 3s, input pointer, pass counter, 2 inputs, 2 temps) and spills
 * nothing: GCC cannot do that (it makes 5 row pointers), hence Thumb-2 assembly, unrolled 8
 * times and entered in the middle (TBH) for other lengths. When out_depth is not a multiple
 * of 5 the last block overlaps the previous one (rows computed twice, same bytes stored).
 * Per output: TFLM's double rounding in one SMLAL with the output offset folded into the
 * rounding term (the exact form of ts_dsp.h) and SSAT, 12 instructions with the per-channel
 * multiplier and shift loads. On the default model's 400 -> 10 layer: 5,762 instructions
 * for 4,000 MACs (ts_fc_rows; 5,000 of them the SXTB16/SMLAD floor of 1.25 per MAC).
 *
 * The fast path, ts_fc_rows (widening, every row block, requantization and stores, all in
 * assembly), takes the usual layer: depth a multiple of 4 up to TS_OPT_FC_XBUF, at least 5
 * rows, a bias, no filter offset, a word-aligned input, shifts in [-17, -2]; it says so
 * otherwise and fc_general runs instead: the same 5-row loop (ts_fc_dot5) driven from C,
 * 1 row at a time for fewer rows, the input re-widened per row block when it does not fit
 * the buffer, TFLM's requantization, a filter offset (0 for int8 weights, which are
 * symmetric) folded in exactly: sum (f + fo)(x + xo) = sum f (x + xo) + fo * sum (x + xo).
 * On the host (no DSP extension) ts_fc_dot5, ts_fc_rows and the widening are the portable C
 * below, the same arithmetic, so ts-kernel-check exercises this algorithm; the assembly
 * itself is checked on the M4 by the m4check build of ts-kernel-check (tests/
 * tests/runtime/test_opt_m4.py, also every near-miss mutation of its instructions), `make bench`
 * and the emulator tests. */
#include <stdint.h>

#include "ts_dsp.h"
#include "ts_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* n inputs (a multiple of 4) from a word-aligned src widened in SXTB16 order, + off2 (the
 * input offset in both halves): the assembly below, 42 instructions per 64 inputs. */
void ts_fc_widen(int16_t *xb, const int8_t *src, uint32_t off2, int32_t n);
#endif

/* xb[i] = src[i] + xo for i < n, in SXTB16 order per 4 inputs (the tail in plain order). */
static void widen(int16_t *xb, const int8_t *src, int32_t n, int32_t xo) {
  int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  if (!((uintptr_t)src & 3) && (i = n & ~3) != 0)
    ts_fc_widen(xb, src, (uint32_t)(uint16_t)xo * 0x10001u, i);
#endif
  /* (the host, or an unaligned src on the M4) value k of a group of 4 in slot (0, 2, 1, 3)[k]
   * of it; the values after the last whole group in plain order */
  for (; i < n; i++)
    xb[i < (n & ~3) ? (i & ~3) | (i & 1) << 1 | (i >> 1 & 1) : i] = (int16_t)(src[i] + xo);
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* acc[r] += sum over ng groups g of 4 inputs: w[r * s + 4 g + k] * xb[...] (r = 0..4), xb in
 * SXTB16 order, 8-byte aligned; w any alignment (unaligned LDR). ng >= 1. */
void ts_fc_dot5(int32_t *acc, const int16_t *xb, const int8_t *w, int32_t s, int32_t ng);
/* One batch of the fast path (see the top of this file; frame and input buffer on its own
 * stack, at most 2 * TS_OPT_FC_XBUF + 104 bytes): 0 done (outputs saturated to int8, not
 * yet clamped to a fused activation), 1 a shift outside [-17, -2] (outputs unusable), 2
 * not a layer it takes (nothing written). */
int32_t ts_fc_rows(const ts_fc_params_t *p, const int8_t *in, const int8_t *filter,
                   const int32_t *bias, int8_t *out);

/* One group: r1 = xb, r2 = w, r3 = s, r9 = 3 s; accumulators r4-r8; temps r0, lr. */
#define FC_ROW(addr, a)                                                                        \
  "ldr.w r0, " addr "\n\t"                                                                     \
  "sxtb16 lr, r0\n\t"                                                                          \
  "smlad " a ", lr, r11, " a "\n\t"                                                            \
  "sxtb16 r0, r0, ror #8\n\t"                                                                  \
  "smlad " a ", r0, r12, " a "\n\t"
#define FC_GROUP(k)                                                                            \
  ".Lfc_g" #k ":\n\t"                                                                          \
  "ldmia.w r1!, {r11, r12}\n\t" FC_ROW("[r2, r3]", "r5") FC_ROW("[r2, r3, lsl #1]", "r6")       \
      FC_ROW("[r2, r9]", "r7") FC_ROW("[r2, r3, lsl #2]", "r8") FC_ROW("[r2], #4", "r4")
/* Requantize accumulator a (t = -2 - shift, r0 = -2, r10 = o2, r2/r3 = mult/shift rows):
 * hi32(a * m + (((o2 << t) - [a < 0]) << 32 | 2^30 | [a < 0] << 31)) >> (t + 1), i.e.
 * ts_requant with the output offset folded into the rounding term (see ts_dsp.h). */
#define FC_RQ(tr, a, off)                                                                      \
  "ldr r11, [r2, #" off "]\n\t"                                                                \
  "ldr " tr ", [r3, #" off "]\n\t"                                                             \
  "sub " tr ", r0, " tr "\n\t"                                                                 \
  "lsl r12, r10, " tr "\n\t"                                                                   \
  "add r12, r12, " a ", asr #31\n\t"                                                           \
  "and lr, " a ", #0x80000000\n\t"                                                             \
  "eor lr, lr, #0x40000000\n\t"                                                                \
  "smlal lr, r12, " a ", r11\n\t"                                                              \
  "asr r12, r12, " tr "\n\t"                                                                   \
  "ssat r12, #8, r12, asr #1\n\t"                                                              \
  "strb r12, [r1, #" off "/4]\n\t"
/* 16 inputs at r1 widened to r0 (r2 = input offset in both halves). */
#define FC_XSTR(x) FC_STR(x)
#define FC_STR(x) #x
#define FC_W16                                                                                 \
  "ldmia r1!, {r5, r7, r9, r11}\n\t"                                                           \
  "sxtab16 r4, r2, r5\n\t"                                                                     \
  "sxtab16 r5, r2, r5, ror #8\n\t"                                                             \
  "sxtab16 r6, r2, r7\n\t"                                                                     \
  "sxtab16 r7, r2, r7, ror #8\n\t"                                                             \
  "sxtab16 r8, r2, r9\n\t"                                                                     \
  "sxtab16 r9, r2, r9, ror #8\n\t"                                                             \
  "sxtab16 r10, r2, r11\n\t"                                                                   \
  "sxtab16 r11, r2, r11, ror #8\n\t"                                                           \
  "stmia r0!, {r4-r11}\n\t"

__asm__(".pushsection .text.ts_fc_core,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".type ts_fc_core, %function\n\t"
        ".thumb_func\n"
        /* r0 = skip, r1 = xb, r2 = w, r3 = s, r9 = 3 s, r10 = passes, accumulators r4-r8;
         * clobbers r0, r10-r12 */
        "ts_fc_core:\n\t"
        "push {lr}\n\t"
        "tbh [pc, r0, lsl #1]\n"
        ".Lfc_tbl:\n\t"
        ".hword (.Lfc_g0 - .Lfc_tbl) / 2, (.Lfc_g1 - .Lfc_tbl) / 2\n\t"
        ".hword (.Lfc_g2 - .Lfc_tbl) / 2, (.Lfc_g3 - .Lfc_tbl) / 2\n\t"
        ".hword (.Lfc_g4 - .Lfc_tbl) / 2, (.Lfc_g5 - .Lfc_tbl) / 2\n\t"
        ".hword (.Lfc_g6 - .Lfc_tbl) / 2, (.Lfc_g7 - .Lfc_tbl) / 2\n"
        FC_GROUP(0) FC_GROUP(1) FC_GROUP(2) FC_GROUP(3)
        FC_GROUP(4) FC_GROUP(5) FC_GROUP(6) FC_GROUP(7)
        "subs r10, r10, #1\n\t"
        "bne.w .Lfc_g0\n\t"
        "pop {pc}\n\t"
        ".size ts_fc_core, . - ts_fc_core\n\t"
        ".p2align 2\n\t"
        ".global ts_fc_dot5\n\t"
        ".type ts_fc_dot5, %function\n\t"
        ".thumb_func\n"
        "ts_fc_dot5:\n\t"
        "push {r0, r4-r11, lr}\n\t"
        "ldr r10, [sp, #40]\n\t" /* ng */
        "ldmia r0, {r4-r8}\n\t"
        "add r9, r3, r3, lsl #1\n\t"
        "rsb r0, r10, #0\n\t"
        "and r0, r0, #7\n\t"
        "add r10, r10, #7\n\t"
        "lsr r10, r10, #3\n\t"
        "bl ts_fc_core\n\t"
        "pop {r0}\n\t"
        "stmia r0, {r4-r8}\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size ts_fc_dot5, . - ts_fc_dot5\n\t"
        /* r0 = int16 destination, r1 = word-aligned source, r2 = input offset in both
         * halves, r3 = count, a multiple of 4; clobbers r4-r12. 64 inputs per pass, entered
         * in the middle for the odd 16s, then 4 at a time. */
        ".Lfc_widen:\n\t"
        "lsr r12, r3, #4\n\t"
        "rsb r4, r12, #0\n\t"
        "and r4, r4, #3\n\t"
        "add r12, r12, #3\n\t"
        "lsrs r12, r12, #2\n\t"
        "beq 3f\n\t"
        "tbb [pc, r4]\n"
        "1:\n\t"
        ".byte (10f - 1b) / 2, (11f - 1b) / 2, (12f - 1b) / 2, (13f - 1b) / 2\n"
        "10:\n\t" FC_W16 "\n"
        "11:\n\t" FC_W16 "\n"
        "12:\n\t" FC_W16 "\n"
        "13:\n\t" FC_W16
        "subs r12, r12, #1\n\t"
        "bne 10b\n"
        "3:\n\t"
        "ands r12, r3, #12\n\t"
        "beq 4f\n"
        "5:\n\t"
        "ldr r4, [r1], #4\n\t"
        "sxtab16 r5, r2, r4\n\t"
        "sxtab16 r6, r2, r4, ror #8\n\t"
        "strd r5, r6, [r0], #8\n\t"
        "subs r12, r12, #4\n\t"
        "bne 5b\n"
        "4:\n\t"
        "bx lr\n\t"
        ".p2align 2\n\t"
        ".global ts_fc_widen\n\t"
        ".type ts_fc_widen, %function\n\t"
        ".thumb_func\n"
        "ts_fc_widen:\n\t"
        "push {r4-r11, lr}\n\t"
        "bl .Lfc_widen\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size ts_fc_widen, . - ts_fc_widen\n\t"
        ".p2align 2\n"
        "9:\n\t" /* ts_fc_rows: not the fast path's layer */
        "movs r0, #2\n\t"
        "pop {r3-r11, pc}\n\t"
        ".global ts_fc_rows\n\t"
        ".type ts_fc_rows, %function\n\t"
        ".thumb_func\n"
        /* Frame at sp: 0 skip, 4 xb, 8 w, 12 depth, 16 3 depth, 20 passes, 24 row, 28 last
         * (out_depth - 5), 32 -2, 36 out, 40 mult, 44 shift, 48 cstride (1 per channel, 0 per
         * tensor: then mult/shift hold 5 copies), 52 2 * output_offset + 1, 56 bias; the
         * widened input above it. */
        "ts_fc_rows:\n\t"
        "push {r3-r11, lr}\n\t"
        /* batches, depth, out_depth, per_channel, input offset, filter offset, output offset */
        "ldmia r0, {r4-r10}\n\t"
        "subs r11, r5, #4\n\t"
        "movw r12, #" FC_XSTR(TS_OPT_FC_XBUF) " - 4\n\t"
        "cmp r11, r12\n\t"
        "bhi 9b\n\t" /* depth in [4, TS_OPT_FC_XBUF] */
        "orr r11, r5, r1\n\t"
        "tst r11, #3\n\t"
        "bne 9b\n\t" /* depth % 4, input alignment */
        "cmp r6, #5\n\t"
        "blt 9b\n\t"
        "cmp r3, #0\n\t"
        "beq 9b\n\t" /* no bias */
        "cmp r9, #0\n\t"
        "bne 9b\n\t" /* a filter offset */
        "ldr r11, [sp, #40]\n\t" /* out */
        "ldrd r12, lr, [r0, #36]\n\t" /* mult, shift */
        "movs r9, #1\n\t"
        "orr r9, r9, r10, lsl #1\n\t"
        "mov r10, r3\n\t"
        "mvn r4, #1\n\t"
        "sub sp, sp, r5, lsl #1\n\t"
        "mov r0, sp\n\t" /* xb */
        "sub sp, sp, #64\n\t"
        "add r3, sp, #32\n\t"
        "stmia r3!, {r4, r11, r12, lr}\n\t"
        "stmia r3, {r7, r9, r10}\n\t"
        "lsr r9, r5, #2\n\t"
        "rsb r3, r9, #0\n\t"
        "and r3, r3, #7\n\t"
        "mov r4, r0\n\t"
        "mov r7, r2\n\t"
        "add r10, r5, r5, lsl #1\n\t"
        "add r11, r9, #7\n\t"
        "lsr r11, r11, #3\n\t"
        "movs r12, #0\n\t"
        "sub lr, r6, #5\n\t"
        "mov r9, r5\n\t"
        "stmia sp, {r3, r4, r7, r9, r10, r11, r12, lr}\n\t"
        "pkhbt r2, r8, r8, lsl #16\n\t"
        "mov r3, r5\n\t"
        "bl .Lfc_widen\n"
        ".Lfc_blk:\n\t"
        "ldmia sp, {r0, r1, r2, r3, r9, r10, r11, r12}\n\t" /* skip .. last */
        "mla r2, r11, r3, r2\n\t"
        "ldr lr, [sp, #56]\n\t"
        "add lr, lr, r11, lsl #2\n\t"
        "ldmia lr, {r4-r8}\n\t" /* bias */
        "bl ts_fc_core\n\t"
        "ldr r11, [sp, #24]\n\t"
        "add r12, sp, #32\n\t"
        "ldmia r12, {r0, r1, r2, r3, r9, r10}\n\t" /* -2, out, mult, shift, cstride, o2 */
        "add r1, r1, r11\n\t"
        "mul r9, r9, r11\n\t"
        "add r2, r2, r9, lsl #2\n\t"
        "add r3, r3, r9, lsl #2\n\t"
        FC_RQ("r9", "r4", "0")
        FC_RQ("r4", "r5", "4") "orr r9, r9, r4\n\t"
        FC_RQ("r4", "r6", "8") "orr r9, r9, r4\n\t"
        FC_RQ("r4", "r7", "12") "orr r9, r9, r4\n\t"
        FC_RQ("r4", "r8", "16") "orr r9, r9, r4\n\t"
        "cmp r9, #15\n\t" /* every t in [0, 15] */
        "bhi 6f\n\t"
        "ldrd r11, r12, [sp, #24]\n\t"
        "cmp r11, r12\n\t"
        "beq 7f\n\t"
        "add r11, r11, #5\n\t"
        "cmp r11, r12\n\t"
        "it gt\n\t"
        "movgt r11, r12\n\t" /* the last block overlaps the previous one */
        "str r11, [sp, #24]\n\t"
        "b .Lfc_blk\n"
        "6:\n\t"
        "movs r0, #1\n\t"
        "b 8f\n"
        "7:\n\t"
        "movs r0, #0\n"
        "8:\n\t"
        "ldr r1, [sp, #12]\n\t"
        "add sp, sp, #64\n\t"
        "add sp, sp, r1, lsl #1\n\t"
        "pop {r3-r11, pc}\n\t"
        ".size ts_fc_rows, . - ts_fc_rows\n\t"
        ".popsection");
#define fc_dot5 ts_fc_dot5
#define fc_rows ts_fc_rows
#else
/* 4 weights of a row against the widened inputs xv = (x0, x2 | x1, x3). */
static inline int32_t dot4(const int8_t *f, uint64_t xv, int32_t acc) {
  const uint32_t w = ts_ld32(f);
  acc = ts_smlad(ts_sxtb16(w), (uint32_t)xv, acc);
  return ts_smlad(ts_sxtb16_ror8(w), (uint32_t)(xv >> 32), acc);
}

/* The assembly's arithmetic, in the assembly's order of rows. */
static void fc_dot5(int32_t *acc, const int16_t *xb, const int8_t *w, int32_t s, int32_t ng) {
  for (int32_t g = 0; g < ng; g++, w += 4) {
    uint64_t xv;
    __builtin_memcpy(&xv, xb + 4 * g, 8);
    for (int32_t r = 0; r < 5; r++) acc[r] = dot4(w + r * s, xv, acc[r]);
  }
}

/* ts_fc_rows's arithmetic (the same 64-bit nudge and shifts), same result and failure. */
static int32_t fc_rows(const ts_fc_params_t *p, const int8_t *in, const int8_t *filter,
                       const int32_t *bias, int8_t *out) {
  const int32_t depth = p->accum_depth, last = p->out_depth - 5, cs = p->per_channel;
  const uint32_t o2 = 2u * (uint32_t)p->output_offset + 1u;
  if (depth < 4 || depth > TS_OPT_FC_XBUF || ((depth | (int32_t)(uintptr_t)in) & 3) || last < 0 ||
      !bias || p->filter_offset)
    return 2;
  int16_t xb[TS_OPT_FC_XBUF];
  widen(xb, in, depth, p->input_offset);
  for (int32_t row = 0;; row = row + 5 < last ? row + 5 : last) {
    int32_t acc[5];
    for (int32_t k = 0; k < 5; k++) acc[k] = bias[row + k];
    fc_dot5(acc, xb, filter + row * depth, depth, depth >> 2);
    uint32_t bad = 0;
    for (int32_t k = 0; k < 5; k++) {
      const int32_t c = (row + k) * cs, a = acc[k];
      const uint32_t t = (uint32_t)(-2 - p->shift[c]);
      bad |= t;
      if (t > 15) continue;
      const uint32_t hi = (o2 << t) + (uint32_t)(a >> 31);
      const uint32_t lo = ((uint32_t)a & 0x80000000u) ^ 0x40000000u;
      const uint64_t r = (uint64_t)((int64_t)a * p->mult[c]) + (((uint64_t)hi << 32) | lo);
      out[row + k] = (int8_t)ts_ssat8(((int32_t)(uint32_t)(r >> 32) >> t) >> 1);
    }
    if (bad > 15) return 1;
    if (row == last) return 0;
  }
}
#endif

/* Everything the fast path does not take (depth not a multiple of 4 or beyond
 * TS_OPT_FC_XBUF, fewer than 5 rows, no bias, a filter offset, a shift outside [-17, -2]):
 * 5 rows at a time with fc_dot5 (1 row for fewer), the inputs re-widened per row block when
 * they do not fit the buffer, and TFLM's requantization. One batch. */
static __attribute__((noinline)) void fc_general(const ts_fc_params_t *p, const int8_t *in,
                                                 const int8_t *filter, const int32_t *bias,
                                                 int8_t *out) {
  __attribute__((aligned(8))) int16_t xb[TS_OPT_FC_XBUF];
  const int32_t depth = p->accum_depth, xo = p->input_offset, nrows = p->out_depth;
  const int32_t step = nrows >= 5 ? 5 : 1;
  int32_t xsum = 0; /* sum (x + xo), only needed for a filter offset */
  if (p->filter_offset)
    for (int32_t d = 0; d < depth; d++) xsum += in[d] + xo;
  const uint32_t fcorr = (uint32_t)p->filter_offset * (uint32_t)xsum; /* wraps, as TFLM */
  for (int32_t o = 0; o < nrows; o += step) {
    const int32_t r0 = o + step <= nrows ? o : nrows - step; /* the last block may overlap */
    int32_t acc[5];
    /* wrapping adds: an extreme bias is not C undefined behaviour (as kernels/ref) */
    for (int32_t j = 0; j < step; j++)
      acc[j] = (int32_t)(fcorr + (uint32_t)(bias ? bias[r0 + j] : 0));
    for (int32_t c0 = 0; c0 < depth; c0 += TS_OPT_FC_XBUF) {
      const int32_t n = depth - c0 < TS_OPT_FC_XBUF ? depth - c0 : TS_OPT_FC_XBUF;
      const int32_t n4 = n & ~3;
      if (o == 0 || depth > TS_OPT_FC_XBUF) widen(xb, in + c0, n, xo);
      const int8_t *f = filter + r0 * depth + c0;
      if (step == 5) {
        if (n4) fc_dot5(acc, xb, f, depth, n4 >> 2);
      } else {
        int32_t a = acc[0];
        for (int32_t i = 0; i < n4; i += 4) {
          const uint32_t w = ts_ld32(f + i);
          a = ts_smlad(ts_sxtb16(w), ts_ld32(xb + i), a);
          a = ts_smlad(ts_sxtb16_ror8(w), ts_ld32(xb + i + 2), a);
        }
        acc[0] = a;
      }
      for (int32_t j = 0; j < step; j++)
        for (int32_t i = n4; i < n; i++)
          acc[j] = (int32_t)((uint32_t)acc[j] + (uint32_t)(f[j * depth + i] * xb[i]));
    }
    for (int32_t j = 0; j < step; j++) {
      const int32_t c = p->per_channel ? r0 + j : 0;
      out[r0 + j] = ts_clamp_s8(ts_requant_slow(acc[j], p->mult[c], p->shift[c]) +
                                    p->output_offset, p->act_min, p->act_max);
    }
  }
}

/* A fused activation's range beyond SSAT's [-128, 127]. */
static void fc_clamp(const ts_fc_params_t *p, int8_t *out) {
  const int32_t lo = p->act_min, hi = p->act_max;
  if (lo > -128 || hi < 127)
    for (int32_t o = 0; o < p->out_depth; o++) out[o] = ts_clamp_s8(out[o], lo, hi);
}

void ts_opt_fully_connected_s8(const ts_fc_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output) {
  if (p->batches == 1 && p->per_channel == 1) { /* the usual layer: one call */
    if (fc_rows(p, input, filter, bias, output)) fc_general(p, input, filter, bias, output);
    else fc_clamp(p, output);
    return;
  }
  ts_fc_params_t q = *p; /* fc_rows: per_channel 0 or 1, mult/shift[row .. row + 4] */
  int32_t m5[5], s5[5];
  q.per_channel = p->per_channel != 0;
  if (!q.per_channel) {
    for (int32_t k = 0; k < 5; k++) m5[k] = p->mult[0], s5[k] = p->shift[0];
    q.mult = m5, q.shift = s5;
  }
  for (int32_t b = 0; b < q.batches; b++) {
    const int8_t *in = input + b * q.accum_depth;
    int8_t *out = output + b * q.out_depth;
    if (fc_rows(&q, in, filter, bias, out)) fc_general(&q, in, filter, bias, out);
    else fc_clamp(&q, out);
  }
}
