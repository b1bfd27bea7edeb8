/* The operator table, generated from ts_ops.def: kind -> {code, record size, per-channel
 * slots, prepare, eval}. */
#include "ts_internal.h"

const ts_op_t ts_ops[TS_NUM_KINDS] = {
#define TS_OP(name, code, fn, params, per_channel) \
  {code, TS_REC_SIZE(params), per_channel, ts_##fn##_prepare, ts_##fn##_eval},
#include "ts_ops.def"
#undef TS_OP
};

int ts_op_kind(int32_t code) {
  for (int k = 0; k < TS_NUM_KINDS; k++)
    if (ts_ops[k].code == code) return k;
  return -1;
}
