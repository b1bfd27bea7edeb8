/* RESIZE_BILINEAR: NHWC int8 by TFLM's integer path (ResizeBilinearInteger: weights in
 * 1/1024 steps, products rounded half away from zero by 2^20); the prepare is
 * RESIZE_NEAREST_NEIGHBOR's (ops/resize_nearest_neighbor.c). */
#include "ts_internal.h"

ts_status_t ts_resize_bilinear_prepare(ts_loader_t *L, ts_oprec_t *o) {
  return ts_resize_prepare(L, o);
}

ts_status_t ts_resize_bilinear_eval(const ts_eval_t *e) {
  ts_ref_resize_bilinear_s8(e->params, e->in0, e->out);
  return TS_OK;
}
