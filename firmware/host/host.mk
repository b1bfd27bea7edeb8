# Native (host) build of the tinyscope runtime, run from firmware/ by `make -C firmware host`.
#   make -f host/host.mk            build/host/tinyscope-run       (gcc, -O2)
#   make -f host/host.mk sanitize   build/host/tinyscope-run-asan  (ASan + UBSan)
#   make -f host/host.mk scratch    build/host/tinyscope-run-scratch (every op asks for scratch)
#   make -f host/host.mk cm4        Cortex-M4 cross-build of the runtime, prints .text size
#   make -f host/host.mk check      build/host/ts-kernel-check: optimized vs reference kernels
#   make -f host/host.mk m4check    build/m4check/ts-kernel-check{,-small}.elf: the same check
#                                   on the Cortex-M4 (QEMU mps2-an386, real DSP instructions)
#   TS_KERNELS=ref|opt (default opt) picks the kernel set the runner / cm4 build calls.
HOST_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
FW_DIR := $(patsubst %/,%,$(dir $(HOST_DIR)))
ifeq ($(FW_DIR),)
FW_DIR := .
endif
include $(FW_DIR)/runtime/runtime.mk

BUILD := $(FW_DIR)/build/host
CC ?= cc
WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wno-missing-prototypes
HOST_CFLAGS := $(WARN) -O2 -g $(addprefix -I,$(RUNTIME_INC)) $(RUNTIME_DEFS)
SAN_CFLAGS := $(WARN) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=all $(addprefix -I,$(RUNTIME_INC)) $(RUNTIME_DEFS)
# The runner's file name says which kernels it calls when they are not the default.
RUN_SUFFIX := $(if $(filter ref,$(TS_KERNELS)),-ref)
RUNNER_SRC := $(HOST_DIR)/tinyscope_run.c

.PHONY: all sanitize scratch cm4 clean check m4check
all: $(BUILD)/tinyscope-run$(RUN_SUFFIX)

$(BUILD)/tinyscope-run$(RUN_SUFFIX): $(RUNTIME_SRCS) $(RUNNER_SRC) $(RUNTIME_HDRS) $(HOST_DIR)/host.mk $(FW_DIR)/runtime/runtime.mk
	@mkdir -p $(BUILD)
	$(CC) $(HOST_CFLAGS) -o $@ $(RUNTIME_SRCS) $(RUNNER_SRC)

# Optimized kernels == reference kernels on random shapes and parameters (tests/runtime/test_opt.py).
# The -small build shrinks the kernels' stack buffers so weight blocks, row tiles, channel
# chunks and the fallbacks all run on the random shapes.
CHECK_SMALL_DEFS := -DTS_OPT_CONV_WBUF=400 -DTS_OPT_CONV_ROWBUF=120 -DTS_OPT_CONV_BLOCK=4 \
                    -DTS_OPT_FC_XBUF=64 -DTS_OPT_DW_ROWS=5 -DTS_OPT_DW_GROUPS=1 -DTS_OPT_SOFTMAX_ROW_BUF=8
check: $(BUILD)/ts-kernel-check $(BUILD)/ts-kernel-check-small
$(BUILD)/ts-kernel-check: $(RUNTIME_SRCS) $(HOST_DIR)/kernel_check.c $(HOST_DIR)/m4_ticks.h $(RUNTIME_HDRS) $(HOST_DIR)/host.mk $(FW_DIR)/runtime/runtime.mk
	@mkdir -p $(BUILD)
	$(CC) $(SAN_CFLAGS) -O2 -o $@ $(RUNTIME_SRCS) $(HOST_DIR)/kernel_check.c
$(BUILD)/ts-kernel-check-small: $(RUNTIME_SRCS) $(HOST_DIR)/kernel_check.c $(HOST_DIR)/m4_ticks.h $(RUNTIME_HDRS) $(HOST_DIR)/host.mk $(FW_DIR)/runtime/runtime.mk
	@mkdir -p $(BUILD)
	$(CC) $(SAN_CFLAGS) -O2 $(CHECK_SMALL_DEFS) -o $@ $(RUNTIME_SRCS) $(HOST_DIR)/kernel_check.c

