/* DEPTHWISE_CONV_2D int8, Cortex-M4 DSP kernel, bit-exact with ts_ref_depthwise_conv2d_s8.
 *
 * 3x3 kernels without dilation (the usual depthwise layers), two paths; the input offset
 * folded into the bias in both: sum (x + off) w = sum x w + off * sum w (int32, as the
 * reference's sum), so taps outside the input read the zero point -off. Weights and bias
 * are stored doubled, so each accumulator holds 2 acc and is requantized in 4 instructions
 * (ts_rq_dbl: ADD, SMMLAR, ASR, SSAT; TFLM's double rounding with the output offset folded
 * in) instead of 6; that needs |acc| < 2^30, i.e. no |bias| above 2^29 - 2^18 (bias_ok).
 * - Planes (stride_w 1, rows of at most PW - 3 outputs, or transposed: stride_h 1, a plane
 *   row along an output column, when that gives fewer, longer rows; any other stride,
 *   padding, depth multiplier): per input channel a planar int16 copy of the input
 *   (padding holds the zero point) with a fixed row pitch of PW values, in stripes of up to
 *   NROWS rows, written by a Thumb-2 LDRSB/STRH loop (ts_cm4_dw_widen, 3 instructions per
 *   value). Per output channel one call of ts_cm4_dw3 for all rows of the stripe: 2
 *   neighbouring pixels per pass with the channel's 6 weight words W01 = (w0, w1), W12 =
 *   (w1, w2) per kernel row; for A = (r[x], r[x+1]), B = (r[x+2], r[x+3]) (one LDRD):
 *     pixel x:   SMLAD(A, W01) + SMLABT(B, W12)
 *     pixel x+1: SMLATB(A, W01) + SMLAD(B, W12)
 *   i.e. 5 instructions per 6 MACs, 33 instructions per 2 outputs with the requantization,
 *   loads, stores and loop (1.83 per MAC). An odd row ends with a single-pixel pass (17).
 *   Small layers (depth multiplier 1, depth % 4 == 0, the whole height in 8 plane rows:
 *   MobileNet's 6x6 and 3x3, DS-CNN's 25x5) take 4 channels at a time: one input word
 *   widened into 4 planes 8 rows apart (ts_cm4_dw_widen4, 2.5 instructions per value) and
 *   the 4 records' weight words built from one filter word per tap (ts_cm4_dw_rec4: SXTB16,
 *   doubling SADD16, PKHBT/PKHTB; ~31 instructions per channel instead of ~90).
 * - NHWC (the other strides and wider rows, with depth multiplier 1 and depth % 4 == 0):
 *   straight from the input, 4 channels per word (ts_cm4_dwn): per tap one LDR, one LDRD of
 *   the weight pairs, SXTB16 and SXTB16 ROR 8, 4 SMLABB/SMLATT, i.e. 2 instructions per MAC;
 *   100 instructions per 36 MACs with the requantization. Weight records are built once
 *   per chunk of up to DW_GROUPS groups of 4 channels (ts_cm4_dwn_rec: 8 instructions per
 *   tap for 4 channels); rows outside the input read a row of zero points; a window one
 *   column past the left or right edge reads the 3 columns inside with records whose
 *   kernel columns are shifted, copied from the kernel's record (see dw_nhwc).
 * Any other kernel (1xN, Nx1, 5x5, 7x7, up to ANY_TAPS taps), dilation, and the 3x3 shapes
 * neither path takes, with depth multiplier 1 and depth % 4 == 0: dw_any, an NHWC loop, 4
 * channels per word, one group of 4 channels over all pixels; per pixel the kernel window
 * clipped to the input (as the reference skips the taps outside), per tap LDR of 4 inputs,
 * LDRD of the tap's doubled weights, SXTAB16 / SXTAB16 ROR 8 (the input offset added to the
 * inputs), 4 SMLABB/SMLATT (~12 instructions per 4 MACs with the loop), then 4 x
 * ADD/SMMLAR/ASR/SSAT (rq_dbl). ~3.9 instructions per MAC on a 5x5 8x8x16 layer, 8.5 on a
 * 1x5 row (the per-pixel costs over 20 MACs); 5-8x fewer than ts_plain_conv.
 * A fused activation narrower than int8 is one clamp pass over the outputs afterwards
 * (ts_clamp_pass, exact). Everything else (a depth multiplier > 1 or depth % 4 != 0 off the
 * planes' shapes, more than ANY_TAPS taps, a shift outside [-23, -2], a bias beyond
 * bias_ok's limit) runs ts_plain_conv, the reference's arithmetic as a plain loop nest.
 * Stack: NROWS * PW * 2 bytes (4 KB) of planes or NHWC scratch, plus ~200 bytes. */
#include "ts_dsp.h"
#include "ts_kernels.h"

#ifndef TS_OPT_DW_ROWS
#if TS_OPT_CONV_ROWBUF < 1536 /* the check harness's small-buffer build: stripes run too */
#define TS_OPT_DW_ROWS 5
#else
#define TS_OPT_DW_ROWS 32
#endif
#endif
#ifndef TS_OPT_DW_GROUPS
#define TS_OPT_DW_GROUPS 8 /* 4-channel groups per chunk of the NHWC path */
#endif
enum { PW = TS_DW_PLANES_MAX_W + 3 /* int16 per plane row (128 bytes: the assembly's row step) */,
       NROWS = TS_OPT_DW_ROWS, DW_BUF = NROWS * PW / 2 /* words of the NHWC path's scratch */,
       DW_GROUPS = TS_OPT_DW_GROUPS };

/* One channel, rows x (npairs pixel pairs + odd): output pixels 2i, 2i + 1 (i < npairs) of a
 * row from the plane q (its first kernel row; kernel rows PW apart) into out[0], out[pix],
 * ..., then pixel 2 npairs if odd; then q += npairs * 4 + qstep bytes, out += npairs * 2 *
 * pix + ostep, next row. rec =
 *   [mult, rnd2, e (ts_rq_dbl), pix, 2 bias, 2 bias, W01 row 0, W12 row 0, W01 row 1,
 *    W12 row 1, W01 row 2, W12 row 2 (weights doubled), npairs * 4 (npairs >= 1), qstep,
 *    ostep, rows (>= 1), odd]
 * (rows is counted down in place). */
void ts_cm4_dw3(const int16_t *q, uint32_t *rec, int8_t *out);
/* The same, two output rows at a time, for layers with a fused ReLU (act_min >= the output
 * offset: ts_rq_dbl_relu, 3 instructions per output), stride_h 1 and an even number of
 * pixels per row: per pass a 2 x 2 block, output pixels x, x + 1 of rows y and y + 1 from
 * plane rows y..y + 3 (each plane row's words A, B loaded once for both output rows), 55
 * instructions per 4 outputs instead of 66. rec as ts_cm4_dw3's, with words 13-16 = qstep
 * (to the next row pair), ostep (likewise), rows (>= 1, counted down by 2 in place), out_rs
 * (the output's row stride). An odd last row is paired with a phantom row (plane row
 * rows + 2 read, its outputs stored first, at the same places: out_rs is set to 0 for it;
 * 0 from the start when rows is 1). */
void ts_cm4_dw22(const int16_t *q, uint32_t *rec, int8_t *out);
/* rows x n values: d[r * PW + i] = s[...], s stepping by step per value and by sskip more
 * per row; g = {step, n >= 1, rows >= 1, sskip}. */
void ts_cm4_dw_widen(int16_t *d, const int8_t *s, const int32_t *g);
/* The same for 4 channels at once: value k of each input pixel (s[0..3]) into plane k at
 * d + k * P4 (planes of NROWS / 4 rows). */
