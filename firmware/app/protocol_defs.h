/* Generated from host/tinyscope/device/protocol.py by
 *   python -m tinyscope.device.protocol --header firmware/app/protocol_defs.h
 * Do not edit; tests/device/test_protocol.py checks that it is up to date. */
#ifndef TS_PROTOCOL_DEFS_H
#define TS_PROTOCOL_DEFS_H

#define TSP_VERSION 3
#define TSP_HEADER_SIZE 6 /* u8 version, u8 type, u16 seq, u16 length */
#define TSP_CRC_SIZE 4
#define TSP_MAX_PAYLOAD 4096 /* requests: the device's receive limit */
#define TSP_MAX_RESPONSE_PAYLOAD 65535 /* streamed, never buffered */
#define TSP_TENSOR_MAX_DIMS 6
#define TSP_VARINT_MAX 5
/* element size by TFLite TensorType (0: cannot be streamed) */
#define TSP_DTYPE_SIZES {4, 0, 4, 1, 8, 0, 0, 2, 0, 1}
#define TSP_SEQ_NONE 0xFFFF
#define TSP_OP_NONE 0xFFFF
#define TSP_DIGEST_MULTIPLIER 0x01000193u
#define TSP_BANK_MAGIC 0x42495354u

#define TSP_HELLO 0x01
#define TSP_SET_INPUT 0x02
#define TSP_RUN 0x03
#define TSP_PING 0x04
#define TSP_RESET 0x05
#define TSP_USE_INPUT 0x06
#define TSP_INFO 0x81
#define TSP_TENSOR 0x82
#define TSP_OUTPUT 0x83
#define TSP_TIMING 0x84
#define TSP_ERROR 0x85
#define TSP_DONE 0x86
#define TSP_DIGEST 0x87

#define TSP_ERR_BAD_FRAME 0x01
#define TSP_ERR_BAD_VERSION 0x02
#define TSP_ERR_UNKNOWN_TYPE 0x03
#define TSP_ERR_BAD_REQUEST 0x04
#define TSP_ERR_OUT_OF_RANGE 0x05
#define TSP_ERR_TOO_LARGE 0x06
#define TSP_ERR_NO_INPUT 0x07
#define TSP_ERR_MODEL 0x08
#define TSP_ERR_RUNTIME 0x09

#define TSP_RUN_FIRST 0x00
#define TSP_RUN_ALL 0x01
#define TSP_RUN_LIST 0x02
#define TSP_RUN_NONE 0x03

#define TSP_FLAG_TIMING 0x01
#define TSP_FLAG_OUTPUT 0x02
#define TSP_FLAG_DIGEST 0x04

#define TSP_TICK_TIMER 0x00
#define TSP_TICK_CYCLES 0x01
#define TSP_TICK_INSTRUCTIONS 0x02

#define TSP_INFO_FIXED_SIZE 82 /* <HHIIBIIII32siIiIBI */
#define TSP_OP_ENTRY_SIZE 4 /* <Hh */
#define TSP_SET_INPUT_FIXED_SIZE 8 /* <II */
#define TSP_RUN_FIXED_SIZE 4 /* <BBH */
#define TSP_ERROR_FIXED_SIZE 2 /* <H */
#define TSP_BANK_FIXED_SIZE 12 /* <III */

/* Payload layouts in wire order: X(field, wire type); firmware/app/wire.c
 * expands them into the encoders and decoders. */
#define TSP_INFO_FIELDS(X) \
  X(protocol_version, u16) \
  X(num_ops, u16) \
  X(cpu_hz, u32) \
  X(tick_hz, u32) \
  X(tick_unit, u8) \
  X(instructions_per_tick, u32) \
  X(model_bytes, u32) \
  X(arena_bytes, u32) \
  X(arena_used, u32) \
  X(model_sha256, sha256) \
  X(input_tensor, i32) \
  X(input_bytes, u32) \
  X(output_tensor, i32) \
  X(output_bytes, u32) \
  X(model_status, u8) \
  X(input_bank, u32) \

#define TSP_OP_ENTRY_FIELDS(X) \
  X(builtin_op, u16) \
  X(output_tensor, i16) \

#define TSP_TENSOR_HEAD_FIELDS(X) \
  X(op_index, uvarint) \
  X(builtin_op, uvarint) \
  X(tensor_index, uvarint) \
  X(offset, uvarint) \
  X(dtype, u8) \
  X(ndims, u8) \

#define TSP_SET_INPUT_FIELDS(X) \
  X(offset, u32) \
  X(total, u32) \

#define TSP_RUN_FIELDS(X) \
  X(mode, u8) \
  X(flags, u8) \
  X(count, u16) \

#define TSP_USE_INPUT_FIELDS(X) \
  X(index, u32) \

#define TSP_BANK_FIELDS(X) \
  X(magic, u32) \
  X(count, u32) \
  X(input_bytes, u32) \

#define TSP_TIMING_FIELDS(X) \
  X(tick_hz, uvarint) \
  X(total_ticks, uvarint) \
  X(num_ops, uvarint) \

#define TSP_DIGEST_FIELDS(X) \
  X(num_ops, uvarint) \
  X(digest_ticks, uvarint) \

#define TSP_ERROR_FIELDS(X) \
  X(code, u16) \

#define TSP_DONE_FIELDS(X) \
  X(request, u8) \
  X(frames, uvarint) \

#endif /* TS_PROTOCOL_DEFS_H */
