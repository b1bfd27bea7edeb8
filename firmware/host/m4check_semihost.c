/* Bare-metal entry for ts-kernel-check on the emulated Cortex-M4 (QEMU mps2-an386):
 *   qemu-system-arm -M mps2-an386 -display none -monitor none -serial none \
 *     -semihosting-config enable=on,target=native -kernel ts-kernel-check.elf -append "SEED CASES"
 * Vector table and reset (FPU on, .data copied, .bss zeroed; the board's linker script),
 * stdio through newlib's semihosting library (librdimon), the command line from SYS_GET_CMDLINE,
 * and the exit status back to QEMU with SYS_EXIT_EXTENDED (QEMU exits with it). A fault prints
 * its name and the faulting pc and exits with status 3, so a bad instruction sequence in a
 * kernel fails the run at once instead of hanging the emulator. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if !(defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
#error "build for the Cortex-M4 (-mcpu=cortex-m4): the point is to run the real DSP instructions"
#endif

int ts_kernel_check_main(int argc, char **argv); /* kernel_check.c, built -DTS_CHECK_MAIN=... */
extern void initialise_monitor_handles(void);    /* librdimon: opens ":tt" as stdin/out/err */
void Reset_Handler(void);
void Fault_Handler(void);
void *_sbrk(ptrdiff_t incr);

extern uint32_t __stack_top, __stack_size; /* __stack_size: an absolute linker symbol */
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;

#define SYS_WRITE0 0x04
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define MAX_ARGS 12

static int32_t semihost(int32_t op, void *arg) {
  register int32_t r0 __asm__("r0") = op;
  register void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

__attribute__((noreturn)) static void exit_with(int code) {
  uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
  for (;;) semihost(SYS_EXIT_EXTENDED, block);
}

/* Vectors 0-15; no interrupt is enabled. Every fault and exception goes to Fault_Handler. */
__attribute__((used, section(".vectors"))) void (*const g_vectors[16])(void) = {
    (void (*)(void))(&__stack_top), Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler,
    0, Fault_Handler, Fault_Handler,
};

/* The heap for newlib's stdio buffers: a static pool (the board's linker script puts the
 * stack below `end`, which libgloss's _sbrk would take for a collision). */
static uint8_t s_heap[16384] __attribute__((aligned(8)));
static size_t s_heap_used;
void *_sbrk(ptrdiff_t incr) {
  if (incr < 0 || (size_t)incr > sizeof s_heap - s_heap_used) {
    errno = ENOMEM;
    return (void *)-1;
  }
  void *p = &s_heap[s_heap_used];
  s_heap_used += (size_t)incr;
  return p;
}

static char s_cmdline[256];

#define STACK_PAINT 0x5AC3A55Au
static uint32_t *stack_bottom(void) {
  return (uint32_t *)((uintptr_t)&__stack_top - (uintptr_t)&__stack_size);
}

/* Fills the unused stack below the caller's frame with STACK_PAINT. */
__attribute__((noinline)) static void paint_stack(void) {
  uint32_t *sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t *w = stack_bottom(); w < sp - 16; w++) *w = STACK_PAINT;
}

/* Bytes of stack ever used: from the top down to the lowest overwritten word. */
static uint32_t stack_used(void) {
  const uint32_t *w = stack_bottom();
  while (w < &__stack_top && *w == STACK_PAINT) w++;
  return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)w);
}

/* argv from the semihosting command line: QEMU gives "<kernel file> <-append text>". */
static int split_args(char **argv) {
  struct {
    char *buf;
    int32_t len;
  } block = {s_cmdline, (int32_t)sizeof s_cmdline - 1};
  if (semihost(SYS_GET_CMDLINE, &block) != 0) return 0;
  s_cmdline[block.len >= 0 && block.len < (int32_t)sizeof s_cmdline ? block.len : 0] = '\0';
  int argc = 0;
  for (char *s = s_cmdline; *s && argc < MAX_ARGS;) {
    while (*s == ' ') *s++ = '\0';
    if (!*s) break;
    argv[argc++] = s;
    while (*s && *s != ' ') s++;
  }
  return argc;
}

__attribute__((noreturn)) void Reset_Handler(void) {
  SCB_CPACR |= 0xFu << 20; /* FPU on before any code that may use FP registers */
  SCB_VTOR = (uint32_t)&g_vectors[0];
  __asm__ volatile("dsb\n\tisb" ::: "memory");
  uint32_t *src = &__data_load;
  for (uint32_t *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
  initialise_monitor_handles();
  setvbuf(stdout, NULL, _IOLBF, 0); /* lines out before a fault, if one happens */
  char *argv[MAX_ARGS + 1] = {0};
  const int argc = split_args(argv);
  paint_stack();
  const int rc = ts_kernel_check_main(argc, argv);
  printf("stack %lu of %lu bytes\n", (unsigned long)stack_used(),
         (unsigned long)(uintptr_t)&__stack_size);
  fflush(stdout);
  fflush(stderr);
  exit_with(rc);
}

static void hex32(char *out, uint32_t v) {
  for (int i = 0; i < 8; i++) out[i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xfu];
}

/* Prints "FAULT exception N pc 0x... cfsr 0x..." (no stdio: its state may be broken). */
__attribute__((noreturn, used)) static void fault_report(const uint32_t *frame) {
  uint32_t ipsr;
  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
  static char msg[] = "\nFAULT exception 0x........ pc 0x........ cfsr 0x........\n";
  hex32(msg + 19, ipsr & 0x1ffu);
  hex32(msg + 33, frame[6]); /* the stacked pc */
  hex32(msg + 49, SCB_CFSR);
  semihost(SYS_WRITE0, msg);
  exit_with(3);
}

/* Only the main stack is in use: the exception frame is at msp on entry. */
__attribute__((naked)) void Fault_Handler(void) { __asm__ volatile("mrs r0, msp\n\tb fault_report"); }