enum { P4 = 8 * PW /* int16 between the 4 planes (1024 bytes: the assembly's offsets) */ };
void ts_cm4_dw_widen4(int16_t *d, const int8_t *s, const int32_t *g);
/* The weight words 6-11 of 4 channels' ts_cm4_dw3 records (r, 17 words apart) from a
 * depthwise filter's taps w (one word: 4 channels; taps cs apart in a kernel row, rows rs
 * apart): per kernel row W01 = (2 w0, 2 w1), W12 = (2 w1, 2 w2) of each channel; and the
 * weight sums in int16 lanes (|sum| <= 9 * 128): r[4] = (sum c0, sum c2), r[17 + 4] =
 * (sum c1, sum c3). */
void ts_cm4_dw_rec4(const int8_t *w, uint32_t *r, int32_t cs, int32_t rs);
/* n output pixels of a row, channels in groups of 4 (NHWC, depth multiplier 1). Per group
 * a record
 *   [2 (bias + off * sum w) of channels 0..3 | per tap, kernel rows 0..2, columns 1, 2, 0:
 *    (w c0, w c2), (w c1, w c3) doubled | mult, rnd2, e of channels 0..3 (ts_rq_dbl)]
 * (DWN_REC words) from rec to end. Tap (ky, kx) of group g reads the word at row[ky] + 4 g +
 * kx * cs, the group's outputs go to out + 4 g; then the next pixel: row[ky] += 4 ng +
 * step[ky], out += 4 ng + ostep (ng groups). n is counted down in place. */
enum { DWN_REC = 4 + 18 + 12 };
/* The kernel column of a row's i-th tap in the records (the assembly's order 1, 2, 0). */
static inline int32_t dwn_col(int32_t i) { return i == 2 ? 0 : i + 1; }
typedef struct {
  const uint32_t *end;
  const int8_t *row[3];
  int32_t cs;
  int8_t *out;
  const uint32_t *rec;
  int32_t n, step[3], ostep;
} dwn_args_t;
void ts_cm4_dwn(dwn_args_t *a);
/* The tap words of one group's record (r: its word 4) from a depthwise filter's taps w (4
 * channels a word, in_c apart): (w c0, w c2), (w c1, w c3) doubled, kernel rows 0..2,
 * columns 1, 2, 0; and the sums of each kernel column (int16 lanes, |sum| <= 3 * 128):
 * cs = {(c0, c2), (c1, c3)} of column 1, of column 2, of column 0. */
void ts_cm4_dwn_rec(const int8_t *w, uint32_t *r, int32_t in_c, uint32_t *cs);

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
/* r0 = q, r1 = rec, r2 = out, r3 = end of q's row. Weights of rows 0 and 1 in r4-r7, row 2 loaded
 * per pass into r12/lr; accumulators r8/r9; plane words in r10/r11. 33 instructions per 18
 * MACs. */
#define TS_ROW(off, wa, wb)              \
  "ldrd r10, r11, [r0, #" off "]\n\t"    \
  "smlad r8, r10, " wa ", r8\n\t"        \
  "smlabt r8, r11, " wb ", r8\n\t"       \
  "smlatb r9, r10, " wa ", r9\n\t"       \
  "smlad r9, r11, " wb ", r9\n\t"
/* pixel x alone (its row's last, r0 at it): SMLAD(A, W01) + SMLABT(B, W12) into r8 */
#define TS_ONE(off, wa, wb)              \
  "ldrd r10, r11, [r0, #" off "]\n\t"    \
  "smlad r8, r10, " wa ", r8\n\t"        \
  "smlabt r8, r11, " wb ", r8\n\t"
/* ts_rq_dbl of the doubled accumulator acc into lr: mult, rnd2, e in r10-r12. */
#define TS_RQD(acc)                       \
  "add lr, r11, " acc ", asr #31\n\t"    \
  "smmlar lr, " acc ", r10, lr\n\t"      \
  "asr lr, lr, r12\n\t"                  \
  "ssat lr, #8, lr\n\t"
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_dw3,\"ax\",%progbits\n\t"
    ".global ts_cm4_dw3\n\t"
    ".hidden ts_cm4_dw3\n\t"
    ".type ts_cm4_dw3, %function\n\t"
    ".thumb\n\t"
    ".thumb_func\n\t"
    ".p2align 2\n"
    "ts_cm4_dw3:\n\t"
    "push {r4-r11, lr}\n\t"
    "ldr r3, [r1, #48]\n\t"
    "add r3, r3, r0\n\t"
    "ldrd r4, r5, [r1, #24]\n\t"
    "ldrd r6, r7, [r1, #32]\n"
    "1:\n\t"
    "ldrd r8, r9, [r1, #16]\n\t"
    TS_ROW("0", "r4", "r5")
    TS_ROW("128", "r6", "r7")
    "ldrd r12, lr, [r1, #40]\n\t"
    TS_ROW("256", "r12", "lr")
    "adds r0, r0, #4\n\t"
    "ldm r1, {r10, r11, r12}\n\t" /* mult, rnd2, e */
    TS_RQD("r8")
    "strb lr, [r2]\n\t"
    TS_RQD("r9")
    "ldr r8, [r1, #12]\n\t" /* out_c */
    "strb lr, [r2, r8]\n\t"
    "add r2, r2, r8, lsl #1\n\t"
    "cmp r0, r3\n\t"
    "bne 1b\n\t"
    "ldr r3, [r1, #64]\n\t" /* an odd row: one more pixel, at q and out, no advance */
    "cbz r3, 4f\n\t"
    "ldr r8, [r1, #16]\n\t"
    TS_ONE("0", "r4", "r5")
    TS_ONE("128", "r6", "r7")
    "ldrd r12, lr, [r1, #40]\n\t"
    TS_ONE("256", "r12", "lr")
    "ldm r1, {r10, r11, r12}\n\t"
    TS_RQD("r8")
    "strb lr, [r2]\n"
    "4:\n\t"
    "add lr, r1, #48\n\t"
    "ldm lr, {r8-r11}\n\t" /* npairs * 4, qstep, ostep, rows */
    "add r0, r0, r9\n\t"
    "add r2, r2, r10\n\t"
    "add r3, r0, r8\n\t"
    "subs r11, r11, #1\n\t"
    "str r11, [r1, #60]\n\t"
    "bne 1b\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size ts_cm4_dw3, .-ts_cm4_dw3\n\t"
    ".text\n");
/* r0 = q, r1 = rec, r2 = out, r3 = end of q's row. Weights of two kernel rows in r4-r7
 * (rows 0, 1, then 2 over row 0's), accumulators r8/r9 (row y: pixels x, x + 1) and
 * r10/r11 (row y + 1), plane words in r12/lr; c, d start from a, b's bias words. */
#define TS_PAIR(a, b, wa, wb)             \
  "smlad " a ", r12, " wa ", " a "\n\t"   \
  "smlabt " a ", lr, " wb ", " a "\n\t"   \
  "smlatb " b ", r12, " wa ", " b "\n\t"  \
  "smlad " b ", lr, " wb ", " b "\n\t"
