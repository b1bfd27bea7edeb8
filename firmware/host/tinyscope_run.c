/*
 * tinyscope-run: run a full-int8 TFLite model once with the tinyscope runtime on the host.
 *
 *   tinyscope-run [--arena BYTES] MODEL.tflite INPUT.bin OUT_DIR
 *   tinyscope-run --plan MODEL.tflite
 *   tinyscope-run --tables MODEL.tflite TABLES.bin
 *
 * INPUT.bin holds the raw int8 bytes of the model's (first) input tensor. For the input and
 * every operator output, writes OUT_DIR/<tensor_index>.bin (raw bytes) and OUT_DIR/tensors.json
 * ({"arena_bytes": N, "tensors": [{index, name, shape, dtype, scale, zero_point, file,
 * op_index, op}]}). Without --arena the runner sizes the arena from the model. Errors: one
 * line on stderr, exit status 1 (model/runtime) or 2 (usage, files).
 * --plan loads the model into an arena of exactly the size the runtime asks for and prints
 * the bytes it planned (arena_used) on stdout. The host's pointers are 8 bytes, a
 * Cortex-M's 4, so a device needs at most this many bytes (it reports its own figure in INFO).
 * --tables writes the model's per-channel requantization tables (little-endian int32 words,
 * for ts_interp_init_tables: kept in flash, they leave the arena) and prints the arena the
 * runtime plans with them outside: the firmware build links the tables into flash and sizes
 * the device's arena with that figure (firmware/Makefile, host/tables_c.sh).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ts_opnames.h"
#include "ts_runtime.h"

#define MAX_RECORDS 4096

typedef struct {
  const char *dir;
  FILE *json;
  int count;
  int failed;
} run_t;

static int die(int code, const char *msg, const char *arg) {
  char named[2 * TS_ERROR_LEN]; /* the runtime reports ops by code: name them */
  ts_name_op_codes(msg, named, sizeof named);
  fprintf(stderr, "tinyscope-run: %s%s%s\n", named, arg ? ": " : "", arg ? arg : "");
  return code;
}

static unsigned char *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 65536;
      unsigned char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return NULL;
  }
  *size = n;
  return buf;
}

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static void record(run_t *r, const ts_tensor_t *t, int op_index, int builtin) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%d.bin", r->dir, (int)t->index);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(t->data, 1, t->bytes, f) != t->bytes) r->failed = 1;
  if (f && fclose(f) != 0) r->failed = 1;
  FILE *j = r->json;
  fprintf(j, "%s\n  {\"index\": %d, \"name\": ", r->count ? "," : "", (int)t->index);
  json_string(j, t->name);
  fprintf(j, ", \"shape\": [");
  for (int k = 0; k < t->ndims; k++) fprintf(j, "%s%d", k ? ", " : "", (int)t->dims[k]);
  fprintf(j, "], \"dtype\": \"%s\", \"scale\": [", ts_dtype_name(t->dtype));
  for (uint32_t k = 0; k < t->num_quant; k++)
    fprintf(j, "%s%.9g", k ? ", " : "", (double)ts_tensor_scale(t, k));
  fprintf(j, "], \"zero_point\": [");
  for (uint32_t k = 0; k < t->num_quant; k++)
    fprintf(j, "%s%d", k ? ", " : "", (int)ts_tensor_zero_point(t, k));
  fprintf(j, "], \"file\": \"%d.bin\", \"op_index\": %d, \"op\": ", (int)t->index, op_index);
  if (op_index < 0) fprintf(j, "null}");
  else fprintf(j, "\"%s\"}", ts_op_name(builtin));
  r->count++;
}

static void on_op(void *user, int32_t op_index, int32_t builtin_op, const ts_tensor_t *out) {
  record((run_t *)user, out, op_index, builtin_op);
}

/* Reads MODEL_PATH and initialises IT in an arena of the size its planner asks for; the
 * caller frees *model and *arena. Returns 0, or the exit code after die()'s message. */
static int init_planned(const char *model_path, ts_interp_t *it, unsigned char **model,
                        size_t *model_size, unsigned char **arena) {
  *model = read_file(model_path, model_size);
  if (!*model) return die(2, "cannot read model", model_path);
  if (ts_interp_init(it, *model, *model_size, NULL, 0) != TS_ERR_ARENA_TOO_SMALL)
    return die(1, ts_interp_error(it), NULL);
  const size_t bound = it->arena_needed;
  if (bound > ((size_t)1 << 31)) return die(1, "model needs more than 2 GB of arena", NULL);
  *arena = malloc(bound ? bound : 1);
  if (!*arena) return die(2, "out of memory for the arena", NULL);
  if (ts_interp_init(it, *model, *model_size, *arena, bound) != TS_OK)
    return die(1, ts_interp_error(it), NULL);
  return 0;
}

/* --plan: the arena the runtime plans for the model, in bytes, on stdout. */
static int plan(const char *model_path) {
  size_t model_size;
  unsigned char *model, *arena;
  ts_interp_t it;
  const int rc = init_planned(model_path, &it, &model, &model_size, &arena);
  if (rc) return rc;
  printf("%zu\n", it.arena_used);
  free(arena);
  free(model);
  return 0;
}

