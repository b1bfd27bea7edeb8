/* Links the runtime's public API into a Cortex-M4 image (make -f host/host.mk cm4) so the
 * linker's --gc-sections keeps exactly what an application that uses all of it needs:
 * the runtime .text figure of `make bench` is measured from this image's map file.
 * (ts_op_name is a host tool's helper, ts_opnames.h, not device API: not called here.) */
#include "ts_runtime.h"

static uint8_t arena[16384];

void cm4_stub_main(const uint8_t *model, size_t size);
void cm4_stub_main(const uint8_t *model, size_t size) {
  ts_interp_t it;
  ts_tensor_t t;
  int32_t code = 0, out = 0;
  if (ts_interp_init(&it, model, size, arena, sizeof arena) != TS_OK) return;
  (void)ts_interp_invoke(&it, 0, 0);
  (void)ts_interp_input(&it, 0, &t);
  (void)ts_interp_output(&it, 0, &t);
  (void)ts_interp_tensor(&it, 0, &t);
  (void)ts_interp_op(&it, 0, &code, &out);
  (void)ts_tensor_scale(&t, 0);
  (void)ts_tensor_zero_point(&t, 0);
  (void)ts_status_name(TS_OK);
  (void)ts_interp_error(&it);
}