/* ts_rq_dbl_relu of acc into lr: mult, rnd2, e in r4-r6 */
#define TS_RQ22(acc)                      \
  "smmlar lr, " acc ", r4, r5\n\t"       \
  "asr lr, lr, r6\n\t"                   \
  "ssat lr, #8, lr\n\t"
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_dw22,\"ax\",%progbits\n\t"
    ".global ts_cm4_dw22\n\t"
    ".hidden ts_cm4_dw22\n\t"
    ".type ts_cm4_dw22, %function\n\t"
    ".thumb\n\t"
    ".thumb_func\n\t"
    ".p2align 2\n"
    "ts_cm4_dw22:\n\t"
    "push {r4-r11, lr}\n\t"
    "ldr r3, [r1, #48]\n\t"
    "add r3, r3, r0\n"
    "1:\n\t"
    "ldrd r8, r9, [r1, #16]\n\t"
    "ldrd r4, r5, [r1, #24]\n\t"  /* W row 0 */
    "ldrd r12, lr, [r0, #128]\n\t" /* plane row 1: row y + 1 with W row 0 (from the bias) */
    "smlad r10, r12, r4, r8\n\t"
    "smlabt r10, lr, r5, r10\n\t"
    "smlatb r11, r12, r4, r9\n\t"
    "smlad r11, lr, r5, r11\n\t"
    "ldrd r6, r7, [r1, #32]\n\t"  /* W row 1 */
    TS_PAIR("r8", "r9", "r6", "r7")
    "ldrd r12, lr, [r0]\n\t"      /* plane row 0 */
    TS_PAIR("r8", "r9", "r4", "r5")
    "ldrd r4, r5, [r1, #40]\n\t"  /* W row 2 */
    "ldrd r12, lr, [r0, #256]\n\t" /* plane row 2 */
    TS_PAIR("r8", "r9", "r4", "r5")
    TS_PAIR("r10", "r11", "r6", "r7")
    "ldrd r12, lr, [r0, #384]\n\t" /* plane row 3 */
    TS_PAIR("r10", "r11", "r4", "r5")
    "adds r0, r0, #4\n\t"
    "ldm r1, {r4-r7}\n\t"         /* mult, rnd2, e, pix */
    "ldr r12, [r1, #64]\n\t"      /* out_rs */
    TS_RQ22("r10") /* row y + 1 first: a phantom's outputs (out_rs 0) are overwritten */
    "strb lr, [r2, r12]\n\t"
    "add r12, r12, r7\n\t"
    TS_RQ22("r11")
    "strb lr, [r2, r12]\n\t"
    TS_RQ22("r8")
    "strb lr, [r2]\n\t"
    TS_RQ22("r9")
    "strb lr, [r2, r7]\n\t"
    "add r2, r2, r7, lsl #1\n\t"
    "cmp r0, r3\n\t"
    "bne 1b\n\t"
    "add lr, r1, #48\n\t"
    "ldm lr, {r8-r11}\n\t" /* npairs * 4, qstep, ostep, rows */
    "add r0, r0, r9\n\t"
    "add r2, r2, r10\n\t"
    "add r3, r0, r8\n\t"
    "subs r11, r11, #2\n\t"
    "str r11, [r1, #60]\n\t"
    "ble 2f\n\t"
    "cmp r11, #1\n\t"
    "bne 1b\n\t"
    "movs r11, #0\n\t" /* the last row alone: its partner a phantom (out_rs 0) */
    "str r11, [r1, #64]\n\t"
    "b 1b\n"
    "2:\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size ts_cm4_dw22, .-ts_cm4_dw22\n\t"
    ".text\n");
#undef TS_PAIR
#undef TS_RQ22
/* r0 = d, r1 = s, r2 = g. Per row: n % 4 values first (LSLS #31: bit 0 in N, bit 1 in C;
 * LDRSB/STRH/ADD leave the flags alone), then 4 values per pass: 4 LDRSB, 4 STRH, 2 ADD,
 * SUBS, BNE (3 instructions per value). */
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_dw_widen,\"ax\",%progbits\n\t"
    ".global ts_cm4_dw_widen\n\t"
    ".hidden ts_cm4_dw_widen\n\t"
    ".type ts_cm4_dw_widen, %function\n\t"
    ".thumb\n\t"
    ".thumb_func\n\t"
    ".p2align 2\n"
    "ts_cm4_dw_widen:\n\t"
    "push {r4-r8}\n\t"
    "ldm r2, {r2-r5}\n" /* step, n, rows, sskip */
    "1:\n\t"
    "lsls r6, r3, #31\n\t"
    "bpl 2f\n\t"
    "ldrsb r7, [r1]\n\t"
    "add r1, r1, r2\n\t"
    "strh r7, [r0], #2\n"
    "2:\n\t"
    "bcc 3f\n\t"
    "ldrsb r7, [r1]\n\t"
    "ldrsb r8, [r1, r2]\n\t"
    "add r1, r1, r2, lsl #1\n\t"
    "strh r7, [r0], #2\n\t"
    "strh r8, [r0], #2\n"
    "3:\n\t"
    "lsrs r6, r3, #2\n\t"
    "beq 5f\n"
    "4:\n\t"
    "ldrsb r7, [r1]\n\t"
    "ldrsb r8, [r1, r2]\n\t"
    "add r1, r1, r2, lsl #1\n\t"
    "strh r7, [r0], #2\n\t"
    "strh r8, [r0], #2\n\t"
    "ldrsb r7, [r1]\n\t"
    "ldrsb r8, [r1, r2]\n\t"
    "add r1, r1, r2, lsl #1\n\t"
    "strh r7, [r0], #2\n\t"
    "strh r8, [r0], #2\n\t"
    "subs r6, r6, #1\n\t"
    "bne 4b\n"
    "5:\n\t"
    "add r1, r1, r5\n\t"
    "add r0, r0, #128\n\t"
    "sub r0, r0, r3, lsl #1\n\t"
    "subs r4, r4, #1\n\t"
    "bne 1b\n\t"
    "pop {r4-r8}\n\t"
    "bx lr\n\t"
    ".size ts_cm4_dw_widen, .-ts_cm4_dw_widen\n\t"
    ".text\n");
/* r0 = d, r1 = s, r2 = g. Per row: an odd value first, then 2 pixels per pass: 8 LDRSB, 2
 * ADD, 8 STRH (3 at offsets 1024, 2048, 3072), SUBS, BNE (2.5 instructions per value). */
/* r0 = w, r1 = r (then its word 6 + 2 ky), r2 = cs, r3 = rs. Per kernel row: 3 LDR, then
 * for channels 0, 2 (SXTB16) and 1, 3 (ROR 8): 3 SXTB16, 3 SADD16 into the sums, 3 doubling
 * SADD16, 4 PKHBT/PKHTB and 4 STR (38 instructions per row for 4 channels). */
#define TS_REC2(ror, sum, o0, o2)                 \
  "sxtb16 r7, r4" ror "\n\t"                     \
  "sxtb16 r8, r5" ror "\n\t"                     \
  "sxtb16 r9, r6" ror "\n\t"                     \
  "sadd16 " sum ", " sum ", r7\n\t"              \
  "sadd16 " sum ", " sum ", r8\n\t"              \
  "sadd16 " sum ", " sum ", r9\n\t"              \
  "sadd16 r7, r7, r7\n\t"                        \
  "sadd16 r8, r8, r8\n\t"                        \
  "sadd16 r9, r9, r9\n\t"                        \
  "pkhbt lr, r7, r8, lsl #16\n\t"                \
  "str lr, [r1, #" o0 "]\n\t"                    \
  "pkhbt lr, r8, r9, lsl #16\n\t"                \
  "str lr, [r1, #" o0 " + 4]\n\t"                \
  "pkhtb lr, r8, r7, asr #16\n\t"                \
  "str lr, [r1, #" o2 "]\n\t"                    \
  "pkhtb lr, r9, r8, asr #16\n\t"                \
  "str lr, [r1, #" o2 " + 4]\n\t"
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_dw_rec4,\"ax\",%progbits\n\t"
    ".global ts_cm4_dw_rec4\n\t"
    ".hidden ts_cm4_dw_rec4\n\t"
    ".type ts_cm4_dw_rec4, %function\n\t"
    ".thumb\n\t"
    ".thumb_func\n\t"
    ".p2align 2\n"
    "ts_cm4_dw_rec4:\n\t"
    "push {r4-r11, lr}\n\t"
    "movs r12, #3\n\t"
    "movs r10, #0\n\t"
    "movs r11, #0\n\t"
    "adds r1, r1, #24\n" /* word 6 */
    "1:\n\t"
    "ldr r4, [r0]\n\t"
    "ldr r5, [r0, r2]\n\t"
    "ldr r6, [r0, r2, lsl #1]\n\t"
    "add r0, r0, r3\n\t"
    TS_REC2("", "r10", "0", "136")
    TS_REC2(", ror #8", "r11", "68", "204")
    "adds r1, r1, #8\n\t"
    "subs r12, r12, #1\n\t"
    "bne 1b\n\t"
    "str r10, [r1, #-32]\n\t" /* word 4 (r1 at word 12) */
    "str r11, [r1, #36]\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size ts_cm4_dw_rec4, .-ts_cm4_dw_rec4\n\t"
    ".text\n");
