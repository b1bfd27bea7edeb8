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
 * nothing: GCC cannot do that (it makes 5 row pointers), hence Thumb-2 assembly, unrolled 4
 * times and entered in the middle (TBH) for other lengths. When out_depth is not a multiple
 * of 5 the last block overlaps the previous one (rows computed twice, same bytes stored).
 * Per output: TFLM's double rounding in one SMLAL with the output offset folded into the
 * rounding term (the exact form of ts_dsp.h) and SSAT, 12 instructions with the per-channel
 * multiplier and shift loads. On the default model's 400 -> 10 layer: 5,762 instructions
 * for 4,000 MACs (ts_fc_rows, unrolled 8 times then; 5,000 of them the SXTB16/SMLAD floor).
 *
 * Three paths, picked per batch (fc_batch):
 *  - ts_fc_rows (widening, every 5-row block, requantization and stores, all in assembly)
 *    for 5 rows and more: depth a multiple of 4 up to TS_OPT_FC_XBUF, a bias or none (then
 *    5 zero words with a row stride of 0), no filter offset, a word-aligned input, shifts in
 *    [-17, -2].
 *  - ts_fc_pairs (assembly) for 2-4 rows, and for layers ts_fc_rows does not take (deeper
 *    than TS_OPT_FC_XBUF): rows in pairs with the input widened in registers, no buffer and
 *    no widening pass (which 2-4 rows could not share): per 8 inputs LDRD + 4 SXTAB16, per
 *    row LDRD + 4 SXTB16 + 4 SMLAD, 23 instructions per 16 MACs, 1.5 per MAC with the loop;
 *    word-aligned input and filter, depth % 8 == 0, the same requantization (MobileNet's
 *    256 -> 2 head: 840 instructions for 512 MACs, CMSIS-NN's 2-row loop is 15 per 8 MACs).
 *  - fc_pairs (C) for everything else (1 row, depth % 4 or % 8 tails, unaligned tensors, a
 *    filter offset, which int8 weights never have, shifts outside [-17, -2]): the same
 *    pairs in C intrinsics (SXTAB16 adds the filter offset as the input offset), TFLM's
 *    requantization for any shift.
 * On the host (no DSP extension) ts_fc_rows and the widening are the portable C below, the
 * same arithmetic, and fc_pairs takes ts_fc_pairs's layers, so ts-kernel-check exercises
 * these algorithms; the assembly itself is checked on the M4 by the m4check build of
 * ts-kernel-check (tests/runtime/test_opt_m4.py, also every near-miss mutation of its
 * instructions), `make bench` and the emulator tests. `bench fc OUT IN [nobias]` of that
 * build measures one shape (docs/bench.md). */
#include <stdint.h>

#include "ts_dsp.h"
#include "ts_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* One batch of the fast path (see the top of this file; out_depth >= 5, the caller's check;
 * frame and input buffer on its own stack, at most 2 * TS_OPT_FC_XBUF + 104 bytes): 0 done (outputs saturated to int8, not
 * yet clamped to a fused activation), 1 a shift outside [-17, -2] (outputs unusable), 2
 * not a layer it takes (nothing written). */
int32_t ts_fc_rows(const ts_fc_params_t *p, const int8_t *in, const int8_t *filter,
                   const int32_t *bias, int8_t *out);
/* 2 <= out_depth (the caller's check), rows in pairs (an odd last row: the last pair overlaps
 * the previous one) with the input widened in registers, for a word-aligned input and filter,
 * depth % 8 == 0, no filter offset: per 8 inputs LDRD and 4 SXTAB16, per row LDRD of 8
 * weights, 4 SXTB16 and 4 SMLAD (23 instructions per 16 MACs, 16 inputs per pass entered in
 * the middle for an odd 8), the bias (or none) and ts_fc_rows's
 * requantization and stores; returns as ts_fc_rows. No widening pass: the better loop for
 * 2-4 rows, which share no 5-row block. */
