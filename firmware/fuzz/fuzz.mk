# libFuzzer targets (clang, ASan + UBSan) for the firmware's parsers, run from firmware/:
#   make -f fuzz/fuzz.mk [MODEL_DIR=build/default]     build the three targets
#   make -f fuzz/fuzz.mk run RUNS=1000000              run each target RUNS executions
#   make -f fuzz/fuzz.mk run SECONDS=25                ... or SECONDS each (CI)
# Targets:
#   fuzz_model     runtime: ts_interp_init + every tensor + invoke on mutated .tflite models
#   fuzz_frame     firmware frame decoder: COBS, length, CRC-32, version
#   fuzz_commands  firmware request handling (app/main.c) with MODEL_DIR's model compiled in
# Seeds come from firmware/fuzz/seeds.py (real models quantized by tinyscope.convert.quantize, real
# frames from tinyscope.device.protocol); new inputs found go to build/fuzz/corpus/<target>.
FUZZ_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
FW_DIR := $(patsubst %/,%,$(dir $(FUZZ_DIR)))
ifeq ($(FW_DIR),)
FW_DIR := .
endif
include $(FW_DIR)/runtime/runtime.mk

ROOT       := $(abspath $(FW_DIR)/..)
MODEL_DIR  ?= build/default
MODEL_ABS  := $(if $(filter /%,$(MODEL_DIR)),$(MODEL_DIR),$(ROOT)/$(MODEL_DIR))
BUILD      ?= $(FW_DIR)/build/fuzz
PYTHON     ?= $(ROOT)/.venv/bin/python
FUZZ_CC    ?= clang
RUNS       ?=
SECONDS    ?= 25
# No -Werror here: the firmware builds (gcc) enforce it; clang's extra warnings on the
# runtime must not stop the fuzzers from running.
SANITIZE   := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c11 -g -O1 -fno-omit-frame-pointer $(SANITIZE) -Wall -Wextra \
               $(addprefix -I,$(RUNTIME_INC)) -I$(FW_DIR)/app -I$(FW_DIR)/boards -I$(FUZZ_DIR)
# The runtime checks the whole model, so a hang is a bug: libFuzzer's -timeout catches it.
FUZZ_FLAGS := -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
TARGETS    := fuzz_model fuzz_frame fuzz_commands

.PHONY: all seeds run clean
all: $(addprefix $(BUILD)/,$(TARGETS))

# Signed overflow is recoverable in this target only so that fuzz/known.supp can silence the
# known, reported runtime bugs; halt_on_error=1 still stops on any other report.
$(BUILD)/fuzz_model: $(FUZZ_DIR)/fuzz_model.c $(RUNTIME_SRCS) $(RUNTIME_HDRS) $(FUZZ_DIR)/fuzz.mk
	@mkdir -p $(BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize-recover=signed-integer-overflow -o $@ \
	  $(FUZZ_DIR)/fuzz_model.c $(RUNTIME_SRCS)

$(BUILD)/fuzz_frame: $(FUZZ_DIR)/fuzz_frame.c $(FW_DIR)/app/frame.c $(FW_DIR)/app/frame.h $(FUZZ_DIR)/fuzz.mk
	@mkdir -p $(BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_DIR)/fuzz_frame.c $(FW_DIR)/app/frame.c

APP_FUZZ_SRCS := $(FUZZ_DIR)/fuzz_commands.c $(FUZZ_DIR)/fuzz_board.c $(FW_DIR)/app/main.c \
                 $(FW_DIR)/app/link.c $(FW_DIR)/app/frame.c $(FW_DIR)/app/sha256.c
$(BUILD)/fuzz_commands: $(APP_FUZZ_SRCS) $(wildcard $(FW_DIR)/app/*.h) $(RUNTIME_SRCS) $(RUNTIME_HDRS) $(MODEL_ABS)/model_data.cc $(FUZZ_DIR)/fuzz.mk
	@mkdir -p $(BUILD)/obj
	$(FUZZ_CC) -std=c11 -O1 -g -fsanitize=address,undefined -x c -include stdalign.h \
	  -I$(MODEL_ABS) -c -o $(BUILD)/obj/model_data.o $(MODEL_ABS)/model_data.cc
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(MODEL_ABS) -DTS_APP_NO_MAIN -DTS_ARENA_BYTES=262144u \
	  -DTS_FW_VERSION='"fuzz"' -o $@ $(APP_FUZZ_SRCS) $(RUNTIME_SRCS) $(BUILD)/obj/model_data.o

seeds: $(BUILD)/seeds/.stamp
$(BUILD)/seeds/.stamp: $(FUZZ_DIR)/seeds.py $(MODEL_ABS)/model_data.cc
	$(PYTHON) $(FUZZ_DIR)/seeds.py --model-dir $(MODEL_ABS) --out $(BUILD)/seeds
	touch $@

# One line per target: "<target> runs=<n> crashes=<0|1>"; the libFuzzer logs stay in
# $(BUILD)/logs. Fails (non-zero) if any target crashed, leaked, hung or hit a sanitizer.
run: all seeds
	@mkdir -p $(BUILD)/logs $(BUILD)/crashes
	@fail=0; for t in $(TARGETS); do \
	  mkdir -p $(BUILD)/corpus/$$t; \
	  limit=$(if $(RUNS),-runs=$(RUNS),-max_total_time=$(SECONDS)); \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$(abspath $(FUZZ_DIR))/known.supp \
	  $(BUILD)/$$t $(FUZZ_FLAGS) $$limit -artifact_prefix=$(BUILD)/crashes/$$t- \
	    $(BUILD)/corpus/$$t $(BUILD)/seeds/$$t > $(BUILD)/logs/$$t.log 2>&1; rc=$$?; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(BUILD)/logs/$$t.log); \
	  secs=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(BUILD)/logs/$$t.log); \
	  echo "$$t exit=$$rc executions=$${runs:-?} exec_per_s=$${secs:-?} log=$(BUILD)/logs/$$t.log"; \
	  [ $$rc = 0 ] || { fail=1; grep -m3 -E 'ERROR|SUMMARY|runtime error' $(BUILD)/logs/$$t.log; }; \
	done; exit $$fail

clean:
	rm -rf $(BUILD)