#undef TS_REC2
#define TS_PIX4(src, a, b, c, d)      \
  "ldrsb " a ", [" src "]\n\t"       \
  "ldrsb " b ", [" src ", #1]\n\t"   \
  "ldrsb " c ", [" src ", #2]\n\t"   \
  "ldrsb " d ", [" src ", #3]\n\t"   \
  "strh " b ", [r0, #1024]\n\t"      \
  "strh " c ", [r0, #2048]\n\t"      \
  "strh " d ", [r0, #3072]\n\t"      \
  "strh " a ", [r0], #2\n\t"
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_dw_widen4,\"ax\",%progbits\n\t"
    ".global ts_cm4_dw_widen4\n\t"
    ".hidden ts_cm4_dw_widen4\n\t"
    ".type ts_cm4_dw_widen4, %function\n\t"
    ".thumb\n\t"
    ".thumb_func\n\t"
    ".p2align 2\n"
    "ts_cm4_dw_widen4:\n\t"
    "push {r4-r10}\n\t"
    "ldm r2, {r2-r5}\n" /* step, n, rows, sskip */
    "1:\n\t"
    "lsrs r6, r3, #1\n\t" /* pairs; an odd n sets C */
    "bcc 2f\n\t"
    TS_PIX4("r1", "r7", "r8", "r9", "r10")
    "add r1, r1, r2\n\t"
    "cbz r6, 3f\n"
    "2:\n\t"
    "add r12, r1, r2\n\t"
    TS_PIX4("r1", "r7", "r8", "r9", "r10")
    TS_PIX4("r12", "r7", "r8", "r9", "r10")
    "add r1, r12, r2\n\t"
    "subs r6, r6, #1\n\t"
    "bne 2b\n"
    "3:\n\t"
    "add r1, r1, r5\n\t"
    "add r0, r0, #128\n\t"
    "sub r0, r0, r3, lsl #1\n\t"
    "subs r4, r4, #1\n\t"
    "bne 1b\n\t"
    "pop {r4-r10}\n\t"
    "bx lr\n\t"
    ".size ts_cm4_dw_widen4, .-ts_cm4_dw_widen4\n\t"
    ".text\n");
#undef TS_PIX4
/* r0-r2 = row pointers, r3 = cs, r4 = out, r5 = record, accumulators r6-r9 (channels
 * 0..3 of the group), temps r10-r12, lr; the end of the records at [sp]. Per tap: LDR of 4
 * channels, LDRD of their weight pairs, SXTB16 (channels 0, 2) and SXTB16 ROR 8 (1, 3), 4
 * SMLAxy: 8 instructions per 4 MACs; per group 100 instructions for 36 MACs. */
#define TS_TAP(addr)                   \
  "ldr r10, " addr "\n\t"              \
  "ldrd r11, r12, [r5], #8\n\t"        \
  "sxtb16 lr, r10\n\t"                 \
  "smlabb r6, lr, r11, r6\n\t"         \
  "smlatt r8, lr, r11, r8\n\t"         \
  "sxtb16 r10, r10, ror #8\n\t"        \
  "smlabb r7, r10, r12, r7\n\t"        \
  "smlatt r9, r10, r12, r9\n\t"
#define TS_ROW3(r) TS_TAP("[" r ", r3]") TS_TAP("[" r ", r3, lsl #1]") TS_TAP("[" r "], #4")
#define TS_RQ4(acc)                       \
  "ldmia r5!, {r10, r11, r12}\n\t"        \
  TS_RQD(acc)                             \
  "strb lr, [r4], #1\n\t"
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_dwn,\"ax\",%progbits\n\t"
    ".global ts_cm4_dwn\n\t"
    ".hidden ts_cm4_dwn\n\t"
    ".type ts_cm4_dwn, %function\n\t"
    ".thumb\n\t"
    ".thumb_func\n\t"
    ".p2align 2\n"
    "ts_cm4_dwn:\n\t"
    "push {r4-r11, lr}\n\t"
    "ldr r12, [r0], #4\n\t"
    "strd r12, r0, [sp, #-8]!\n\t" /* [sp] the records' end, [sp, #4] &row[0] */
    "ldm r0, {r0-r5}\n"
    "1:\n\t"
    "ldmia r5!, {r6-r9}\n\t"
    TS_ROW3("r0") TS_ROW3("r1") TS_ROW3("r2")
    TS_RQ4("r6") TS_RQ4("r7") TS_RQ4("r8") TS_RQ4("r9")
    "ldrd r10, r11, [sp]\n\t"
    "cmp r5, r10\n\t"
    "bne 1b\n\t"
    "ldr r10, [r11, #24]\n\t" /* n */
    "subs r10, r10, #1\n\t"
    "str r10, [r11, #24]\n\t"
    "beq 2f\n\t"
    "ldr r5, [r11, #20]\n\t" /* rec */
    "add r11, r11, #28\n\t"
    "ldm r11, {r10, r11, r12, lr}\n\t" /* step[0..2], ostep */
    "add r0, r0, r10\n\t"
    "add r1, r1, r11\n\t"
    "add r2, r2, r12\n\t"
    "add r4, r4, lr\n\t"
    "b 1b\n"
    "2:\n\t"
    "add sp, sp, #8\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size ts_cm4_dwn, .-ts_cm4_dwn\n\t"
    ".text\n");
/* r0 = w, r1 = r, r2 = in_c, r3 = cs; column sums r4-r9, temps r10, r11; lr counts the kernel
 * rows. Per tap: LDR, 2 SXTB16, 2 SADD16 into the column's sums, 2 doubling SADD16, STRD. */
#define TS_WTAP(addr, s02, s13)           \
  "ldr r10, " addr "\n\t"                \
  "sxtb16 r11, r10\n\t"                  \
  "sxtb16 r10, r10, ror #8\n\t"          \
  "sadd16 " s02 ", " s02 ", r11\n\t"      \
  "sadd16 " s13 ", " s13 ", r10\n\t"      \
  "sadd16 r11, r11, r11\n\t"             \
  "sadd16 r10, r10, r10\n\t"             \
  "strd r11, r10, [r1], #8\n\t"
__asm__(
    ".syntax unified\n\t"
    ".section .text.ts_cm4_dwn_rec,\"ax\",%progbits\n\t"
    ".global ts_cm4_dwn_rec\n\t"
    ".hidden ts_cm4_dwn_rec\n\t"
    ".type ts_cm4_dwn_rec, %function\n\t"
    ".thumb\n\t"
    ".thumb_func\n\t"
    ".p2align 2\n"
    "ts_cm4_dwn_rec:\n\t"
    "push {r4-r11, lr}\n\t"
    "movs r4, #0\n\t"
    "movs r5, #0\n\t"
    "movs r6, #0\n\t"
    "movs r7, #0\n\t"
    "movs r8, #0\n\t"
    "movs r9, #0\n\t"
    "movs lr, #3\n"
    "1:\n\t"
    TS_WTAP("[r0, r2]", "r4", "r5")
    TS_WTAP("[r0, r2, lsl #1]", "r6", "r7")
    TS_WTAP("[r0]", "r8", "r9")
    "add r0, r0, r2\n\t"
    "add r0, r0, r2, lsl #1\n\t"
    "subs lr, lr, #1\n\t"
    "bne 1b\n\t"
    "stm r3, {r4-r9}\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size ts_cm4_dwn_rec, .-ts_cm4_dwn_rec\n\t"
    ".text\n");
