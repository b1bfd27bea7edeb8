# QEMU mps2-an386: Cortex-M4 with FPU (fpv4-sp-d16) and DSP, 25 MHz.
BOARD_NAME    := qemu-mps2-an386
BOARD_CFLAGS  := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
BOARD_SRCS    := boards/cortex-m/startup.c $(BOARD_DIR)/board.c
BOARD_LDSCRIPT := $(BOARD_DIR)/linker.ld
# How `make flash` runs it (qemu-system-arm -M mps2-an386) is defined in
# host/tinyscope/device/boards.py.
