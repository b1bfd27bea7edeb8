/*
 * NUCLEO-F446RE (STM32F446RE, Cortex-M4F): USART2 on PA2/PA3 (the ST-LINK virtual COM port)
 * for the host link; DWT CYCCNT (CPU cycles) as the tick counter, SysTick when CYCCNT does
 * not run.
 *
 * The same image runs on QEMU -M netduinoplus2 (STM32F405), which emulates the USARTs but not
 * RCC, PWR, FLASH or GPIO (they read 0, writes are ignored) nor DWT. So every wait on a ready
 * flag has a bound: when the PLL never locks, the core stays on HSI (16 MHz) and the board
 * reports 16 MHz; when CYCCNT stays 0, SysTick counts instead and board_name() says so.
 *
 * Build options (board.mk): TS_BOARD_CLOCK_PLL (0: HSI 16 MHz, 1: PLL 180 MHz),
 * TS_BOARD_BAUD (115200 default).
 */
#include "board.h"

#include <stdbool.h>

#ifndef TS_BOARD_CLOCK_PLL
#define TS_BOARD_CLOCK_PLL 0
#endif
#ifndef TS_BOARD_BAUD
#define TS_BOARD_BAUD 115200u
#endif

#define REG(addr) (*(volatile uint32_t *)(addr))

/* RCC (RM0390 section 6.3) */
#define RCC_BASE 0x40023800u
#define RCC_CR REG(RCC_BASE + 0x00)
#define RCC_PLLCFGR REG(RCC_BASE + 0x04)
#define RCC_CFGR REG(RCC_BASE + 0x08)
#define RCC_AHB1ENR REG(RCC_BASE + 0x30)
#define RCC_APB1ENR REG(RCC_BASE + 0x40)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_MASK 0x3u
#define RCC_CFGR_SW_HSI 0x0u
#define RCC_CFGR_SW_PLLP 0x2u
#define RCC_CFGR_SWS_MASK (0x3u << 2)
#define RCC_CFGR_SWS_PLLP (0x2u << 2)
#define RCC_CFGR_PPRE1_SHIFT 10
#define RCC_CFGR_PPRE2_SHIFT 13
#define RCC_CFGR_HPRE_SHIFT 4
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_APB1ENR_PWREN (1u << 28)

/* PWR: voltage scale 1 and over-drive, needed above 168 MHz */
#define PWR_CR REG(0x40007000u)
#define PWR_CSR REG(0x40007004u)
#define PWR_CR_VOS_SCALE1 (0x3u << 14)
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)

/* FLASH access control: 5 wait states at 180 MHz (2.7-3.6 V), caches and prefetch */
#define FLASH_ACR REG(0x40023C00u)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* GPIOA: PA2 = USART2_TX, PA3 = USART2_RX, alternate function 7 */
#define GPIOA_BASE 0x40020000u
#define GPIOA_MODER REG(GPIOA_BASE + 0x00)
#define GPIOA_OSPEEDR REG(GPIOA_BASE + 0x08)
#define GPIOA_PUPDR REG(GPIOA_BASE + 0x0C)
#define GPIOA_AFRL REG(GPIOA_BASE + 0x20)

/* USART2 */
#define USART2_BASE 0x40004400u
#define USART_SR REG(USART2_BASE + 0x00)
#define USART_DR REG(USART2_BASE + 0x04)
#define USART_BRR REG(USART2_BASE + 0x08)
#define USART_CR1 REG(USART2_BASE + 0x0C)
#define USART_CR2 REG(USART2_BASE + 0x10)
#define USART_CR3 REG(USART2_BASE + 0x14)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)
#define USART_CR1_OVER8 (1u << 15)

/* Core debug: DWT cycle counter */
#define DEMCR REG(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define DWT_CTRL_CYCCNTENA (1u << 0)

/* SysTick (the fallback tick counter) */
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SYST_CSR_ENABLE 0x1u
#define SYST_CSR_TICKINT 0x2u
#define SYST_CSR_CLKSOURCE 0x4u /* processor clock */
#define SYST_RELOAD 0x00FFFFFFu
#define SCB_ICSR REG(0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_ICSR_PENDSTCLR (1u << 25)

#define HSI_HZ 16000000u
#define PLL_HZ 180000000u
/* Polls of a ready flag before giving up. PLL lock takes ~100 us and over-drive ~50 us, i.e.
 * a few thousand polls at 16 MHz; 200000 polls are >= 50 ms, so a real board never times
 * out, and an emulator without RCC gives up in a few ms. */
