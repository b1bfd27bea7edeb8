/* Names of the runtime's enums for messages: tensor types and status codes. (Operator
 * names are a host tool's table: ts_opnames.c.) */
#include "ts_runtime.h"

const char *ts_dtype_name(int32_t t) {
  switch (t) {
    case TS_FLOAT32: return "float32";
    case TS_INT32: return "int32";
    case TS_UINT8: return "uint8";
    case TS_INT64: return "int64";
    case TS_INT16: return "int16";
    case TS_INT8: return "int8";
    default: return "other";
  }
}

/* One string of the names in status order (the last for any other value): no pointer
 * table to link. */
const char *ts_status_name(ts_status_t s) {
  static const char names[] = "TS_OK\0TS_ERR_BAD_MODEL\0TS_ERR_UNSUPPORTED\0"
                              "TS_ERR_ARENA_TOO_SMALL\0TS_ERR_BAD_ARG\0TS_ERR_NOT_READY\0"
                              "TS_ERR_UNKNOWN";
  _Static_assert(TS_OK == 0 && TS_ERR_BAD_MODEL == 1 && TS_ERR_UNSUPPORTED == 2 &&
                     TS_ERR_ARENA_TOO_SMALL == 3 && TS_ERR_BAD_ARG == 4 && TS_ERR_NOT_READY == 5,
                 "names[] lists the statuses in their order");
  const char *p = names;
  for (uint32_t k = (uint32_t)s < 6u ? (uint32_t)s : 6u; k > 0; p++)
    if (*p == 0) k--;
  return p;
}
