/* Instructions of one call on the emulated Cortex-M4: under QEMU's -icount shift=0 SysTick on
 * the processor clock counts down once per 40 executed instructions (docs/bench.md), the same
 * on every run. ticks_start() restarts it from its 24-bit top; ticks_stop() is the ticks since
 * (x 40 = instructions). Shared by the M4 kernel check (kernel_check.c) and the CMSIS-NN
 * harness (tools/cmsisnn/harness.c); on the host, where there is no SysTick, both are 0. */
#ifndef TS_M4_TICKS_H
#define TS_M4_TICKS_H
#include <stdint.h>

#if defined(__arm__)
#define TS_SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define TS_SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define TS_SYST_CVR (*(volatile uint32_t *)0xE000E018u)
static inline void ticks_start(void) {
  TS_SYST_CSR = 0;
  TS_SYST_RVR = 0x00FFFFFFu;
  TS_SYST_CVR = 0;
  TS_SYST_CSR = 5; /* processor clock, enabled, no interrupt */
}
static inline uint32_t ticks_stop(void) { return (0x00FFFFFFu - TS_SYST_CVR) & 0x00FFFFFFu; }
#else
static inline void ticks_start(void) {}
static inline uint32_t ticks_stop(void) { return 0; }
#endif
#endif