#undef TS_WTAP
#undef TS_TAP
#undef TS_ROW3
#undef TS_RQ4
#undef TS_ROW
#undef TS_RQD
#undef TS_ONE
#else
static inline int32_t lo16s(uint32_t v) { return (int32_t)(int16_t)(v & 0xffffu); }
static inline int32_t hi16s(uint32_t v) { return (int32_t)(int16_t)(v >> 16); }

void ts_cm4_dw3(const int16_t *q, uint32_t *rec, int8_t *out) {
  const int32_t pix = (int32_t)rec[3], npairs = (int32_t)rec[12] / 4;
  for (int32_t i = 0;; i++, q += 2, out += 2 * pix) {
    if (i == npairs + (int32_t)rec[16]) {
      const int32_t odd = (int32_t)rec[16]; /* the single pass did not advance */
      q += (int32_t)rec[13] / 2 - 2 * odd, out += (int32_t)rec[14] - 2 * pix * odd, i = 0;
      if (--rec[15] == 0) return;
    }
    int32_t a0 = (int32_t)rec[4], a1 = (int32_t)rec[5];
    for (int32_t ky = 0; ky < 3; ky++) {
      uint32_t A, B;
      __builtin_memcpy(&A, q + ky * PW, 4);
      __builtin_memcpy(&B, q + ky * PW + 2, 4);
      const uint32_t wa = rec[6 + 2 * ky], wb = rec[7 + 2 * ky];
      a0 = ts_smlad(A, wa, a0);
      a0 = (int32_t)((uint32_t)a0 + (uint32_t)(lo16s(B) * hi16s(wb)));
      a1 = (int32_t)((uint32_t)a1 + (uint32_t)(hi16s(A) * lo16s(wa)));
      a1 = ts_smlad(B, wb, a1);
    }
    out[0] = (int8_t)ts_rq_dbl(a0, rec);
    if (i < npairs) out[pix] = (int8_t)ts_rq_dbl(a1, rec);
  }
}

void ts_cm4_dw22(const int16_t *q, uint32_t *rec, int8_t *out) {
  const int32_t pix = (int32_t)rec[3], npairs = (int32_t)rec[12] / 4;
  for (;;) {
    const int32_t rs = (int32_t)rec[16];
    for (int32_t i = 0; i < npairs; i++, q += 2, out += 2 * pix)
      for (int32_t v = 1; v >= 0; v--) { /* output rows y + 1, y: plane rows v..v + 2 */
        int32_t a0 = (int32_t)rec[4], a1 = (int32_t)rec[5];
        for (int32_t ky = 0; ky < 3; ky++) {
          uint32_t A, B;
          __builtin_memcpy(&A, q + (v + ky) * PW, 4);
          __builtin_memcpy(&B, q + (v + ky) * PW + 2, 4);
          const uint32_t wa = rec[6 + 2 * ky], wb = rec[7 + 2 * ky];
          a0 = ts_smlad(A, wa, a0);
          a0 = (int32_t)((uint32_t)a0 + (uint32_t)(lo16s(B) * hi16s(wb)));
          a1 = (int32_t)((uint32_t)a1 + (uint32_t)(hi16s(A) * lo16s(wa)));
          a1 = ts_smlad(B, wb, a1);
        }
        out[v * rs] = (int8_t)ts_rq_dbl_relu(a0, rec);
        out[v * rs + pix] = (int8_t)ts_rq_dbl_relu(a1, rec);
      }
    q += (int32_t)rec[13] / 2, out += (int32_t)rec[14];
    rec[15] -= 2;
    if ((int32_t)rec[15] <= 0) return;
    if (rec[15] == 1) rec[16] = 0;
  }
}

void ts_cm4_dw_widen(int16_t *d, const int8_t *s, const int32_t *g) {
  for (int32_t r = 0; r < g[2]; r++, d += PW, s += g[3])
    for (int32_t i = 0; i < g[1]; i++, s += g[0]) d[i] = *s;
}

void ts_cm4_dw_widen4(int16_t *d, const int8_t *s, const int32_t *g) {
  for (int32_t r = 0; r < g[2]; r++, d += PW, s += g[3])
    for (int32_t i = 0; i < g[1]; i++, s += g[0])
      for (int32_t k = 0; k < 4; k++) d[k * P4 + i] = s[k];
}

void ts_cm4_dw_rec4(const int8_t *w, uint32_t *r, int32_t cs, int32_t rs) {
  uint32_t sum[2] = {0, 0};
  for (int32_t ky = 0; ky < 3; ky++, w += rs, r += 2)
    for (int32_t h = 0; h < 2; h++) { /* channels h (low halves) and h + 2 (high) */
      const uint32_t a = ts_ld32(w) >> 8 * h, b = ts_ld32(w + cs) >> 8 * h,
                     d = ts_ld32(w + 2 * cs) >> 8 * h;
      const uint32_t x = ts_sxtb16(a), y = ts_sxtb16(b), z = ts_sxtb16(d);
      sum[h] = ts_sadd16(ts_sadd16(ts_sadd16(sum[h], x), y), z);
      const uint32_t x2 = ts_sadd16(x, x), y2 = ts_sadd16(y, y), z2 = ts_sadd16(z, z);
      r[17 * h + 6] = (x2 & 0xffffu) | y2 << 16;
      r[17 * h + 7] = (y2 & 0xffffu) | z2 << 16;
      r[17 * h + 40] = (y2 & 0xffff0000u) | x2 >> 16;
      r[17 * h + 41] = (z2 & 0xffff0000u) | y2 >> 16;
    }
  r[-2] = sum[0], r[17 - 2] = sum[1]; /* word 4 (r at word 6) */
}

void ts_cm4_dwn_rec(const int8_t *w, uint32_t *r, int32_t in_c, uint32_t *cs) {
  for (int32_t m = 0; m < 6; m++) cs[m] = 0;
  for (int32_t t = 0; t < 9; t++, r += 2) { /* kernel row t / 3; columns 1, 2, 0 */
    const int32_t m = t % 3;
    const uint32_t x = ts_ld32(w + (t - m + dwn_col(m)) * in_c);
    const uint32_t w02 = ts_sxtb16(x), w13 = ts_sxtb16_ror8(x);
    cs[2 * m] = ts_sadd16(cs[2 * m], w02);
    cs[2 * m + 1] = ts_sadd16(cs[2 * m + 1], w13);
    r[0] = ts_sadd16(w02, w02);
    r[1] = ts_sadd16(w13, w13);
  }
}

