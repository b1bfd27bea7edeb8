/* RESIZE_NEAREST_NEIGHBOR: NHWC int8, constant size [out_h, out_w], align_corners and
 * half_pixel_centers options; the output keeps the input's quantization. */
#include "ts_internal.h"

ts_status_t ts_resize_prepare(ts_loader_t *L, ts_oprec_t *o) {
  int32_t id[4], od[4], size[2], n;
  CHECK(ts_need_4d_io(L, op_in(L, o, 0), op_out(L, o, 0), id, od));
  CHECK(ts_const_ints(L, o, 1, size, 2, &n));
  if (n != 2 || size[0] != od[1] || size[1] != od[2] || id[0] != od[0] || id[3] != od[3])
    return ts_ofail(L, TS_ERR_BAD_MODEL, "output shape does not match the size");
  int32_t v[4]; /* Resize*Options: align_corners, half_pixel_centers (bilinear: fields 2, 3;
                 * 0 and 1 are deprecated) */
  int present;
  ts_resize_params_t *p = PARAMS(o, ts_resize_params_t);
  const int bilinear = ts_ops[o->kind].code == 23;
  CHECK(ts_options(L, bilinear ? "iibb" : "bb", v, &present));
  p->align_corners = v[bilinear ? 2 : 0];
  p->half_pixel_centers = v[bilinear ? 3 : 1];
  p->batches = id[0], p->in_h = id[1], p->in_w = id[2], p->depth = id[3];
  p->out_h = od[1], p->out_w = od[2];
  /* per axis (rows, then columns): in / out, or (in - 1) / (out - 1) with align_corners, as
   * a float (nearest) and in 1/1024 steps rounded to nearest, in uint32 (bilinear): an input
   * side of 2^21 or more (which the scale check refuses anyway without align_corners) is
   * refused first */
  float sf[2];
  int32_t s10[2];
  for (int k = 0; k < 2; k++) {
    const uint32_t in = (uint32_t)id[1 + k], out = (uint32_t)od[1 + k];
    const uint32_t d = p->align_corners && out > 1;
    sf[k] = (float)(int32_t)(in - d) / (float)(int32_t)(out - d);
    if (in >= (1u << 21)) return ts_ofail(L, TS_ERR_UNSUPPORTED, "resize too large");
    const uint32_t s10k = (((in - d) << 10) + (out - d) / 2) / (out - d);
    if (s10k > (uint32_t)(INT32_MAX / 2) / out)
      return ts_ofail(L, TS_ERR_UNSUPPORTED, "resize too large");
    s10[k] = (int32_t)s10k;
  }
  p->scale_h = sf[0], p->scale_w = sf[1];
  p->scale_h_10 = s10[0], p->scale_w_10 = s10[1];
  if (bilinear && p->align_corners && p->half_pixel_centers)
    return ts_ofail(L, TS_ERR_BAD_MODEL, "align_corners with half_pixel_centers");
  return TS_OK;
}

ts_status_t ts_resize_nearest_neighbor_prepare(ts_loader_t *L, ts_oprec_t *o) {
  return ts_resize_prepare(L, o);
}

ts_status_t ts_resize_nearest_neighbor_eval(const ts_eval_t *e) {
  ts_ref_resize_nearest_s8(e->params, e->in0, e->out);
  return TS_OK;
}