#define READY_POLLS 200000u

static uint32_t s_cpu_hz = HSI_HZ;
static uint32_t s_apb1_hz = HSI_HZ;
static bool s_dwt; /* CYCCNT runs; else SysTick */
static uint32_t s_last;           /* DWT: CYCCNT at the last read */
static uint64_t s_acc;            /* DWT: cycles since the last reset */
static volatile uint32_t s_wraps; /* SysTick: wrap-arounds, counted by the interrupt */

void SysTick_Handler(void) { s_wraps++; }

/* Poll until (reg & mask) == want; false after READY_POLLS polls. */
static bool wait_flag(volatile uint32_t *reg, uint32_t mask, uint32_t want) {
  for (uint32_t i = 0; i < READY_POLLS; i++) {
    if ((*reg & mask) == want) return true;
  }
  return false;
}

/* Back to HSI (always safe: extra flash wait states only cost speed). */
static void use_hsi(void) {
  RCC_CR |= RCC_CR_HSION;
  (void)wait_flag(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
  RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_HSI;
  (void)wait_flag(&RCC_CFGR, RCC_CFGR_SWS_MASK, 0);
  RCC_CR &= ~RCC_CR_PLLON;
  s_cpu_hz = HSI_HZ;
  s_apb1_hz = HSI_HZ;
}

/* HSI / 8 * 180 / 2 = 180 MHz (VCO 360 MHz); AHB /1, APB1 /4 = 45 MHz, APB2 /2 = 90 MHz.
 * Returns false (and stays on HSI) if any ready flag times out. */
static bool clock_pll(void) {
  RCC_APB1ENR |= RCC_APB1ENR_PWREN;
  (void)RCC_APB1ENR;
  PWR_CR |= PWR_CR_VOS_SCALE1;
  RCC_CR &= ~RCC_CR_PLLON;
  if (!wait_flag(&RCC_CR, RCC_CR_PLLRDY, 0)) return false;
  /* PLLM=8, PLLN=180, PLLP=2 (00), PLLSRC=HSI (0), PLLQ=8 (48 MHz would need 7.5), PLLR=2 */
  RCC_PLLCFGR = 8u | (180u << 6) | (0u << 16) | (8u << 24) | (2u << 28);
  RCC_CR |= RCC_CR_PLLON;
  if (!wait_flag(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) return false;
  PWR_CR |= PWR_CR_ODEN;
  if (!wait_flag(&PWR_CSR, PWR_CSR_ODRDY, PWR_CSR_ODRDY)) return false;
  PWR_CR |= PWR_CR_ODSWEN;
  if (!wait_flag(&PWR_CSR, PWR_CSR_ODSWRDY, PWR_CSR_ODSWRDY)) return false;
  FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | 5u | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN |
              FLASH_ACR_DCEN;
  if ((FLASH_ACR & FLASH_ACR_LATENCY_MASK) != 5u) return false;
  RCC_CFGR = (RCC_CFGR & ~((0xFu << RCC_CFGR_HPRE_SHIFT) | (0x7u << RCC_CFGR_PPRE1_SHIFT) |
                           (0x7u << RCC_CFGR_PPRE2_SHIFT))) |
             (0x5u << RCC_CFGR_PPRE1_SHIFT) | (0x4u << RCC_CFGR_PPRE2_SHIFT);
  RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLLP;
  if (!wait_flag(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLLP)) return false;
  s_cpu_hz = PLL_HZ;
  s_apb1_hz = PLL_HZ / 4u;
  return true;
}

static void clock_init(void) {
  s_cpu_hz = HSI_HZ;
  s_apb1_hz = HSI_HZ;
  if (TS_BOARD_CLOCK_PLL && !clock_pll()) use_hsi();
}

static void uart_init(void) {
  RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
  RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
  (void)RCC_APB1ENR; /* a read-back lets the clock enable settle before the first access */
  GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4)) | (0xAu << 4);   /* PA2, PA3: alternate */
  GPIOA_OSPEEDR |= 0x3u << 4;                                  /* PA2: high speed */
  GPIOA_PUPDR = (GPIOA_PUPDR & ~(0xFu << 4)) | (0x1u << 6);    /* PA3: pull-up */
  GPIOA_AFRL = (GPIOA_AFRL & ~(0xFFu << 8)) | (0x77u << 8);    /* AF7 = USART2 */
  /* baud = f_apb1 / D with D = round(f_apb1 / baud), both with 16x (D >= 16) and 8x
   * oversampling (8 <= D < 16; BRR[3] must be 0 there). */
  uint32_t d = (s_apb1_hz + TS_BOARD_BAUD / 2u) / TS_BOARD_BAUD;
  uint32_t cr1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
  if (d < 16u) {
    cr1 |= USART_CR1_OVER8;
    d = ((d >> 3) << 4) | (d & 7u);
  }
  USART_CR1 = 0;
  USART_CR2 = 0; /* 1 stop bit */
  USART_CR3 = 0; /* no flow control */
  USART_BRR = d;
  USART_CR1 = cr1; /* 8N1 */
}