/* --tables: the per-channel tables to TABLES.bin, the arena without them on stdout. */
static int tables(const char *model_path, const char *out_path) {
  size_t model_size;
  unsigned char *model, *arena;
  ts_interp_t it;
  const int rc = init_planned(model_path, &it, &model, &model_size, &arena);
  if (rc) return rc;
  const int32_t *t;
  size_t words;
  if (ts_interp_tables(&it, &t, &words) != TS_OK) return die(1, ts_interp_error(&it), NULL);
  int32_t *copy = malloc(words ? words * sizeof *copy : 1);
  if (!copy) return die(2, "out of memory for the tables", NULL);
  memcpy(copy, t, words * sizeof *copy);
  FILE *f = fopen(out_path, "wb");
  int bad = !f;
  for (size_t k = 0; f && k < words; k++) { /* little-endian whatever the host */
    const uint32_t u = (uint32_t)copy[k];
    const unsigned char b[4] = {u & 255u, (u >> 8) & 255u, (u >> 16) & 255u, u >> 24};
    bad |= fwrite(b, 1, 4, f) != 4;
  }
  if (f) bad |= fclose(f) != 0;
  if (bad) return die(2, "cannot write tables", out_path);
  /* the arena with the tables outside, checked by an init that uses them */
  if (ts_interp_init_tables(&it, model, model_size, NULL, 0, copy, words) !=
      TS_ERR_ARENA_TOO_SMALL)
    return die(1, ts_interp_error(&it), NULL);
  const size_t bound = it.arena_needed; /* no more than the arena allocated above */
  if (ts_interp_init_tables(&it, model, model_size, arena, bound, copy, words) != TS_OK)
    return die(1, ts_interp_error(&it), NULL);
  printf("%zu\n", it.arena_used);
  free(copy);
  free(arena);
  free(model);
  return 0;
}

int main(int argc, char **argv) {
  long long arena_arg = -1;
  int a = 1;
  if (argc == 3 && strcmp(argv[1], "--plan") == 0) return plan(argv[2]);
  if (argc == 4 && strcmp(argv[1], "--tables") == 0) return tables(argv[2], argv[3]);
  if (a < argc && strcmp(argv[a], "--arena") == 0) {
    if (a + 1 >= argc) return die(2, "--arena needs a byte count", NULL);
    char *end;
    arena_arg = strtoll(argv[a + 1], &end, 10);
    if (*end || arena_arg < 0) return die(2, "bad --arena value", argv[a + 1]);
    a += 2;
  }
  if (argc - a != 3) {
    fprintf(stderr, "usage: tinyscope-run [--arena BYTES] MODEL.tflite INPUT.bin OUT_DIR\n"
                    "       tinyscope-run --plan MODEL.tflite\n");
    return 2;
  }
  const char *model_path = argv[a], *input_path = argv[a + 1], *out_dir = argv[a + 2];
  size_t model_size, input_size;
  unsigned char *model = read_file(model_path, &model_size);
  if (!model) return die(2, "cannot read model", model_path);
  unsigned char *input = read_file(input_path, &input_size);
  if (!input) return die(2, "cannot read input", input_path);

  ts_interp_t it;
  size_t arena_size = (size_t)arena_arg;
  if (arena_arg < 0) {
    /* Ask the runtime how much it needs (an upper bound), then init for real. */
    ts_status_t s = ts_interp_init(&it, model, model_size, NULL, 0);
    if (s != TS_ERR_ARENA_TOO_SMALL) return die(1, ts_interp_error(&it), NULL);
    arena_size = it.arena_needed;
    if (arena_size > ((size_t)1 << 31)) return die(1, "model needs more than 2 GB of arena", NULL);
  }
  unsigned char *arena = malloc(arena_size ? arena_size : 1);
  if (!arena) return die(2, "out of memory for the arena", NULL);
  ts_status_t s = ts_interp_init(&it, model, model_size, arena, arena_size);
  if (s == TS_ERR_ARENA_TOO_SMALL && arena_arg < 0 && it.arena_needed > arena_size) {
    /* The bound before planning leaves out the operators' scratch: retry with the
     * planned size (exact once prepare has run). */
    arena_size = it.arena_needed;
    free(arena);
    arena = malloc(arena_size);
    if (!arena) return die(2, "out of memory for the arena", NULL);
    s = ts_interp_init(&it, model, model_size, arena, arena_size);
  }
  if (s != TS_OK) return die(1, ts_interp_error(&it), NULL);

  ts_tensor_t in;
  if (ts_interp_input(&it, 0, &in) != TS_OK) return die(1, "model has no input", NULL);
  if (input_size != in.bytes) {
    fprintf(stderr, "tinyscope-run: input %s has %zu bytes, model input tensor %d needs %u\n",
            input_path, input_size, (int)in.index, (unsigned)in.bytes);
    return 2;
  }
  memcpy(in.data, input, in.bytes);
  if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) return die(2, "cannot create", out_dir);

  char json_path[4096];
  snprintf(json_path, sizeof json_path, "%s/tensors.json", out_dir);
  run_t run = {out_dir, NULL, 0, 0};
  run.json = fopen(json_path, "w");
  if (!run.json) return die(2, "cannot write", json_path);
  fprintf(run.json, "{\"arena_bytes\": %zu, \"model_bytes\": %zu, \"tensors\": [",
          it.arena_used, model_size);
  for (int32_t k = 0; k < it.num_inputs; k++) {
    ts_tensor_t t;
    if (ts_interp_input(&it, k, &t) == TS_OK) record(&run, &t, -1, -1);
  }
  s = ts_interp_invoke(&it, on_op, &run);
  fprintf(run.json, "\n]}\n");
  if (fclose(run.json) != 0) run.failed = 1;
  if (s != TS_OK) return die(1, ts_interp_error(&it), NULL);
  if (run.failed) return die(2, "cannot write outputs in", out_dir);
  free(arena);
  free(input);
  free(model);
  return 0;
}
