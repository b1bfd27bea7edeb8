/* STRIDED_SLICE of an int8 tensor of up to 4 dims (Keras Cropping2D, slicing) with constant
 * begin/end/strides and the begin, end and shrink-axis masks and the offset flag; per axis
 * as TFLM's StridedSliceStartForAxis / StridedSliceEndForAxis: negative indices count from
 * the end, then clamp ([0, size] going up, [-1, size - 1] going down), then the masks. The
 * output keeps the input's quantization (no requantization). Ellipsis and new-axis masks
 * are refused (TFLM ignores them). */
#include "ts_internal.h"

static int32_t clamp_i(int32_t v, int32_t lo, int32_t hi) { return v > hi ? hi : v < lo ? lo : v; }

ts_status_t ts_strided_slice_prepare(ts_loader_t *L, ts_oprec_t *o) {
  const ts_trec_t *r[2];
  CHECK(ts_need_s8_io(L, o, r));
  const ts_trec_t *in = r[0], *out = r[1];
  int32_t iv[3][4], nv[3]; /* inputs 1, 2, 3: begin, end, strides */
  for (int k = 0; k < 3; k++) CHECK(ts_const_ints(L, o, k + 1, iv[k], 4, &nv[k]));
  const int32_t *begin = iv[0], *end = iv[1], *stride = iv[2];
  const int32_t n = in->ndims;
  if (n > 4 || nv[0] != n || nv[1] != n || nv[2] != n)
    return ts_ofail(L, TS_ERR_UNSUPPORTED, "slice of %d dimensions with %d indices", n, nv[0]);
  int32_t v[6]; /* StridedSliceOptions: begin, end, ellipsis, new_axis, shrink masks, offset */
  int present;
  CHECK(ts_options(L, "iiiiib", v, &present));
  if (v[2] || v[3]) return ts_ofail(L, TS_ERR_UNSUPPORTED, "ellipsis or new-axis mask");
  ts_slice_params_t *p = PARAMS(o, ts_slice_params_t);
  ts_pad4(L, in, p->in_dims); /* n <= 4 */
  int32_t kept = 0, total = 1;
  for (int k = 0; k < 4; k++) {
    const int32_t a = k - (4 - n); /* the model's axis, < 0: a padding axis */
    p->start[k] = 0, p->step[k] = 1, p->count[k] = 1;
    if (a < 0) continue;
    const int32_t size = p->in_dims[k], st = stride[a];
    if (st == 0) return ts_ofail(L, TS_ERR_BAD_MODEL, "stride 0");
    const int shrink = (v[4] >> a) & 1;
    /* the clamp range: [0, size] going up, [-1, size - 1] going down; a begin mask starts
     * at its first end, an end mask stops at its other one */
    const int32_t lo = st > 0 ? 0 : -1, hi = size + lo, first = st > 0 ? lo : hi;
    /* in int32: a negative begin plus the size, end + start (saturated: either way past the
     * clamp) and the counts (as unsigned quotients) cannot overflow */
    int32_t s = clamp_i(begin[a] < 0 ? begin[a] + size : begin[a], lo, hi);
    if ((v[0] >> a) & 1) s = first;
    int32_t e;
    if (shrink) {
      e = s >= size ? s : s + 1;
    } else {
      e = end[a];
      if (v[5] && __builtin_add_overflow(e, s, &e)) e = s > 0 ? INT32_MAX : INT32_MIN;
      e = clamp_i(e < 0 ? e + size : e, lo, hi);
      if ((v[1] >> a) & 1) e = lo + hi - first;
    }
    /* ceil((e - s) / st) elements, at least 0 (|e - s| <= size + 1) */
    const int32_t dir = st > 0 ? e - s : s - e;
    const int32_t cnt =
        dir > 0 ? (int32_t)((uint32_t)(dir - 1) / (st > 0 ? (uint32_t)st : 0u - (uint32_t)st)) + 1
                : 0;
    if (cnt > 0 && (s < 0 || s >= size))
      return ts_ofail(L, TS_ERR_BAD_MODEL, "slice starts outside the input");
    if (!shrink) {
      if (kept >= out->ndims || DIM(out, kept) != cnt)
        return ts_ofail(L, TS_ERR_BAD_MODEL, "output shape does not match the slice");
      kept++;
    }
    p->start[k] = s, p->step[k] = st, p->count[k] = cnt;
    total *= cnt;
  }
  if (kept != out->ndims || total != ts_elems(out))
    return ts_ofail(L, TS_ERR_BAD_MODEL, "output shape does not match the slice");
  return TS_OK;
}

ts_status_t ts_strided_slice_eval(const ts_eval_t *e) {
  ts_ref_strided_slice_s8(e->params, e->in0, e->out);
  return TS_OK;
}