static void ticks_init(void) {
  DEMCR |= DEMCR_TRCENA;
  DWT_CYCCNT = 0;
  DWT_CTRL |= DWT_CTRL_CYCCNTENA;
  for (volatile int i = 0; i < 16; i++) {
  }
  s_dwt = DWT_CYCCNT != 0;
  if (!s_dwt) {
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
  }
}

void board_init(void) {
  clock_init();
  uart_init();
  ticks_init();
  __asm volatile("cpsie i" ::: "memory");
}

uint8_t board_uart_read(void) {
  while (!(USART_SR & USART_SR_RXNE)) {
  }
  return (uint8_t)USART_DR; /* the SR-then-DR read also clears an overrun (the CRC sees it) */
}

void board_uart_write(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    while (!(USART_SR & USART_SR_TXE)) {
    }
    USART_DR = data[i];
  }
}

void board_ticks_reset(void) {
  if (s_dwt) {
    s_last = DWT_CYCCNT;
    s_acc = 0;
    return;
  }
  SYST_CVR = 0;
  SCB_ICSR = SCB_ICSR_PENDSTCLR;
  s_wraps = 0;
}

uint64_t board_ticks(void) {
  if (s_dwt) {
    /* CYCCNT wraps every 2^32 cycles (23.8 s at 180 MHz): accumulate the 32-bit differences.
     * Exact as long as it is read at least once per wrap (per operator). */
    uint32_t now = DWT_CYCCNT;
    s_acc += (uint32_t)(now - s_last);
    s_last = now;
    return s_acc;
  }
  /* SysTick counts down from RELOAD; see the qemu-mps2-an386 board for the wrap handling. */
  uint32_t wraps, cvr, pending;
  do {
    wraps = s_wraps;
    pending = SCB_ICSR & SCB_ICSR_PENDSTSET;
    cvr = SYST_CVR;
  } while (wraps != s_wraps);
  if (pending) wraps++;
  uint64_t t = (uint64_t)wraps * (SYST_RELOAD + 1u);
  if (cvr != 0) t += (SYST_RELOAD + 1u) - cvr;
  return t;
}

/* Both counters run at the core clock: DWT counts cycles, SysTick uses CLKSOURCE=processor. */
uint32_t board_tick_hz(void) { return s_cpu_hz; }

uint32_t board_cpu_hz(void) { return s_cpu_hz; }

/* The input bank linked into flash (make INPUT_BANK=bank.bin: firmware/Makefile turns it into
 * these two symbols); absent (weak, NULL) otherwise, and inputs come by SET_INPUT. The
 * firmware checks the bank's head and bounds against this capacity (app/main.c). */
extern const unsigned char input_bank_bin[] __attribute__((weak));
extern const unsigned int input_bank_bin_len __attribute__((weak));

const uint8_t *board_input_bank(size_t *capacity) {
  if (input_bank_bin == NULL || &input_bank_bin_len == NULL) {
    *capacity = 0;
    return NULL;
  }
  *capacity = input_bank_bin_len;
  return input_bank_bin;
}

board_tick_unit_t board_tick_unit(uint32_t *instructions_per_tick) {
  *instructions_per_tick = 0;
  return s_dwt ? BOARD_TICK_CYCLES : BOARD_TICK_TIMER;
}

/* The tick source is part of the name, so INFO says what TIMING ticks are: CPU cycles from
 * DWT, or SysTick at the core clock when CYCCNT does not run (QEMU netduinoplus2, where the
 * emulated SysTick follows QEMU's virtual clock rather than the 16 MHz reported). */
const char *board_name(void) {
  return s_dwt ? "nucleo-f446re" : "nucleo-f446re (SysTick ticks: DWT CYCCNT not running)";
}