void ts_cm4_dwn(dwn_args_t *a) {
  const uint32_t *r = a->rec;
  for (int32_t g = 0;; r += DWN_REC, g += 4) {
    if (r == a->end) { /* the next pixel */
      if (--a->n == 0) return;
      for (int32_t ky = 0; ky < 3; ky++) a->row[ky] += g + a->step[ky];
      a->out += g + a->ostep, r = a->rec, g = 0;
    }
    uint32_t acc[4] = {r[0], r[1], r[2], r[3]};
    for (int32_t t = 0; t < 9; t++) { /* kernel row t / 3; columns 1, 2, 0 */
      const int32_t kx = dwn_col(t % 3);
      const uint32_t x = ts_ld32(a->row[t / 3] + g + kx * a->cs);
      const uint32_t e = ts_sxtb16(x), od = ts_sxtb16_ror8(x), wa = r[4 + 2 * t], wb = r[5 + 2 * t];
      acc[0] += (uint32_t)(lo16s(e) * lo16s(wa));
      acc[2] += (uint32_t)(hi16s(e) * hi16s(wa));
      acc[1] += (uint32_t)(lo16s(od) * lo16s(wb));
      acc[3] += (uint32_t)(hi16s(od) * hi16s(wb));
    }
    for (int32_t j = 0; j < 4; j++)
      a->out[g + j] = (int8_t)ts_rq_dbl((int32_t)acc[j], r + 22 + 3 * j);
  }
}
#endif

