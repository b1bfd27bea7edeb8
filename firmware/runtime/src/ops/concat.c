/* CONCATENATION of up to TS_MAX_CONCAT_INPUTS int8 tensors along one axis: a byte copy, as
 * TFLM (which concatenates int8 without requantizing: the converter gives all the inputs
 * the output's quantization). */
#include "ts_internal.h"

ts_status_t ts_concat_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const int32_t oi = op_out(L, o, 0);
  CHECK(ts_need_s8(L, oi, "output"));
  const ts_trec_t *out = &L->t[oi];
  if (o->n_in < 1 || o->n_in > TS_MAX_CONCAT_INPUTS)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "%d inputs (at most %d)", o->n_in,
                    TS_MAX_CONCAT_INPUTS);
  int32_t v[2]; /* ConcatenationOptions: axis, activation */
  int present;
  CHECK(ts_options(L, "ib", v, &present));
  int32_t axis = v[0];
  if (v[1] != 0) return ts_ofail(L, TS_ERR_UNSUPPORTED, "fused activation on CONCATENATION");
  if (axis < 0) axis += out->ndims;
  if (axis < 0 || axis >= out->ndims) return ts_ofail(L, TS_ERR_BAD_MODEL, "axis out of range");
  ts_concat_params_t *p = PARAMS(o, ts_concat_params_t);
  p->num_inputs = o->n_in;
  p->outer = 1;
  for (int k = 0; k < axis; k++) p->outer *= DIM(out, k);
  int32_t left = DIM(out, axis); /* the output's extent along the axis not yet covered */
  for (int32_t j = 0; j < o->n_in; j++) {
    const int32_t ij = op_in(L, o, j);
    CHECK(ts_need_s8(L, ij, "input"));
    const ts_trec_t *in = &L->t[ij];
    if (in->ndims != out->ndims) return ts_ofail(L, TS_ERR_BAD_MODEL, "input ranks differ");
    for (int k = 0; k < out->ndims; k++)
      if (k != axis && DIM(in, k) != DIM(out, k))
        return ts_ofail(L, TS_ERR_BAD_MODEL, "input shapes differ");
    p->inner[j] = ts_elems(in) / p->outer;
    if ((left -= DIM(in, axis)) < 0) break; /* (left >= 0 before: no overflow) */
  }
  if (left) return ts_ofail(L, TS_ERR_BAD_MODEL, "output shape does not match");
  return TS_OK;
}

ts_status_t ts_concat_eval(const ts_eval_t *e) {
  const int8_t *ins[TS_MAX_CONCAT_INPUTS];
  const ts_concat_params_t *p = e->params;
  for (int32_t k = 0; k < p->num_inputs; k++) ins[k] = ts_eval_input(e, k);
  ts_ref_concat_s8(p, ins, e->out);
  return TS_OK;
}
