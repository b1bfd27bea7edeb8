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

const char *ts_status_name(ts_status_t s) {
  switch (s) {
    case TS_OK: return "TS_OK";
    case TS_ERR_BAD_MODEL: return "TS_ERR_BAD_MODEL";
    case TS_ERR_UNSUPPORTED: return "TS_ERR_UNSUPPORTED";
    case TS_ERR_ARENA_TOO_SMALL: return "TS_ERR_ARENA_TOO_SMALL";
    case TS_ERR_BAD_ARG: return "TS_ERR_BAD_ARG";
    case TS_ERR_NOT_READY: return "TS_ERR_NOT_READY";
    default: return "TS_ERR_UNKNOWN";
  }
}
