/* The runtime's messages: a tiny formatter (%s %d %u only) so the runtime needs no printf,
 * and the error reporters that write it->error. */
#include "ts_internal.h"

static void append(char *buf, size_t n, size_t *at, const char *s) {
  while (*s && *at + 1 < n) buf[(*at)++] = *s++;
  buf[*at] = 0;
}

/* Appends at buf[at] and returns the end. */
size_t ts_vfmt(char *buf, size_t n, size_t at, const char *f, va_list ap) {
  buf[at] = 0;
  for (; *f; f++) {
    char num[12], *d = num + sizeof num - 1; /* a number or one character, up to num[11] */
    const char *p = d;
    *d = 0;
    if (*f == '%' && f[1] == 's') {
      f++;
      p = va_arg(ap, const char *);
      if (!p) p = "(null)";
    } else if (*f == '%' && (f[1] == 'd' || f[1] == 'u')) {
      const int sgn = *++f == 'd';
      uint32_t v = sgn ? (uint32_t)va_arg(ap, int32_t) : va_arg(ap, uint32_t);
      const int neg = sgn && (int32_t)v < 0;
      if (neg) v = 0u - v;
      do {
        *--d = (char)('0' + v % 10);
        v /= 10;
      } while (v);
      if (neg) *--d = '-';
      p = d;
    } else {
      *--d = *f == '%' && f[1] ? *++f : *f; /* "%%" and an unknown "%x": the character */
      p = d;
    }
    append(buf, n, &at, p);
  }
  return at;
}

size_t ts_fmt(char *buf, size_t n, size_t at, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  at = ts_vfmt(buf, n, at, f, ap);
  va_end(ap);
  return at;
}

#ifdef TS_STRIP_MESSAGES
/* "operator N " (kind 'o') or "tensor N " at the start of it->error; returns the end. */
static size_t place(ts_interp_t *it, int kind, int32_t n) {
  char num[12], *d = num + sizeof num;
  *--d = 0;
  *--d = ' ';
  uint32_t v = (uint32_t)n;
  do {
    *--d = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  size_t at = 0;
  append(it->error, sizeof it->error, &at, kind == 'o' ? "operator " : "tensor ");
  append(it->error, sizeof it->error, &at, d);
  return at;
}

ts_status_t ts_fail_at(ts_interp_t *it, ts_status_t s, int kind, int32_t n) {
  if (!it) return s; /* a re-read of a validated model (view) */
  size_t at = kind ? place(it, kind, n) : 0;
  append(it->error, sizeof it->error, &at, TS_STRIPPED_MARK);
  return s;
}
ts_status_t ts_fail_it(ts_interp_t *it, ts_status_t s) { return ts_fail_at(it, s, 0, 0); }
ts_status_t ts_fail_kept(ts_loader_t *L, ts_status_t s, const char *text) {
  size_t at = place(L->it, 'o', L->op) - 1; /* "operator N: " then the text */
  append(L->it->error, sizeof L->it->error, &at, ": ");
  append(L->it->error, sizeof L->it->error, &at, text);
  return s;
}
ts_status_t ts_fail_lop(ts_loader_t *L, ts_status_t s) { return ts_fail_at(L->it, s, 'o', L->op); }
ts_status_t ts_fail_ltensor(ts_loader_t *L, ts_status_t s, uint32_t idx) {
  return ts_fail_at(L->it, s, 't', (int32_t)idx);
}
#else
/* it->error = `pre` (a format taking `arg`; none if NULL), then f with ap. */
static ts_status_t report(ts_interp_t *it, ts_status_t s, const char *pre, int32_t arg,
                          const char *f, va_list ap) {
  if (!it) return s; /* a re-read of a validated model (view) */
  ts_vfmt(it->error, sizeof it->error,
          pre ? ts_fmt(it->error, sizeof it->error, 0, pre, arg) : 0, f, ap);
  return s;
}

ts_status_t ts_fail(ts_interp_t *it, ts_status_t s, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  report(it, s, NULL, 0, f, ap);
  va_end(ap);
  return s;
}

ts_status_t ts_ofail(ts_loader_t *L, ts_status_t s, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  report(L->it, s, "operator %d: ", L->op, f, ap);
  va_end(ap);
  return s;
}

ts_status_t ts_tfail(ts_loader_t *L, ts_status_t s, uint32_t idx, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  report(L->it, s, "tensor %u ", (int32_t)idx, f, ap);
  va_end(ap);
  return s;
}

#endif

ts_status_t ts_corrupt(ts_loader_t *L) {
  if (L->fb.bad_offset >= L->fb.size)
    return ts_fail(L->it, TS_ERR_BAD_MODEL, "model truncated at offset %u (model is %u bytes)",
                   L->fb.bad_offset, L->fb.size);
  return ts_fail(L->it, TS_ERR_BAD_MODEL, "model corrupt at offset %u", L->fb.bad_offset);
}

#ifndef TS_STRIP_MESSAGES
ts_status_t ts_eval_fail(const ts_eval_t *e, ts_status_t s, const char *msg) {
  return ts_fail(e->it, s, "operator %d: %s", e->index, msg);
}
#endif
