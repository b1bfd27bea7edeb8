/* Arena planner: places activation buffers with known lifetimes (first and last operator
 * that touches them) in one block, greedily (TFLM GreedyMemoryPlanner style, two orders
 * tried, see ts_plan.c). In-place operators: a buffer may name a partner (`share`) whose
 * bytes it reuses at the same offset although both are alive at the operator that links
 * them; a chain of partners is placed as one group (the caller guarantees the kernel is safe
 * in place: RESHAPE, activations, element-wise ops, DEPTHWISE through a plane). A buffer
 * is the partner of at most one other (the runtime links an operator's output to an input
 * whose last reader it is, and each operator has one output). */
#ifndef TS_PLAN_H
#define TS_PLAN_H

#include <stddef.h>
#include <stdint.h>

#define TS_PLAN_ALIGN 16

typedef struct {
  int32_t first;   /* first operator that writes it (0 for model inputs); < 0: not planned */
  int32_t last;    /* last operator that reads it (num_ops for model outputs) */
  uint32_t size;   /* bytes */
  uint32_t offset; /* result: offset inside the activation block */
  int32_t share;   /* index of the partner buffer it may overlap at the same offset, or -1 */
} ts_plan_buf_t;

/* Plan n buffers laid out `stride` bytes apart (so they can live inside larger records);
 * returns the bytes of the activation block. No memory beyond the records is used. */
size_t ts_plan(ts_plan_buf_t *bufs, size_t stride, uint32_t n);

#endif /* TS_PLAN_H */
