/* MAX_POOL_2D and AVERAGE_POOL_2D (as TFLM's pooling.cc, one file for both): NHWC int8,
 * SAME/VALID padding, strides, fused activation; input and output share quantization. */
#include "ts_internal.h"

static ts_status_t pool_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const int32_t oi = op_out(L, o, 0);
  int32_t id[4], od[4]; /* rank 4: the dims themselves */
  CHECK(ts_need_4d_io(L, op_in(L, o, 0), oi, id, od));
  const ts_trec_t *out = &L->t[oi];
  int32_t v[6]; /* Pool2DOptions: padding, stride_w, stride_h, filter_w, filter_h, activation */
  int present;
  CHECK(ts_options(L, "biiiib", v, &present));
  if (!present) return ts_ofail(L, TS_ERR_BAD_MODEL, "lacks its options");
  const int32_t padding = v[0], sw = v[1], sh = v[2], fw = v[3], fh = v[4], act = v[5];
  ts_pool_params_t *p = PARAMS(o, ts_pool_params_t);
  if (fw < 1 || fh < 1 || id[0] != od[0] || id[3] != od[3])
    return ts_ofail(L, TS_ERR_BAD_MODEL, "pooling shapes do not match");
  CHECK(ts_spatial(L, padding, id[1], fh, sh, 1, od[1], &p->pad_h));
  CHECK(ts_spatial(L, padding, id[2], fw, sw, 1, od[2], &p->pad_w));
  CHECK(ts_act_range(L, act, out, &p->act_min, &p->act_max));
  p->batches = id[0], p->in_h = id[1], p->in_w = id[2], p->depth = id[3];
  p->out_h = od[1], p->out_w = od[2], p->f_h = fh, p->f_w = fw, p->stride_h = sh;
  p->stride_w = sw;
  return TS_OK;
}

ts_status_t ts_max_pool_prepare(ts_loader_t *L, ts_oprec_t *o) {
  CHECK(pool_prepare(L, o));
  /* Without padding, output pixel k is stored after its window is read and every later
   * window starts at input pixel >= k: both kernels are safe in place. */
  const ts_pool_params_t *p = PARAMS(o, ts_pool_params_t);
  if (p->pad_h == 0 && p->pad_w == 0) o->flags |= TS_OPF_IN_PLACE;
  return TS_OK;
}

ts_status_t ts_max_pool_eval(const ts_eval_t *e) {
  KERNEL_MAX_POOL(e->params, e->in0, e->out);
  return TS_OK;
}

ts_status_t ts_avg_pool_prepare(ts_loader_t *L, ts_oprec_t *o) { return pool_prepare(L, o); }

ts_status_t ts_avg_pool_eval(const ts_eval_t *e) {
  if (KERNEL_AVG_POOL(e->params, e->in0, e->out))
    return ts_eval_fail(e, TS_ERR_BAD_MODEL, "empty pooling window");
  return TS_OK;
}
