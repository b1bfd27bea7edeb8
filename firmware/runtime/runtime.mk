# tinyscope runtime sources, for other makefiles to include:
#   include $(TS_ROOT)/runtime/runtime.mk   (TS_RUNTIME_DIR defaults to this file's folder)
#   CFLAGS += $(addprefix -I,$(RUNTIME_INC));  objects from $(RUNTIME_SRCS)
TS_RUNTIME_DIR ?= $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
# The operators are every file of src/ops/ (one per operator, listed in src/ts_ops.def).
RUNTIME_SRCS := \
  $(TS_RUNTIME_DIR)/src/ts_fb.c \
  $(TS_RUNTIME_DIR)/src/ts_fmt.c \
  $(TS_RUNTIME_DIR)/src/ts_interp.c \
  $(TS_RUNTIME_DIR)/src/ts_model.c \
  $(TS_RUNTIME_DIR)/src/ts_names.c \
  $(TS_RUNTIME_DIR)/src/ts_opnames.c \
  $(TS_RUNTIME_DIR)/src/ts_ops.c \
  $(TS_RUNTIME_DIR)/src/ts_plan.c \
  $(TS_RUNTIME_DIR)/src/ts_prep.c \
  $(TS_RUNTIME_DIR)/src/ts_quant.c \
  $(sort $(wildcard $(TS_RUNTIME_DIR)/src/ops/*.c)) \
  $(TS_RUNTIME_DIR)/src/kernels/ref/activations.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/binary.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/conv.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/depthwise_conv.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/fully_connected.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/mean.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/misc.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/pooling.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/resize.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/softmax.c \
  $(TS_RUNTIME_DIR)/src/kernels/ref/transpose_conv.c \
  $(TS_RUNTIME_DIR)/src/kernels/cm4/add.c \
  $(TS_RUNTIME_DIR)/src/kernels/cm4/common.c \
  $(TS_RUNTIME_DIR)/src/kernels/cm4/conv.c \
  $(TS_RUNTIME_DIR)/src/kernels/cm4/conv_pointwise.c \
  $(TS_RUNTIME_DIR)/src/kernels/cm4/depthwise_conv.c \
  $(TS_RUNTIME_DIR)/src/kernels/cm4/fully_connected.c \
  $(TS_RUNTIME_DIR)/src/kernels/cm4/mean.c \
  $(TS_RUNTIME_DIR)/src/kernels/cm4/pooling.c \
  $(TS_RUNTIME_DIR)/src/kernels/cm4/softmax.c
RUNTIME_INC := $(TS_RUNTIME_DIR)/include $(TS_RUNTIME_DIR)/src
RUNTIME_HDRS := $(wildcard $(TS_RUNTIME_DIR)/include/*.h $(TS_RUNTIME_DIR)/src/*.h \
                  $(TS_RUNTIME_DIR)/src/ts_ops.def \
                  $(TS_RUNTIME_DIR)/src/kernels/cm4/*.h)
# Kernel set the interpreter calls: opt (kernels/cm4, the default) or ref (kernels/ref).
# Both sets are always compiled (tests compare them); the linker drops the unused one.
TS_KERNELS ?= opt
ifeq ($(filter ref opt,$(TS_KERNELS)),)
$(error TS_KERNELS=$(TS_KERNELS): use ref or opt)
endif
RUNTIME_DEFS := $(if $(filter opt,$(TS_KERNELS)),-DTS_USE_OPT_KERNELS)