int32_t ts_fc_pairs(const ts_fc_params_t *p, const int8_t *in, const int8_t *filter,
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
/* acc a += 4 weights (word w, clobbered) x the widened inputs xe = (x0, x2), xd = (x1, x3). */
#define FC_P2(a, w, xe, xd)                                                                    \
  "sxtb16 lr, " w "\n\t"                                                                        \
  "smlad " a ", lr, " xe ", " a "\n\t"                                                           \
  "sxtb16 " w ", " w ", ror #8\n\t"                                                              \
  "smlad " a ", " w ", " xd ", " a "\n\t"
/* ts_fc_pairs's 8 inputs of 2 rows: 23 instructions per 16 MACs. */
#define FC_P8                                                                                  \
  "ldrd r7, r9, [r1], #8\n\t"                                                                   \
  "sxtab16 r8, r6, r7, ror #8\n\t"                                                              \
  "sxtab16 r7, r6, r7\n\t"                                                                      \
  "sxtab16 r10, r6, r9, ror #8\n\t"                                                             \
  "sxtab16 r9, r6, r9\n\t"                                                                      \
  "ldrd r11, r12, [r2], #8\n\t" FC_P2("r4", "r11", "r7", "r8") FC_P2("r4", "r12", "r9", "r10")   \
  "ldrd r11, r12, [r3], #8\n\t" FC_P2("r5", "r11", "r7", "r8") FC_P2("r5", "r12", "r9", "r10")
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
        ".hword (.Lfc_g2 - .Lfc_tbl) / 2, (.Lfc_g3 - .Lfc_tbl) / 2\n"
        FC_GROUP(0) FC_GROUP(1) FC_GROUP(2) FC_GROUP(3)
        "subs r10, r10, #1\n\t"
        "bne.w .Lfc_g0\n\t"
        "pop {pc}\n\t"
        ".size ts_fc_core, . - ts_fc_core\n\t"
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
        "mov r12, #4\n\t"
        "cmp r10, #0\n\t"
        "itt eq\n\t" /* no bias: 5 zero words, stride 0 */
        "adreq r10, .Lfc_zero\n\t"
        "moveq r12, #0\n\t"
        "stmia r3, {r7, r9, r10, r12}\n\t"
        "lsr r9, r5, #2\n\t"
        "rsb r3, r9, #0\n\t"
        "and r3, r3, #3\n\t"
        "mov r4, r0\n\t"
        "mov r7, r2\n\t"
        "add r10, r5, r5, lsl #1\n\t"
        "add r11, r9, #3\n\t"
        "lsr r11, r11, #2\n\t"
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
        "ldrd lr, r4, [sp, #56]\n\t"
        "mla lr, r4, r11, lr\n\t"
        "ldmia lr, {r4-r8}\n\t" /* bias (or the zero words) */
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
        ".p2align 2\n"
        ".Lfc_zero:\n\t"
        ".word 0, 0, 0, 0, 0\n\t"
        ".size ts_fc_rows, . - ts_fc_rows\n\t"
        ".p2align 2\n"
        "9:\n\t" /* ts_fc_pairs: not a layer it takes */
        "movs r0, #2\n\t"
        "pop {r4-r11, pc}\n\t"
        ".global ts_fc_pairs\n\t"
        ".type ts_fc_pairs, %function\n\t"
        ".thumb_func\n"
        /* Frame at sp: 0 row, 4 last (out_depth - 2), 8 x, 12 filter, 16 depth, 20 bias (or
         * the zero words), 24 bias stride (4 or 0), 28 out, 32 mult, 36 shift, 40 cstride,
         * 44 2 * output_offset + 1. In the loop: r0 passes, r1 x, r2 and r3 the 2 rows, r4
         * r5 accumulators, r6 the input offset in both halves (kept from pair to pair). */
        "ts_fc_pairs:\n\t"
        "push {r4-r11, lr}\n\t"
        /* batches, depth, out_depth, per_channel, input offset, filter offset, output offset */
        "ldmia r0, {r4-r10}\n\t"
        "orr r11, r1, r2\n\t"
        "orr r11, r5, r11, lsl #1\n\t"
        "tst r11, #7\n\t"
        "bne 9b\n\t" /* input and filter word-aligned (LDRD), depth % 8 == 0 */
        "cmp r9, #0\n\t"
        "bne 9b\n\t" /* a filter offset */
        "ldr r11, [sp, #36]\n\t" /* out */
        "ldrd r12, lr, [r0, #36]\n\t" /* mult, shift */
        "sub sp, sp, #48\n\t"
        "movs r9, #1\n\t"
        "orr r9, r9, r10, lsl #1\n\t"
        "mov r10, #4\n\t"
        "cmp r3, #0\n\t"
        "itt eq\n\t" /* no bias: the zero words, stride 0 */
        "adreq r3, .Lfc_zero\n\t"
        "moveq r10, #0\n\t"
        "sub r6, r6, #2\n\t"
        "movs r0, #0\n\t"
        "strd r0, r6, [sp]\n\t"
        "strd r1, r2, [sp, #8]\n\t"
        "strd r5, r3, [sp, #16]\n\t"
        "strd r10, r11, [sp, #24]\n\t"
        "strd r12, lr, [sp, #32]\n\t"
        "strd r7, r9, [sp, #40]\n\t"
        "pkhbt r6, r8, r8, lsl #16\n"
        ".Lfp_pair:\n\t"
        "ldr r11, [sp]\n\t" /* row */
        "ldrd r1, r2, [sp, #8]\n\t"
        "ldrd r12, r3, [sp, #16]\n\t"
        "ldr lr, [sp, #24]\n\t"
        "mla r2, r11, r12, r2\n\t" /* row 0 */
        "mla r3, r11, lr, r3\n\t"
        "ldr r4, [r3]\n\t"
        "ldr r5, [r3, lr]\n\t" /* the 2 biases */
        "add r3, r2, r12\n\t" /* row 1 */
        "adds r0, r12, #8\n\t"
        "lsrs r0, r0, #4\n\t" /* passes of 16 inputs; carry clear: an odd 8 first (at 5) */
        "beq 3f\n\t"
        "bcc 5f\n"
        "4:\n\t" FC_P8 "5:\n\t" FC_P8
        "subs r0, r0, #1\n\t"
        "bne 4b\n"
        "3:\n\t"
        "ldr r11, [sp]\n\t"
        "add r12, sp, #28\n\t"
        "ldmia r12, {r1, r2, r3, r9, r10}\n\t" /* out, mult, shift, cstride, o2 */
        "add r1, r1, r11\n\t"
        "mul r9, r9, r11\n\t"
        "add r2, r2, r9, lsl #2\n\t"
        "add r3, r3, r9, lsl #2\n\t"
        "mvn r0, #1\n\t"
        FC_RQ("r9", "r4", "0")
        FC_RQ("r4", "r5", "4") "orr r9, r9, r4\n\t"
        "cmp r9, #15\n\t" /* both t in [0, 15] */
        "bhi 6f\n\t"
        "ldrd r11, r12, [sp]\n\t"
        "cmp r11, r12\n\t"
        "beq 7f\n\t"
        "add r11, r11, #2\n\t"
        "cmp r11, r12\n\t"
        "it gt\n\t"
        "movgt r11, r12\n\t" /* an odd last row: the last pair overlaps the previous one */
        "str r11, [sp]\n\t"
        "b .Lfp_pair\n"
        "6:\n\t"
        "movs r0, #1\n\t"
        "b 8f\n"
        "7:\n\t"
        "movs r0, #0\n"
        "8:\n\t"
        "add sp, sp, #48\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size ts_fc_pairs, . - ts_fc_pairs\n\t"
        ".popsection");