# The same check on the emulated Cortex-M4, where the kernels run the real DSP instructions
# (and any hand-written Thumb-2): kernel_check.c + the kernels + ts_quant.c, at the firmware's
# -O2 and FPU flags, stdio over semihosting (newlib's librdimon), the board's linker script and
# m4check_semihost.c's vectors/reset (argv from -append, exit status from SYS_EXIT_EXTENDED):
#   qemu-system-arm -M mps2-an386 -display none -monitor none -serial none \
#     -semihosting-config enable=on,target=native -kernel ELF -append "SEED CASES"
# (tests/runtime/test_opt_m4.py). M4CHECK_CM4 may name a copy of kernels/cm4 (a patched
# kernel for the harness's own test), M4CHECK_OUT another output folder.
M4CHECK_CM4 ?= $(TS_RUNTIME_DIR)/src/kernels/cm4
M4CHECK_OUT ?= $(FW_DIR)/build/m4check
M4CHECK_SRCS := $(patsubst $(TS_RUNTIME_DIR)/src/kernels/cm4/%,$(M4CHECK_CM4)/%,\
                  $(filter $(TS_RUNTIME_DIR)/src/ts_quant.c $(TS_RUNTIME_DIR)/src/kernels/%,\
                    $(RUNTIME_SRCS))) \
                $(HOST_DIR)/kernel_check.c $(HOST_DIR)/m4check_semihost.c
