/*
 * Startup shared by every Cortex-M4F board (QEMU mps2-an386, NUCLEO-F446RE / netduinoplus2):
 * vector table, reset handler (enable the FPU, point VTOR at the table, copy .data, zero .bss)
 * and fault handlers that park the core. A board's linker script provides __stack_top and
 * the .data/.bss symbols and puts .vectors at the start of its boot memory.
 */
#include <stdint.h>

extern uint32_t __stack_top;
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

__attribute__((used, section(".vectors"))) void (*const g_vectors[16 + 32])(void) = {
    (void (*)(void))(&__stack_top),
    Reset_Handler,
    Default_Handler, /* NMI */
    Default_Handler, /* HardFault */
    Default_Handler, /* MemManage */
    Default_Handler, /* BusFault */
    Default_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    /* external interrupts: none enabled (the table only needs to exist) */
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler,
};

__attribute__((noreturn)) void Reset_Handler(void) {
  /* Enable CP10/CP11 (the FPU) before any code that may use FP registers. */
  SCB_CPACR |= 0xFu << 20;
  /* The table is at the start of the boot memory. On the STM32 it is also seen at 0 (BOOT0 =
   * 0), but a debugger may start us from another alias: point VTOR at it explicitly. */
  SCB_VTOR = (uint32_t)&g_vectors[0];
  __asm volatile("dsb\n\tisb" ::: "memory");
  uint32_t *src = &__data_load;
  for (uint32_t *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
  main();
  for (;;) __asm volatile("wfi");
}

__attribute__((noreturn)) void Default_Handler(void) {
  for (;;) __asm volatile("bkpt #0");
}
