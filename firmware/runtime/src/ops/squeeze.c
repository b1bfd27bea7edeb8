/* SQUEEZE: drops size-1 dimensions; the same bytes under the output's shape, like RESHAPE
 * (an alias of the input). */
#include "ts_internal.h"

ts_status_t ts_squeeze_prepare(ts_loader_t *L, ts_oprec_t *o) { return ts_reshape_prepare(L, o); }

ts_status_t ts_squeeze_eval(const ts_eval_t *e) { return ts_reshape_eval(e); }
