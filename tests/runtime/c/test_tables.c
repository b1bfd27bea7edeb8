/* Unit test of ts_interp_init_tables (the per-channel requantization tables outside the
 * arena), built with the host compiler and the whole runtime by
 * tests/runtime/test_native_units.py and run on a model file given as argv[1]: the arena
 * shrinks by exactly the tables' bytes (rounded to the arena's 16-byte alignment), every
 * operator's output equals the run with the tables inside the arena, and init refuses
 * tables of the wrong length or with one changed word. Exit status 0: every check passed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_runtime.h"

static int failures;
#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "test_tables.c:%d: check failed: %s\n", __LINE__, #cond); \
      failures++;                                                                \
    }                                                                            \
  } while (0)

#define MAX_OPS 1024

typedef struct {
  uint32_t digest[MAX_OPS]; /* FNV-1a of each operator's output */
  int32_t ops;
} trace_t;

static void on_op(void *user, int32_t i, int32_t code, const ts_tensor_t *out) {
  (void)code;
  trace_t *t = user;
  uint32_t h = 2166136261u;
  const uint8_t *d = out->data;
  for (uint32_t k = 0; k < out->bytes; k++) h = (h ^ d[k]) * 16777619u;
  if (i < MAX_OPS) t->digest[i] = h;
  t->ops = i + 1;
}

static unsigned char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  const long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(size > 0 ? (size_t)size : 1);
  if (b && fread(b, 1, (size_t)size, f) != (size_t)size) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *n = (size_t)size;
  return b;
}

/* Init (with or without tables) in an arena of exactly the size asked for; fill the input
 * with a fixed pattern, run, record the digests. Returns the arena bytes, 0 on failure. */
static size_t run(const unsigned char *model, size_t size, const int32_t *tables, size_t words,
                  trace_t *trace, unsigned char **arena_out) {
  ts_interp_t it;
  if (ts_interp_init_tables(&it, model, size, NULL, 0, tables, words) != TS_ERR_ARENA_TOO_SMALL)
    return 0;
  const size_t need = it.arena_needed;
  unsigned char *arena = malloc(need);
  if (!arena || ts_interp_init_tables(&it, model, size, arena, need, tables, words) != TS_OK) {
    fprintf(stderr, "init: %s\n", ts_interp_error(&it));
    free(arena);
    return 0;
  }
  ts_tensor_t in;
  if (ts_interp_input(&it, 0, &in) != TS_OK) return 0;
  uint8_t *d = in.data;
  for (uint32_t k = 0; k < in.bytes; k++) d[k] = (uint8_t)(k * 37u + 11u);
  memset(trace, 0, sizeof *trace);
  if (ts_interp_invoke(&it, on_op, trace) != TS_OK) return 0;
  *arena_out = arena;
  return it.arena_used;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_tables MODEL.tflite\n");
    return 2;
  }
  size_t size;
  unsigned char *model = read_all(argv[1], &size);
  if (!model) {
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 2;
  }
  static trace_t inside, outside;
  unsigned char *a1 = NULL, *a2 = NULL;
  const size_t with_tables = run(model, size, NULL, 0, &inside, &a1);
  CHECK(with_tables > 0);
  /* the tables of that init, copied out (as a build would put them in flash) */
  ts_interp_t it;
  const int32_t *t = NULL;
  size_t words = 0;
  CHECK(ts_interp_init(&it, model, size, a1, with_tables) == TS_OK);
  CHECK(ts_interp_tables(&it, &t, &words) == TS_OK);
  CHECK(words > 0);
  int32_t *copy = malloc(words * sizeof *copy);
  if (!copy) return 2;
  memcpy(copy, t, words * sizeof *copy);

  const size_t without = run(model, size, copy, words, &outside, &a2);
  CHECK(without > 0);
  CHECK(without + ((words * 4 + 15) / 16) * 16 == with_tables);
  CHECK(inside.ops == outside.ops && inside.ops > 0);
  CHECK(memcmp(inside.digest, outside.digest, sizeof inside.digest) == 0);
  const int32_t *t2 = NULL;
  size_t w2 = 0;
  CHECK(ts_interp_init_tables(&it, model, size, a2, without, copy, words) == TS_OK);
  CHECK(ts_interp_tables(&it, &t2, &w2) == TS_OK && t2 == copy && w2 == words);

  /* refused: one word too few, one multiplier or one shift changed */
  CHECK(ts_interp_init_tables(&it, model, size, a1, with_tables, copy, words - 1) ==
        TS_ERR_BAD_ARG);
  CHECK(strstr(ts_interp_error(&it), "the model needs") != NULL);
  for (size_t k = 0; k < words; k += words - 1 > 0 ? words - 1 : 1) {
    copy[k] ^= 1;
    CHECK(ts_interp_init_tables(&it, model, size, a1, with_tables, copy, words) ==
          TS_ERR_BAD_ARG);
    CHECK(strstr(ts_interp_error(&it), "do not match the model") != NULL);
    copy[k] ^= 1;
  }
  CHECK(ts_interp_init_tables(&it, model, size, a1, with_tables, copy, words) == TS_OK);

  free(copy);
  free(a1);
  free(a2);
  free(model);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("test_tables: all checks passed (arena %zu -> %zu bytes, %zu table words)\n",
              with_tables, without, words);
  return failures != 0;
}
