/*
 * QEMU mps2-an386 (Cortex-M4F, 25 MHz): CMSDK UART0 for the host link, SysTick as the
 * tick counter. With `-icount shift=0` QEMU advances virtual time by 1 ns per instruction,
 * so one 25 MHz SysTick tick is exactly 40 instructions and timings are deterministic.
 */
#include "board.h"

#define CPU_HZ 25000000u

/* CMSDK APB UART0 */
#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08))
#define UART_INTCLEAR (*(volatile uint32_t *)(UART0_BASE + 0x0C))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10))
#define UART_STATE_TXFULL 0x1u
#define UART_STATE_RXFULL 0x2u
#define UART_CTRL_TXEN 0x1u
#define UART_CTRL_RXEN 0x2u
#define UART_CTRL_RXINTEN 0x8u
#define UART_INT_RX 0x2u
#define UART0_RX_IRQ 0u /* mps2-an385/an386: UART0 RX is external interrupt 0 */
/* Polls (~5 instructions, ~45 ns of QEMU CPU each) before a read sleeps in WFI: ~90 us, more
 * than the gap between two SET_INPUT bytes (~50 us). 100k polls cost 4-5 ms of QEMU CPU per
 * verified MobileNet image waiting for the host (docs/bench.md, capture section). */
#define UART_SPIN 2000u
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define NVIC_ICPR0 (*(volatile uint32_t *)0xE000E280u)

/* SysTick */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_CSR_ENABLE 0x1u
#define SYST_CSR_TICKINT 0x2u
#define SYST_CSR_CLKSOURCE 0x4u /* processor clock */
#define SYST_RELOAD 0x00FFFFFFu
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_ICSR_PENDSTCLR (1u << 25)

static volatile uint32_t s_wraps; /* SysTick wrap-arounds, counted by the interrupt */

void SysTick_Handler(void) { s_wraps++; }

void board_init(void) {
  UART_BAUDDIV = 16; /* minimum legal divider; QEMU ignores the baud rate */
  UART_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN;
  SYST_RVR = SYST_RELOAD;
  SYST_CVR = 0;
  SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
  /* Enabled in the NVIC so that a received byte wakes WFI (board_uart_read); the UART only
   * raises it while a read sleeps, and it is never taken (PRIMASK is set then). */
  NVIC_ISER0 = 1u << UART0_RX_IRQ;
  __asm volatile("cpsie i" ::: "memory");
}

/* Waiting for the host sleeps (WFI) instead of polling for long: an idle emulated board then costs
 * the host machine no CPU, which matters when several boards share its cores (--jobs).
 * With interrupts masked, the RX interrupt is enabled *before* RXFULL is checked (QEMU's
 * CMSDK UART raises it only for a byte that arrives while it is enabled: a byte between the
 * check and the enable would be slept through), WFI waits for it (pending, so WFI returns at
 * once if it came after the check), then it is disabled and cleared before interrupts are
 * unmasked: it is never taken. SysTick's interrupt also ends a WFI. */
uint8_t board_uart_read(void) {
  /* Poll first: while the host streams (SET_INPUT) the next byte comes within ~50 us, and
   * a WFI per byte costs QEMU more than it saves (an upload took 3x as long). */
  for (uint32_t spin = 0; spin < UART_SPIN; spin++)
    if (UART_STATE & UART_STATE_RXFULL) return (uint8_t)UART_DATA;
  while (!(UART_STATE & UART_STATE_RXFULL)) {
    __asm volatile("cpsid i" ::: "memory");
    UART_CTRL |= UART_CTRL_RXINTEN; /* first: a byte from now on raises the interrupt */
    if (!(UART_STATE & UART_STATE_RXFULL)) __asm volatile("dsb\n\twfi" ::: "memory");
    UART_CTRL &= ~UART_CTRL_RXINTEN;
    UART_INTCLEAR = UART_INT_RX;
    NVIC_ICPR0 = 1u << UART0_RX_IRQ;
    __asm volatile("cpsie i" ::: "memory");
  }
  return (uint8_t)UART_DATA;
}

void board_uart_write(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = data[i];
  }
}

/* SysTick counts down; a write to CVR clears it, and QEMU restarts the tick period at that
 * instruction. From then on (with -icount shift=0) tick k happens exactly 40*k instructions
 * later: durations measured from a reset do not depend on where the previous UART wait
 * left the tick phase, so they are identical on every run. */
void board_ticks_reset(void) {
  SYST_CVR = 0;
  SCB_ICSR = SCB_ICSR_PENDSTCLR;
  s_wraps = 0;
}

uint64_t board_ticks(void) {
  /* After a reset CVR reads 0 until the first tick, then RELOAD, RELOAD-1, ... 1, 0 (the
   * interrupt counts the wrap), RELOAD, ... Re-read if the interrupt ran in between. */
  uint32_t wraps, cvr, pending;
  do {
    wraps = s_wraps;
    pending = SCB_ICSR & SCB_ICSR_PENDSTSET;
    cvr = SYST_CVR;
  } while (wraps != s_wraps);
  if (pending) wraps++; /* reached 0, interrupt not taken yet */
  uint64_t t = (uint64_t)wraps * (SYST_RELOAD + 1u);
  if (cvr != 0) t += (SYST_RELOAD + 1u) - cvr;
  return t;
}

uint32_t board_tick_hz(void) { return CPU_HZ; }

uint32_t board_cpu_hz(void) { return CPU_HZ; }

/* tinyscope runs this board with -icount shift=0: 1 ns of virtual time per instruction, so
 * one tick of the CPU_HZ SysTick is 10^9 / CPU_HZ = 40 instructions. */
/* The 16 MB PSRAM of mps2-an386; tinyscope loads a bank there with QEMU's generic loader
 * (-device loader,file=bank.bin,addr=0x21000000,force-raw=on). Zero (no bank) otherwise. */
const uint8_t *board_input_bank(size_t *capacity) {
  *capacity = 16u << 20;
  return (const uint8_t *)0x21000000u;
}

board_tick_unit_t board_tick_unit(uint32_t *instructions_per_tick) {
  *instructions_per_tick = 1000000000u / CPU_HZ;
  return BOARD_TICK_INSTRUCTIONS;
}

const char *board_name(void) { return "qemu-mps2-an386"; }
