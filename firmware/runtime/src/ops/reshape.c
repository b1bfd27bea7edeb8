/* RESHAPE: the same bytes under another shape (the new shape is the output tensor's; the
 * optional shape input is not read). An alias: the loader gives the output the input's
 * bytes (TS_OPF_ALIAS), even for a model input or an input read again later, unless that
 * would make the output larger than the input; then eval copies. */
#include "ts_internal.h"

ts_status_t ts_reshape_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const ts_trec_t *r[2];
  CHECK(ts_need_s8_io(L, o, r));
  if (R_BYTES(r[0]) != R_BYTES(r[1]))
    return ts_ofail(L, TS_ERR_BAD_MODEL, "reshape changes the element count");
  PARAMS(o, ts_copy_params_t)->bytes = R_BYTES(r[1]);
  o->flags |= TS_OPF_IN_PLACE | TS_OPF_ALIAS;
  return TS_OK;
}

ts_status_t ts_reshape_eval(const ts_eval_t *e) {
  if (e->out != e->in0) memmove(e->out, e->in0, ((const ts_copy_params_t *)e->params)->bytes);
  return TS_OK;
}