M4CHECK_DEPS := $(M4CHECK_SRCS) $(RUNTIME_HDRS) $(wildcard $(M4CHECK_CM4)/*.h) \
                $(HOST_DIR)/m4_ticks.h $(HOST_DIR)/host.mk $(FW_DIR)/runtime/runtime.mk \
                $(FW_DIR)/boards/qemu-mps2-an386/linker.ld
M4CHECK_CFLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2 -g -std=c11 \
                  -Wall -Wextra -Werror -ffunction-sections -fdata-sections -fno-math-errno \
                  $(addprefix -I,$(RUNTIME_INC)) -DTS_USE_OPT_KERNELS \
                  -DTS_CHECK_MAIN=ts_kernel_check_main
M4CHECK_LDFLAGS := -T$(FW_DIR)/boards/qemu-mps2-an386/linker.ld -nostartfiles --specs=rdimon.specs \
                   -Wl,--gc-sections -Wl,--no-warn-rwx-segments
m4check: $(M4CHECK_OUT)/ts-kernel-check.elf $(M4CHECK_OUT)/ts-kernel-check-small.elf
$(M4CHECK_OUT)/ts-kernel-check.elf: $(M4CHECK_DEPS)
	@mkdir -p $(M4CHECK_OUT)
	$(CM4_CC) $(M4CHECK_CFLAGS) $(M4CHECK_LDFLAGS) -o $@ $(M4CHECK_SRCS)
$(M4CHECK_OUT)/ts-kernel-check-small.elf: $(M4CHECK_DEPS)
	@mkdir -p $(M4CHECK_OUT)
	$(CM4_CC) $(M4CHECK_CFLAGS) $(CHECK_SMALL_DEFS) $(M4CHECK_LDFLAGS) -o $@ $(M4CHECK_SRCS)

# The runner with every operator asking for TS_TEST_SCRATCH bytes of arena scratch that
# invoke scribbles over before the operator runs (tests: the planner keeps scratch off live
# tensors; tests/test_runtime_ops.py).
scratch: $(BUILD)/tinyscope-run-scratch
$(BUILD)/tinyscope-run-scratch: $(RUNTIME_SRCS) $(RUNNER_SRC) $(RUNTIME_HDRS) $(HOST_DIR)/host.mk $(FW_DIR)/runtime/runtime.mk
	@mkdir -p $(BUILD)
	$(CC) $(HOST_CFLAGS) -DTS_TEST_SCRATCH=1000 -o $@ $(RUNTIME_SRCS) $(RUNNER_SRC)

sanitize: $(BUILD)/tinyscope-run-asan$(RUN_SUFFIX)
$(BUILD)/tinyscope-run-asan$(RUN_SUFFIX): $(RUNTIME_SRCS) $(RUNNER_SRC) $(RUNTIME_HDRS) $(HOST_DIR)/host.mk $(FW_DIR)/runtime/runtime.mk
	@mkdir -p $(BUILD)
	$(CC) $(SAN_CFLAGS) -o $@ $(RUNTIME_SRCS) $(RUNNER_SRC)

# Cortex-M4 cross-build of the runtime alone (a static library), to check it compiles with
# the firmware flags and to report its code size: at -Os (the code-size goal's measure; the
# firmware compiles at -O2), without message texts as the firmware (TS_STRIP_MESSAGES).
CM4_CC := arm-none-eabi-gcc
CM4_AR := arm-none-eabi-ar
CM4_SIZE := arm-none-eabi-size
CM4_BUILD := $(FW_DIR)/build/cm4-runtime$(RUN_SUFFIX)
CM4_CFLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os -std=c11 \
              -Wall -Wextra -Werror -ffunction-sections -fdata-sections -fno-math-errno \
              -DTS_STRIP_MESSAGES $(addprefix -I,$(RUNTIME_INC)) $(RUNTIME_DEFS)
CM4_OBJS := $(patsubst $(TS_RUNTIME_DIR)/%.c,$(CM4_BUILD)/%.o,$(RUNTIME_SRCS))
cm4: $(CM4_BUILD)/libtsruntime.a $(CM4_BUILD)/linked$(RUN_SUFFIX).map
	@$(CM4_SIZE) -t $(CM4_OBJS) | tail -1 | awk '{print "cm4 runtime .text " $$1 " bytes, .data " $$2 ", .bss " $$3}'
	@total=$$($(CM4_SIZE) -A $(CM4_BUILD)/linked$(RUN_SUFFIX).elf | \
	   awk '$$1 == ".text" || $$1 == ".rodata" { s += $$2 } END { print s }'); \
	 awk -v total=$$total 'function hex(h, i, v) { v = 0; h = tolower(substr(h, 3)); \
	     for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; \
	     return v } \
	   /^Linker script and memory map/ { on = 1 } \
	   on && /^ \.(text|rodata)/ { if (NF < 4) getline; else $$0 = substr($$0, index($$0, $$2)); \
	   if ($$NF !~ /cm4-runtime.*\/src\//) o += hex($$(NF-1)) } \
	   END { print "linked runtime .text " total - o " bytes (TS_KERNELS=$(TS_KERNELS), -Os, TS_STRIP_MESSAGES as the firmware, --gc-sections)" }' $(CM4_BUILD)/linked$(RUN_SUFFIX).map
# The runtime linked into a stub that calls its whole API, unused code dropped; its figure is
# the image's .text + .rodata less the input sections of libc, libgcc and the stub (merged
# strings counted once, alignment padding counted).
$(CM4_BUILD)/linked$(RUN_SUFFIX).map: $(CM4_OBJS) $(HOST_DIR)/cm4_link_stub.c
	$(CM4_CC) $(CM4_CFLAGS) -nostartfiles --specs=nano.specs -Wl,--gc-sections \
	  -Wl,-e,cm4_stub_main -Wl,--undefined=cm4_stub_main -Wl,-Map=$@ \
	  -o $(CM4_BUILD)/linked$(RUN_SUFFIX).elf $(HOST_DIR)/cm4_link_stub.c $(CM4_OBJS)
$(CM4_BUILD)/libtsruntime.a: $(CM4_OBJS)
	@rm -f $@
	$(CM4_AR) rcs $@ $^
$(CM4_BUILD)/%.o: $(TS_RUNTIME_DIR)/%.c $(RUNTIME_HDRS) $(HOST_DIR)/host.mk
	@mkdir -p $(dir $@)
	$(CM4_CC) $(CM4_CFLAGS) -c -o $@ $<

clean:
	rm -rf $(BUILD) $(CM4_BUILD) $(M4CHECK_OUT)
