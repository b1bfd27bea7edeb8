# tinyscope runtime sources, for other makefiles to include:
#   include $(TS_ROOT)/runtime/runtime.mk   (TS_RUNTIME_DIR defaults to this file's folder)
#   CFLAGS += $(addprefix -I,$(RUNTIME_INC));  objects from $(RUNTIME_SRCS)
TS_RUNTIME_DIR ?= $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
RUNTIME_SRCS := \
  $(TS_RUNTIME_DIR)/src/ts_fb.c \
  $(TS_RUNTIME_DIR)/src/ts_interp.c \
  $(TS_RUNTIME_DIR)/src/ts_opnames.c \
  $(TS_RUNTIME_DIR)/src/ts_plan.c \
  $(TS_RUNTIME_DIR)/src/ts_quant.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/add.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/conv.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/depthwise_conv.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/fully_connected.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/mean.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/misc.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/pooling.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/softmax.c
RUNTIME_INC := $(TS_RUNTIME_DIR)/include $(TS_RUNTIME_DIR)/src
RUNTIME_HDRS := $(wildcard $(TS_RUNTIME_DIR)/include/*.h $(TS_RUNTIME_DIR)/src/*.h)
