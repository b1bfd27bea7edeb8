# NUCLEO-F446RE: STM32F446RE, Cortex-M4 with FPU (fpv4-sp-d16) and DSP; 512 KB flash, 128 KB
# RAM. Host link: USART2 (PA2 TX / PA3 RX), the ST-LINK's virtual COM port.
# The same ELF boots on QEMU -M netduinoplus2 (USART2 = its second -serial).
#   CLOCK=hsi  (default) 16 MHz internal oscillator, no PLL
#   CLOCK=pll  180 MHz from HSI via the PLL (falls back to HSI if a ready flag times out)
#   BAUD=115200 (default) the UART baud rate; faster: BAUD=921600 with CLOCK=pll,
#              BAUD=460800 or 1000000 with CLOCK=hsi (see docs/boards.md)
BOARD_NAME    := nucleo-f446re
CLOCK         ?= hsi
BAUD          ?= 115200
ifeq ($(filter hsi pll,$(CLOCK)),)
$(error CLOCK=$(CLOCK): use CLOCK=hsi (16 MHz) or CLOCK=pll (180 MHz))
endif
BOARD_CFLAGS  := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
BOARD_DEFS    := -DTS_BOARD_CLOCK_PLL=$(if $(filter pll,$(CLOCK)),1,0) -DTS_BOARD_BAUD=$(BAUD)u
BOARD_SRCS    := boards/cortex-m/startup.c $(BOARD_DIR)/board.c
BOARD_LDSCRIPT := $(BOARD_DIR)/linker.ld
# RAM budget (128 KB): arena + 16 KB stack + ~12 KB of link/app buffers.
BOARD_ARENA_BYTES := 81920
BOARD_STACK_BYTES := 16384
BOARD_FLASH_BYTES := 524288
BOARD_RAM_BYTES   := 131072
# How it is programmed and emulated is defined once, in host/tinyscope/device/boards.py
# (REAL_BOARDS: openocd -f interface/stlink.cfg -f target/stm32f4x.cfg, or st-flash;
# EMULATORS: qemu-system-arm -M netduinoplus2 -serial null -serial <host link>).
