/* RESIZE_NEAREST_NEIGHBOR: NHWC int8, constant size [out_h, out_w], align_corners and
 * half_pixel_centers options; the output keeps the input's quantization. */
#include "ts_internal.h"

ts_status_t ts_resize_prepare(ts_loader_t *L, ts_oprec_t *o) {
  int32_t id[4], od[4], size[2], n;
  CHECK(ts_need_4d_io(L, op_in(L, o, 0), op_out(L, o, 0), id, od));
  CHECK(ts_const_ints(L, op_in(L, o, 1), size, 2, &n));
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
  /* float scales (nearest) */
  p->scale_h = p->align_corners && p->out_h > 1 ? (float)(p->in_h - 1) / (float)(p->out_h - 1)
                                                  : (float)p->in_h / (float)p->out_h;
  p->scale_w = p->align_corners && p->out_w > 1 ? (float)(p->in_w - 1) / (float)(p->out_w - 1)
                                                  : (float)p->in_w / (float)p->out_w;
  /* 1/1024 scales (bilinear), rounded to nearest, in uint32: an input side of 2^21 or more
   * (which the scale check below refuses anyway without align_corners) is refused first */
  const uint32_t ih = (uint32_t)p->in_h, iw = (uint32_t)p->in_w, oh = (uint32_t)p->out_h,
                 ow = (uint32_t)p->out_w, ac = p->align_corners != 0;
  if (ih >= (1u << 21) || iw >= (1u << 21))
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "resize too large");
  const uint32_t dh = ac && oh > 1, dw = ac && ow > 1; /* align_corners: (in - 1) / (out - 1) */
  const uint32_t sh = (((ih - dh) << 10) + (oh - dh) / 2) / (oh - dh);
  const uint32_t sw = (((iw - dw) << 10) + (ow - dw) / 2) / (ow - dw);
  if (sh > (uint32_t)(INT32_MAX / 2) / oh || sw > (uint32_t)(INT32_MAX / 2) / ow)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "resize too large");
  p->scale_h_10 = (int32_t)sh, p->scale_w_10 = (int32_t)sw;
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
