/* Generated from host/tinyscope/device/protocol.py by
 *   python -m tinyscope.device.protocol --header firmware/app/protocol_defs.h
 * Do not edit; tests/device/test_protocol.py checks that it is up to date. */
#ifndef TS_PROTOCOL_DEFS_H
#define TS_PROTOCOL_DEFS_H

#define TSP_VERSION 2
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

#define TSP_HELLO 0x01
#define TSP_SET_INPUT 0x02
#define TSP_RUN 0x03
#define TSP_PING 0x04
#define TSP_RESET 0x05
#define TSP_INFO 0x81
#define TSP_TENSOR 0x82
#define TSP_OUTPUT 0x83
#define TSP_TIMING 0x84
#define TSP_ERROR 0x85
#define TSP_DONE 0x86

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

#define TSP_INFO_FIXED_SIZE 73 /* <HHIIIII32siIiIB */
#define TSP_OP_ENTRY_SIZE 4 /* <Hh */
#define TSP_SET_INPUT_FIXED_SIZE 8 /* <II */
#define TSP_RUN_FIXED_SIZE 4 /* <BBH */
#define TSP_ERROR_FIXED_SIZE 2 /* <H */

#endif /* TS_PROTOCOL_DEFS_H */
