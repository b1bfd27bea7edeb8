/*
 * Names of TFLite builtin operator codes, for host tools (the native runner, tests).
 * Not part of the device API (ts_runtime.h): the runtime reports an operator by its
 * builtin code ("unsupported op code 28 at operator 1"), and the host names it
 * (ts_name_op_codes below, or tinyscope's Python side), so the firmware carries no table.
 */
#ifndef TS_OPNAMES_H
#define TS_OPNAMES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Name of a TFLite builtin operator code, e.g. "CONV_2D"; "UNKNOWN" if not known. */
const char *ts_op_name(int32_t builtin_op);

/* Copies `msg` to `out` (NUL-terminated, at most `size` bytes) with every
 * "op code N" of a known builtin operator replaced by "op NAME". */
void ts_name_op_codes(const char *msg, char *out, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* TS_OPNAMES_H */
