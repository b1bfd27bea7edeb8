/* The operator table, generated from ts_ops.def: kind -> {code, record size, per-channel
 * slots, prepare, eval}. */
#include "ts_internal.h"

#ifdef TS_TEST_SCRATCH /* tests: every operator may ask for scratch (ts_interp.c) */
#define TEST_FLAGS TS_OPT_SCRATCH
#else
#define TEST_FLAGS 0u
#endif

const ts_op_t ts_ops[TS_NUM_KINDS] = {
#define TS_OP(name, code, fn, params, flags)                                         \
  {code, (uint8_t)((flags) | TEST_FLAGS), TS_REC_SIZE(params, (flags) | TEST_FLAGS),  \
   ts_##fn##_prepare, ts_##fn##_eval},
#include "ts_ops.def"
#undef TS_OP
};

#define TS_OP(name, code, fn, params, flags) \
  _Static_assert((code) < 256, #name ": ts_op_t keeps the builtin code in a byte");
#include "ts_ops.def"
#undef TS_OP

int ts_op_kind(int32_t code) {
  for (int k = 0; k < TS_NUM_KINDS; k++)
    if (ts_ops[k].code == code) return k;
  return -1;
}