static inline uint32_t pack16(int32_t lo, int32_t hi) {
  return (uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16;
}

/* Channel oc's bias with the input offset folded in (sum (x + off) w = sum x w + off *
 * sum w, int32 as the reference's sum; sw = sum w over the taps the kernel multiplies with
 * inputs), doubled, and its requantization words q = (mult, rnd2, e) for the doubled
 * accumulators of the assemblies (ts_rq_dbl, ts_dsp.h; bias_ok keeps |acc| < 2^30). The
 * compiler's choice to inline it: at -O2 (the firmware) it does, ~8 instructions of call
 * fewer per channel; at -Os (the .text measure) it does not, same size. */
static uint32_t channel(const ts_dw_params_t *p, const int32_t *bias, int32_t oc, int32_t sw,
                        uint32_t *q) {
  const int32_t e = -p->shift[oc];
  q[0] = (uint32_t)p->mult[oc];
  q[1] = ts_rq_dbl_round(e, p->output_offset);
  q[2] = (uint32_t)e;
  return 2 * ((uint32_t)(bias ? bias[oc] : 0) + (uint32_t)(sw * p->input_offset));
}

/* The doubled accumulators need |acc| < 2^30: every |bias| <= 2^29 - 2^18 (|sum (x + off)
 * w| <= 9 * 255 * 128 < 2^19; real models' biases are far smaller). */
static __attribute__((noinline)) int bias_ok(const int32_t *bias, int32_t n) {
  for (int32_t i = 0; bias && i < n; i++)
    if (bias[i] > (1 << 29) - (1 << 18) || bias[i] < -(1 << 29) + (1 << 18)) return 0;
  return 1;
}

/* Channel oc's record words 0-2 and 4-11 for ts_cm4_dw3 (channel's), and the weight pairs
 * W01, W12 of each kernel row, doubled (|2 w| <= 256 fits int16); taps cs apart in a kernel
 * row, rows rs apart. */
static void dw3_rec(const ts_dw_params_t *p, const int8_t *w, const int32_t *bias, int32_t oc,
                    int32_t rs, int32_t cs, uint32_t *rec) {
  int32_t sw = 0;
  for (int32_t ky = 0; ky < 3; ky++, w += rs) {
    const int32_t a = w[0], b = w[cs], c = w[2 * cs];
    rec[6 + 2 * ky] = pack16(2 * a, 2 * b);
    rec[7 + 2 * ky] = pack16(2 * b, 2 * c);
    sw += a + b + c;
  }
  rec[4] = rec[5] = channel(p, bias, oc, sw, rec);
}

/* Records of 4 channels c..c + 3 at once (a depthwise filter, dm 1): the weight words and
 * sums from ts_cm4_dw_rec4, then each channel's bias and requantization words (channel;
 * from channel 3 down, as channels 0 and 1 hold the sums of 2 and 3). */
static void dw3_rec4(const ts_dw_params_t *p, const int8_t *w, const int32_t *bias, int32_t c,
                     int32_t rs, int32_t cs, uint32_t (*rec)[17]) {
  ts_cm4_dw_rec4(w, rec[0], cs, rs);
  for (int32_t j = 3; j >= 0; j--) {
    const uint32_t s = rec[j & 1][4] >> (j & 2) * 8;
    rec[j][4] = rec[j][5] = channel(p, bias, c + j, (int16_t)s, rec[j]);
  }
}

/* The planes (see the top of this file). Tap (ky, kx) of output channel oc is
 * filter[(3 ky + kx) fk + oc fc]: fk = out_c, fc = 1 for a depthwise filter; fk = 1, fc = 9
 * for a CONV_2D filter with one input channel (a grayscale first layer: a depthwise conv
 * with depth multiplier out_c, ts_opt_conv2d_s8). A plane row runs along an output row
 * (stride_w 1, out_w <= TS_DW_PLANES_MAX_W) or, transposed (t), along an output column
 * (stride_h 1, out_h <= TS_DW_PLANES_MAX_W) when that gives fewer, longer rows (DS-CNN's
 * 25x5: 5 rows of 25 instead of 25 rows of 5, a fifth of the per-row costs; depthwise
 * filters only). Rows of one output and a bias beyond bias_ok's limit run ts_plain_conv. */
void ts_cm4_dw_planes(const ts_dw_params_t *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output, int32_t fk, int32_t fc) {
  const int32_t in_c = p->in_c, out_c = p->out_c, dm = p->depth_multiplier;
  const int t = fc == 1 && p->stride_h == 1 && p->out_h <= TS_DW_PLANES_MAX_W &&
                (p->stride_w != 1 || p->out_w > TS_DW_PLANES_MAX_W || p->out_h > p->out_w);
  /* the view: rows (h) and columns (w) of the plane */
  const int32_t in_h = t ? p->in_w : p->in_h, in_w = t ? p->in_h : p->in_w;
  const int32_t out_h = t ? p->out_w : p->out_h, out_w = t ? p->out_h : p->out_w;
  const int32_t pad_h = t ? p->pad_w : p->pad_h, pad_w = t ? p->pad_h : p->pad_w;
  const int32_t sh = t ? p->stride_w : p->stride_h;
  const int32_t in_rs = t ? in_c : p->in_w * in_c, in_cs = t ? p->in_w * in_c : in_c;
  const int32_t out_rs = t ? out_c : p->out_w * out_c, out_ps = t ? p->out_w * out_c : out_c;
  if (out_w < 2 || (fc != 1 && !bias_ok(bias, out_c))) { /* DEPTHWISE's entry checked */
    ts_plain_conv((const ts_conv_params_t *)(const void *)p, input, filter, bias, output,
                  fc == 1 ? dm : 0);
    return;
  }
  __attribute__((aligned(8))) int16_t plane[NROWS * PW];
  uint32_t rec[4][17];
  const int32_t n = out_w + 3; /* plane columns the pixels read */
  const int8_t zp = (int8_t)-p->input_offset; /* the plane holds x; the offset is in the bias */
  /* 4 channels at a time (one word per input pixel widened into 4 planes of 8 rows, records
   * built from one word per tap) when the whole height fits in 8 plane rows */
  const int four = fc == 1 && dm == 1 && in_c % 4 == 0 && NROWS >= 32 && (out_h - 1) * sh + 3 <= 8;
  const int32_t rs = t ? fk : 3 * fk, cs = t ? 3 * fk : fk; /* the filter's row, tap steps */
  const int32_t pr = sh == 1 && !(out_w & 1) && p->act_min >= p->output_offset;
  void (*const rows_fn)(const int16_t *, uint32_t *, int8_t *) = pr ? ts_cm4_dw22 : ts_cm4_dw3;
  const int32_t per = four ? out_h : ((NROWS - 3) / sh + 1) & ~pr; /* output rows per stripe */
  const int32_t e = pad_w + in_w < n ? pad_w + in_w : n; /* input columns end */
  for (int32_t j = 0; j < 4; j++) {
    rec[j][3] = (uint32_t)out_ps;
    rec[j][12] = (uint32_t)(out_w >> 1) * 4;
    rec[j][13] = (uint32_t)((pr + 1) * sh * PW * 2) - rec[j][12];
    rec[j][14] = (uint32_t)((pr + 1) * out_rs - (out_w & ~1) * out_ps);
  }
  for (int32_t b = 0; b < p->batches; b++) {
    const int8_t *in_b = input + b * p->in_h * p->in_w * in_c;
    for (int32_t oy0 = 0; oy0 < out_h; oy0 += per) {
      const int32_t no = out_h - oy0 < per ? out_h - oy0 : per;
      const int32_t rows = (no - 1) * sh + 3, y0 = oy0 * sh - pad_h;
      int8_t *out_s = output + b * p->out_h * p->out_w * out_c + oy0 * out_rs;
      /* the padding, the same for every channel; rows ra..rb - 1, columns pad_w..e - 1 are
       * the input's (widened per channel) */
      const int32_t ra = y0 < 0 ? -y0 : 0, rb = in_h - y0 < rows ? in_h - y0 : rows;
      /* every value zp (step 0), then the input */
      /* word 16: the odd pixel (ts_cm4_dw3) or the output row stride, 0 for one row whose
       * partner is a phantom (ts_cm4_dw22, which reads one plane row past the stripe then) */
      const uint32_t w16 = pr ? (no > 1 ? (uint32_t)out_rs : 0) : (uint32_t)(out_w & 1);
      const int32_t z[4] = {0, n, (four ? 3 * P4 / PW : 0) + rows + (pr & no), 0};
      ts_cm4_dw_widen(plane, &zp, z);
      const int32_t g[4] = {in_cs, e - pad_w, rb - ra, in_rs - (e - pad_w) * in_cs};
      for (int32_t ic = 0; four && ic < in_c; ic += 4) {
        if (g[1] > 0 && g[2] > 0)
          ts_cm4_dw_widen4(plane + ra * PW + pad_w, in_b + (y0 + ra) * in_rs + ic, g);
        dw3_rec4(p, filter + ic, bias, ic, rs, cs, rec);
        for (int32_t j = 0; j < 4; j++) {
          rec[j][15] = (uint32_t)no, rec[j][16] = w16;
          rows_fn(plane + j * P4, rec[j], out_s + ic + j);
        }
      }
      for (int32_t ic = 0; !four && ic < in_c; ic++) {
        if (g[1] > 0 && g[2] > 0)
          ts_cm4_dw_widen(plane + ra * PW + pad_w, in_b + (y0 + ra) * in_rs + ic, g);
        for (int32_t oc = ic * dm; oc < (ic + 1) * dm; oc++) {
          dw3_rec(p, filter + oc * fc, bias, oc, rs, cs, rec[0]);
          rec[0][15] = (uint32_t)no, rec[0][16] = w16;
          rows_fn(plane, rec[0], out_s + oc);
        }
      }
    }
  }
}

/* Depth multiplier 1, depth % 4 == 0, any stride, at most one column of padding on a side
 * (3x3 SAME or VALID): straight from the NHWC input, 4 channels per word, ts_cm4_dwn over a
 * chunk of up to DW_GROUPS groups, one call per run of pixels whose windows lie inside the
 * input's columns. Three sets of records, built once per chunk: the kernel's, and for a
 * window one column past the left (right) edge the kernel's columns shifted by one with a
 * zero column, read from the 3 columns inside (so no copy of the input: the zero column's
 * product is 0 and the bias folds in only the weights used: the kernel's bias word less
 * 2 off times the dropped column's sum); the shifted sets are word copies of the first. Rows outside the input point at zero
 * points (zp, whose x + off is 0) and do not advance. Scratch: buf (the caller checked
 * that it fits). */
static __attribute__((noinline)) void dw_nhwc(const ts_dw_params_t *p, const int8_t *input,
                                              const int8_t *filter, const int32_t *bias,
                                              int8_t *output) {
  __attribute__((aligned(8))) uint32_t buf[DW_BUF];
  const int32_t in_c = p->in_c, in_w = p->in_w, sw = p->stride_w;
  const uint32_t zpw = (uint8_t)-p->input_offset * 0x01010101u;
  for (int32_t c0 = 0; c0 < in_c; c0 += 4 * DW_GROUPS) {
    const int32_t ng = (in_c - c0) / 4 < DW_GROUPS ? (in_c - c0) / 4 : DW_GROUPS;
    const int32_t set = ng * DWN_REC; /* words per set of records */
    const int right = (p->out_w - 1) * sw - p->pad_w + 3 > in_w; /* a window past the right */
    uint32_t *const zp = buf + 3 * set;
    for (int32_t i = 0; 4 * i < 2 * in_c + 4 * ng; i++) zp[i] = zpw;
    for (int32_t g = 0; g < ng; g++) {
      const int32_t c = c0 + 4 * g, off = p->input_offset;
      uint32_t *const r = buf + g * DWN_REC, cs[6];
      ts_cm4_dwn_rec(filter + c, r + 4, in_c, cs);
      for (int32_t j = 0; j < 4; j++) { /* the column sums of channel j: 1, 2, 0 */
        int32_t k[3];
        for (int32_t m = 0; m < 3; m++) k[m] = (int16_t)(cs[2 * m + (j & 1)] >> (j & 2) * 8);
        r[j] = channel(p, bias, c + j, k[0] + k[1] + k[2], r + 22 + 3 * j);
        buf[set + g * DWN_REC + j] = r[j] - 2u * (uint32_t)(k[2] * off); /* no column 0 */
        buf[2 * set + g * DWN_REC + j] = r[j] - 2u * (uint32_t)(k[1] * off); /* no 2 */
      }
      /* sets 1, 2: at tap (ky, i) the set-0 tap of kernel column kx + 1 (kx - 1), or 0;
       * taps 2 words apart, in the order of columns 1, 2, 0 */
      uint32_t *const r1 = buf + set + g * DWN_REC, *const r2 = r1 + set;
      for (int32_t k = 22; k < DWN_REC; k++) r1[k] = r2[k] = r[k];
      for (int32_t t = 4; t < 22; t += 6) {
        if (p->pad_w)
          r1[t] = r[t + 2], r1[t + 1] = r[t + 3], r1[t + 2] = r1[t + 3] = 0,
          r1[t + 4] = r[t], r1[t + 5] = r[t + 1];
        if (right)
          r2[t] = r[t + 4], r2[t + 1] = r[t + 5], r2[t + 2] = r[t], r2[t + 3] = r[t + 1],
          r2[t + 4] = r2[t + 5] = 0;
      }
    }
    dwn_args_t a = {0, {0}, in_c, 0, 0, 0, {0}, in_c - 4 * ng};
    for (int32_t b = 0; b < p->batches; b++)
      for (int32_t oy = 0; oy < p->out_h; oy++)
        for (int32_t ox = 0, n; ox < p->out_w; ox += n) {
          const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * sw - p->pad_w;
          const int32_t v = ix0 < 0 ? 1 : ix0 + 3 > in_w ? 2 : 0; /* left, right edge */
          const int32_t at = ((b * p->in_h + iy0) * in_w + ix0 + (v == 1) - (v == 2)) * in_c + c0;
          n = v ? 1 : (in_w - 3 - ix0) / sw + 1; /* the pixels inside from here */
          a.n = n = n < p->out_w - ox ? n : p->out_w - ox;
          a.rec = buf + v * set;
          a.end = a.rec + set;
          a.out = output + ((b * p->out_h + oy) * p->out_w + ox) * in_c + c0;
          for (int32_t ky = 0; ky < 3; ky++) {
            const int row_in = iy0 + ky >= 0 && iy0 + ky < p->in_h;
            a.row[ky] = row_in ? input + at + ky * in_w * in_c : (const int8_t *)zp;
            a.step[ky] = (row_in ? sw * in_c : 0) - 4 * ng;
          }
          ts_cm4_dwn(&a); /* counts a.n down */
        }
  }
}

/* Depth multiplier 1, depth % 4 == 0, any kernel of at most ANY_TAPS taps, stride, dilation
 * and padding (1xN, Nx1, 5x5, 7x7, dilated; and the 3x3 shapes the two paths above do not
 * take): straight from the NHWC input, 4 channels per word, one group of 4 channels at a
 * time over every output pixel. Per group the taps' weights once, doubled, as
 * (w c0, w c2), (w c1, w c3) (2 words a tap), and the 4 channels' bias and requantization
 * words (channel). Per output pixel the kernel window is clipped to the input (the taps
 * outside are skipped, as the reference does; so the input offset is added to the inputs,
 * not folded into the bias: SXTAB16 of the offset pair), then per tap one LDR of 4 inputs,
 * one LDRD of the weight words, SXTAB16 and SXTAB16 ROR 8, SMLABB/SMLATT x 2 into the 4
 * accumulators (2 acc each), and ts_rq_dbl per output. |acc| stays below 2^30: bias_ok and
 * |sum (x + off) w| <= ANY_TAPS * 255 * 128 < 2^21. */
enum { ANY_TAPS = 64 };
static inline int32_t mac16(int32_t acc, uint32_t a, uint32_t b, int hi) {
  return (int32_t)((uint32_t)acc + (uint32_t)(hi ? (int32_t)(int16_t)(a >> 16) *
                                                       (int32_t)(int16_t)(b >> 16)
                                                 : (int32_t)(int16_t)(a & 0xffffu) *
                                                       (int32_t)(int16_t)(b & 0xffffu)));
}
/* The first kernel index k in [0, n) whose input row or column o + d k is >= 0, and the end
 * of those below `in` (lo == hi: none). */
static inline void clip(int32_t o, int32_t d, int32_t n, int32_t in, int32_t *lo, int32_t *hi) {
  const int32_t a = o < 0 ? (d - 1 - o) / d : 0, b = in - o <= 0 ? 0 : (in - o + d - 1) / d;
  *lo = a, *hi = b < n ? b : n;
}
/* ts_rq_dbl in 4 instructions (ADD, SMMLAR, ASR, SSAT), as the assemblies' TS_RQD. */
static inline int32_t rq_dbl(int32_t acc2, const uint32_t *q) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
  int32_t r;
  __asm__("add %0, %2, %1, asr #31\n\t"
          "smmlar %0, %1, %3, %0\n\t"
          "asr %0, %0, %4\n\t"
          "ssat %0, #8, %0"
          : "=&r"(r)
          : "r"(acc2), "r"(q[1]), "r"(q[0]), "r"(q[2]));
  return r;
#else
  return ts_rq_dbl(acc2, q);
#endif
}
static __attribute__((noinline)) void dw_any(const ts_dw_params_t *p, const int8_t *input,
                                             const int8_t *filter, const int32_t *bias,
                                             int8_t *output) {
  __attribute__((aligned(8))) uint32_t w[2 * ANY_TAPS];
  uint32_t b4[4], q[12];
  const int32_t c_n = p->in_c, kw = p->k_w, taps = p->k_h * kw;
  const int32_t dh = p->dil_h, dw = p->dil_w, xs = dw * c_n; /* input step per kernel column */
  const uint32_t off2 = (uint16_t)p->input_offset * 0x00010001u;
  for (int32_t c = 0; c < c_n; c += 4) {
    for (int32_t t = 0; t < taps; t++) {
      const uint32_t x = ts_ld32(filter + t * c_n + c), e = ts_sxtb16(x), o = ts_sxtb16_ror8(x);
      w[2 * t] = ts_sadd16(e, e), w[2 * t + 1] = ts_sadd16(o, o);
    }
    for (int32_t j = 0; j < 4; j++) b4[j] = channel(p, bias, c + j, 0, q + 3 * j);
    int8_t *out = output + c;
    for (int32_t b = 0; b < p->batches; b++)
      for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_h;
        int32_t ky0, ky1;
        clip(iy0, dh, p->k_h, p->in_h, &ky0, &ky1);
        for (int32_t ox = 0; ox < p->out_w; ox++, out += c_n) {
          const int32_t ix0 = ox * p->stride_w - p->pad_w;
          int32_t kx0 = 0, kx1 = kw;
          if (ix0 < 0 || ix0 + (kw - 1) * dw >= p->in_w) /* an edge: clip the window */
            clip(ix0, dw, kw, p->in_w, &kx0, &kx1);
          int32_t a0 = (int32_t)b4[0], a1 = (int32_t)b4[1], a2 = (int32_t)b4[2],
                  a3 = (int32_t)b4[3];
          const int8_t *row = input + ((b * p->in_h + iy0 + ky0 * dh) * p->in_w + ix0 + kx0 * dw) *
                                          c_n + c;
          for (int32_t ky = ky0; ky < ky1; ky++, row += dh * p->in_w * c_n) {
            const uint32_t *wt = w + 2 * (ky * kw + kx0), *const we = wt + 2 * (kx1 - kx0);
            for (const int8_t *in = row; wt < we; wt += 2, in += xs) {
              const uint32_t x = ts_ld32(in), e = ts_sxtab16(off2, x),
                             o = ts_sxtab16_ror8(off2, x);
              a0 = mac16(a0, e, wt[0], 0), a2 = mac16(a2, e, wt[0], 1);
              a1 = mac16(a1, o, wt[1], 0), a3 = mac16(a3, o, wt[1], 1);
            }
          }
          out[0] = (int8_t)rq_dbl(a0, q), out[1] = (int8_t)rq_dbl(a1, q + 3);
          out[2] = (int8_t)rq_dbl(a2, q + 6), out[3] = (int8_t)rq_dbl(a3, q + 9);
        }
      }
  }
}