#define fc_rows ts_fc_rows
#define fc_rows2 ts_fc_pairs
#else
/* ts_fc_pairs is assembly only: on the host fc_pairs (the same products) takes its layers. */
static int32_t fc_rows2(const ts_fc_params_t *p, const int8_t *in, const int8_t *filter,
                        const int32_t *bias, int8_t *out) {
  (void)p, (void)in, (void)filter, (void)bias, (void)out;
  return 2;
}
/* xb[i] = src[i] + xo for i < n (a multiple of 4), in SXTB16 order per 4 inputs: value k of
 * a group in slot (0, 2, 1, 3)[k] of it, as .Lfc_widen stores them. */
static void widen(int16_t *xb, const int8_t *src, int32_t n, int32_t xo) {
  for (int32_t i = 0; i < n; i++) xb[(i & ~3) | (i & 1) << 1 | (i >> 1 & 1)] = (int16_t)(src[i] + xo);
}

/* 4 weights of a row against the widened inputs xv = (x0, x2 | x1, x3). */
static inline int32_t dot4(const int8_t *f, uint64_t xv, int32_t acc) {
  const uint32_t w = ts_ld32(f);
  acc = ts_smlad(ts_sxtb16(w), (uint32_t)xv, acc);
  return ts_smlad(ts_sxtb16_ror8(w), (uint32_t)(xv >> 32), acc);
}

