# tinyscope — top-level commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY        ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV      := .venv
VPY       := $(VENV)/bin/python
TINYSCOPE := $(VENV)/bin/tinyscope
BOARD     ?= qemu
MODEL     ?= models/default.keras
MODEL_DIR ?= build/default
RUN_DIR   ?= captures/demo
N         ?= 100
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PKGS  := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang openocd chromium
export PYTHONDONTWRITEBYTECODE := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: help doctor setup setup-system test test-slow lint demo convert firmware-host firmware flash stop bench bench-suite bench-capture cmsisnn-compare fuzz fuzz-firmware clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: setup-system $(VENV)/.stamp ## install system packages (Debian/Ubuntu) and the pinned Python venv

# Packages by capability (tools/doctor checks each one works, not just that a binary exists).
# The compiler-rt runtimes (libFuzzer, ASan, UBSan) are only *recommended* by clang, so they
# are installed explicitly, for the installed clang's major version (libclang-rt-<N>-dev:
# libclang-rt-14-dev on Debian 12, whose clang is 14).
setup-system: ## install the Debian packages the pipeline and the tests use, then check them (tools/doctor)
	@missing=""; \
	for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi; \
	rt="libclang-rt-$$(clang -dumpversion | cut -d. -f1)-dev"; \
	if ! dpkg -s $$rt >/dev/null 2>&1; then \
	  echo "installing the sanitizer/fuzzer runtimes: $$rt"; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$rt \
	  || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$rt; }; \
	fi
	@tools/doctor --quiet

doctor: ## check every capability the pipeline and tests need (fuzzer link, arm newlib-nano, QEMU board, openocd)
	@tools/doctor

$(VENV)/.stamp: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found; install Python 3.11 (apt-get install python3.11 python3.11-venv)"; exit 1; }
	[ -x $(VPY) ] || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $@

firmware-host: setup-system ## build the native runtime runner (firmware/build/host/tinyscope-run)
	$(MAKE) -C firmware host

test: setup firmware-host ## install what is needed, then run every test (host, runtime, emulator)
	$(VPY) -m pytest -q --durations=10

test-slow: setup firmware-host ## the long property-test runs (300 random models; SEED=N picks others)
	$(VPY) -m pytest -q -m slow

lint: setup ## ruff on the Python package and tests
	$(VENV)/bin/ruff check host tests

demo: setup ## install everything, then convert -> build -> flash (QEMU) -> capture -> compare -> report
	$(TINYSCOPE) run --model $(MODEL) --build $(MODEL_DIR) --out $(RUN_DIR) --n $(N)

convert: setup ## convert the default model: make convert [MODEL=...] [MODEL_DIR=...]
	$(TINYSCOPE) convert $(MODEL) --out $(MODEL_DIR)

firmware: setup-system ## build the device firmware: make firmware [BOARD=qemu] [MODEL_DIR=build/default]
	$(MAKE) -C firmware BOARD=$(BOARD) MODEL_DIR=$(abspath $(MODEL_DIR))

flash: setup setup-system ## build the firmware and put it on BOARD: qemu, netduinoplus2 (QEMU, background) or nucleo-f446re (openocd/st-flash)
	$(TINYSCOPE) flash --board $(BOARD) --model-dir $(MODEL_DIR) $(if $(ARENA_BYTES),--arena-bytes $(ARENA_BYTES))

stop: ## stop the emulated board started by make flash
	@if [ -x $(TINYSCOPE) ]; then $(TINYSCOPE) stop; \
	elif [ -f build/qemu/qemu.pid ]; then kill $$(cat build/qemu/qemu.pid) && rm -f build/qemu/qemu.pid build/qemu/port; \
	else echo "no QEMU was running"; fi

bench-capture: setup setup-system ## capture throughput (issue 15): full dump vs verified by digest, input bank, 115200-baud link, MobileNet-class -> build/bench-capture.json
	$(VPY) tools/make_bench_mnet.py --out build/bench-mnet
	$(VPY) tools/bench_capture.py --build build/bench-mnet --n 300 --modes verify-bank,verify-jobs2,verify-bank-warm,verify-jobs2-warm,verify-bank-115200 --json build/bench-capture.json
	$(VPY) tools/bench_capture.py --build build/bench-mnet --n 4 --modes all,verify --json build/bench-capture-slow.json

fuzz: setup ## host frame decoder: 1,000,000 mutated streams (faults between/inside frames), prints counts
	$(VPY) -m tinyscope.device.faults --streams $${STREAMS:-1000000} --seed $${SEED:-0}

fuzz-firmware: setup ## libFuzzer+ASan+UBSan: model parser, frame decoder, request handling, 1,000,000 runs each
	[ -f $(MODEL_DIR)/model_data.cc ] || $(TINYSCOPE) convert $(MODEL) --out $(MODEL_DIR)
	$(MAKE) -C firmware -f fuzz/fuzz.mk run RUNS=$${RUNS:-1000000} MODEL_DIR=$(abspath $(MODEL_DIR))

# make bench MODEL=path: that model, converted into build/bench-<name> (MODEL_DIR= overrides)
BENCH_OWN := $(filter command line environment,$(origin MODEL))
BENCH_DIR := $(if $(and $(BENCH_OWN),$(filter file,$(origin MODEL_DIR))),build/bench-$(basename $(notdir $(MODEL))),$(MODEL_DIR))
bench: setup setup-system ## ref vs optimized kernels in QEMU: per-op instructions, kernel path, arena, .text -> build/bench.json [MODEL=path]
	$(VPY) -m tinyscope.bench --model $(MODEL) --build $(BENCH_DIR) --out build/bench.json $(if $(BENCH_OWN),--second none) $(if $(DATA),--data $(DATA))

bench-suite: setup setup-system ## bench the default model and the four MLPerf Tiny twins -> build/bench-suite.json
	$(VPY) -m tinyscope.bench --suite --n $${N:-2}

cmsisnn-compare: setup setup-system ## CMSIS-NN per layer vs ours: make cmsisnn-compare CMSIS_NN=path/to/CMSIS-NN (after bench-suite)
	@test -n "$(CMSIS_NN)" || { echo "give the path of a CMSIS-NN checkout: make cmsisnn-compare CMSIS_NN=path (it is not part of this repository)"; exit 2; }
	$(VPY) tools/cmsisnn_compare.py --cmsis-nn $(CMSIS_NN)

clean: ## remove build outputs (keeps .venv)
	rm -rf build firmware/build