void ts_opt_depthwise_conv2d_s8(const ts_dw_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output) {
  int ok = bias_ok(bias, p->out_c);
  for (int32_t c = 0; c < p->out_c; c++) ok &= p->shift[c] <= -2 && p->shift[c] >= -23;
  const int k3 = ok && p->k_h == 3 && p->k_w == 3 && p->dil_h == 1 && p->dil_w == 1;
  if (k3 && ((p->stride_w == 1 && p->out_w <= TS_DW_PLANES_MAX_W) ||
             (p->stride_h == 1 && p->out_h <= TS_DW_PLANES_MAX_W && p->out_h > p->out_w)))
    ts_cm4_dw_planes(p, input, filter, bias, output, p->out_c, 1);
  else if (k3 && p->depth_multiplier == 1 && p->in_c % 4 == 0 && p->in_w >= 3 &&
           p->pad_w <= 1 && (p->out_w - 1) * p->stride_w - p->pad_w + 2 <= p->in_w &&
           p->in_c + 2 * DW_GROUPS * (3 * DWN_REC + 1) <= 2 * DW_BUF)
    dw_nhwc(p, input, filter, bias, output);
  else if (ok && p->depth_multiplier == 1 && p->in_c % 4 == 0 && p->k_h * p->k_w <= ANY_TAPS)
    dw_any(p, input, filter, bias, output);
  else {
    ts_plain_conv((const ts_conv_params_t *)(const void *)p, input, filter, bias, output,
                  p->depth_multiplier); /* what neither path takes */
    return;
  }
  if (p->act_min > -128 || p->act_max < 127) /* a clamp narrower than SSAT's */
    ts_clamp_pass(output, p->batches * p->out_h * p->out_w * p->out_c, p->act_min, p->act_max);
}