/* ts_fc_core's arithmetic, in the assembly's order of rows. */
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
      p->filter_offset)
    return 2;
  int16_t xb[TS_OPT_FC_XBUF];
  widen(xb, in, depth, p->input_offset);
  for (int32_t row = 0;; row = row + 5 < last ? row + 5 : last) {
    int32_t acc[5];
    for (int32_t k = 0; k < 5; k++) acc[k] = bias ? bias[row + k] : 0;
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

/* One output of fc_pairs: TFLM's requantization (any shift), the offset, the fused clamp. */
static __attribute__((noinline)) int8_t fc_out(const ts_fc_params_t *p, int32_t o, int32_t acc) {
  const int32_t c = p->per_channel ? o : 0;
  return ts_clamp_s8(ts_requant_slow(acc, p->mult[c], p->shift[c]) + p->output_offset,
                     p->act_min, p->act_max);
}

/* acc[0..1] += rows w and w + s (the filter offset fo2 in both halves added to the weights)
 * against n4 inputs x (a multiple of 4, the offset xo2 added): per 4 inputs one LDR and two
 * SXTAB16, per row one LDR, two SXTAB16 and two SMLAD, 13 instructions per 8 MACs. */
static __attribute__((noinline)) void fc_dot2(int32_t *acc, const int8_t *x, const int8_t *w,
                                              int32_t s, const int8_t *xend, uint32_t xo2,
                                              uint32_t fo2) {
  int32_t a0 = acc[0], a1 = acc[1];
#pragma GCC unroll 2
  for (; x < xend; x += 4, w += 4) {
    const uint32_t v = ts_ld32(x), xe = ts_sxtab16(xo2, v), xd = ts_sxtab16_ror8(xo2, v);
    uint32_t f = ts_ld32(w);
    a0 = ts_smlad(ts_sxtab16(fo2, f), xe, a0);
    a0 = ts_smlad(ts_sxtab16_ror8(fo2, f), xd, a0);
    f = ts_ld32(w + s);
    a1 = ts_smlad(ts_sxtab16(fo2, f), xe, a1);
    a1 = ts_smlad(ts_sxtab16_ror8(fo2, f), xd, a1);
  }
  acc[0] = a0, acc[1] = a1;
}

/* a + row w against n4 inputs x (offsets as fc_dot2's): an odd last row, e.g. a Dense(1)
 * head, 8 instructions per 4 MACs instead of fc_dot2's 13 for the row computed twice. */
static __attribute__((noinline)) int32_t fc_dot1(int32_t a, const int8_t *x, const int8_t *w,
                                                 const int8_t *xend, uint32_t xo2,
                                                 uint32_t fo2) {
  for (; x < xend; x += 4, w += 4) {
    const uint32_t v = ts_ld32(x), f = ts_ld32(w);
    a = ts_smlad(ts_sxtab16(fo2, f), ts_sxtab16(xo2, v), a);
    a = ts_smlad(ts_sxtab16_ror8(fo2, f), ts_sxtab16_ror8(xo2, v), a);
  }
  return a;
}

/* Every layer neither assembly routine takes (1 row, depth % 4 or % 8 tails, unaligned
 * tensors, a filter offset, shifts outside [-17, -2]); on the host also ts_fc_pairs's
 * layers. Two rows at a time with fc_dot2 (an odd last row alone with fc_dot1), the input
 * widened in registers, so no buffer, any depth and alignment; the depth % 4 tail in C.
 * One batch. */
static __attribute__((noinline)) void fc_pairs(const ts_fc_params_t *p, const int8_t *in,
                                               const int8_t *filter, const int32_t *bias,
                                               int8_t *out) {
  const int32_t depth = p->accum_depth, n4 = depth & ~3, last = p->out_depth - 1;
  const int32_t xo = p->input_offset, fo = p->filter_offset;
  const uint32_t xo2 = (uint32_t)(uint16_t)xo * 0x10001u, fo2 = (uint32_t)(uint16_t)fo * 0x10001u;
  for (int32_t o = 0; o <= last; o += 2) {
    const int32_t o1 = o < last ? o + 1 : o;
    const int8_t *w0 = filter + o * depth, *w1 = filter + o1 * depth;
    /* wrapping adds: an extreme bias is not C undefined behaviour (as kernels/ref) */
    int32_t acc[2] = {bias ? bias[o] : 0, bias ? bias[o1] : 0};
    if (o1 != o)
      fc_dot2(acc, in, w0, (int32_t)(w1 - w0), in + n4, xo2, fo2);
    else
      acc[0] = fc_dot1(acc[0], in, w0, in + n4, xo2, fo2);
    for (int32_t i = n4; i < depth; i++) {
      const int32_t x = in[i] + xo;
      acc[0] = (int32_t)((uint32_t)acc[0] + (uint32_t)((w0[i] + fo) * x));
      acc[1] = (int32_t)((uint32_t)acc[1] + (uint32_t)((w1[i] + fo) * x));
    }
    out[o] = fc_out(p, o, acc[0]);
    if (o1 != o) out[o1] = fc_out(p, o1, acc[1]);
  }
}

/* A fused activation's range beyond SSAT's [-128, 127]. */
static void fc_clamp(const ts_fc_params_t *p, int8_t *out) {
  const int32_t lo = p->act_min, hi = p->act_max;
  if (lo > -128 || hi < 127)
    for (int32_t o = 0; o < p->out_depth; o++) out[o] = ts_clamp_s8(out[o], lo, hi);
}

/* One batch: the assembly for its layers (5-row blocks from 5 rows up to TS_OPT_FC_XBUF
 * inputs, else pairs from 2 rows), fc_pairs for the others. */
static void fc_batch(const ts_fc_params_t *p, const int8_t *in, const int8_t *filter,
                     const int32_t *bias, int8_t *out) {
  const int32_t rows = p->out_depth;
  int32_t r = rows >= 5 ? fc_rows(p, in, filter, bias, out) : 2;
  if (r == 2 && rows >= 2) r = fc_rows2(p, in, filter, bias, out);
  if (r)
    fc_pairs(p, in, filter, bias, out);
  else
    fc_clamp(p, out);
}

void ts_opt_fully_connected_s8(const ts_fc_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output) {
  if (p->batches == 1 && p->per_channel == 1) { /* the usual layer: one call */
    fc_batch(p, input, filter, bias, output);
    return;
  }
  ts_fc_params_t q = *p; /* the assembly: per_channel 0 or 1, mult/shift[row .. row + 4] */
  int32_t m5[5], s5[5];
  q.per_channel = p->per_channel != 0;
  if (!q.per_channel) {
    for (int32_t k = 0; k < 5; k++) m5[k] = p->mult[0], s5[k] = p->shift[0];
    q.mult = m5, q.shift = s5;
  }
  for (int32_t b = 0; b < q.batches; b++)
    fc_batch(&q, input + b * q.accum_depth, filter, bias, output + b * q.out_depth);
}
