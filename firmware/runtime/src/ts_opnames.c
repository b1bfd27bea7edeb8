/* TFLite BuiltinOperator names, index = code, for host tools (ts_opnames.h): the
 * firmware does not link this table (the runtime reports builtin codes; --gc-sections drops
 * it). The table is GENERATED from the TFLite schema
 * (tensorflow/lite/python/schema_py_generated.py, TF 2.21) - regenerate, do not edit.
 * One NUL-separated string (no pointer table); an empty name is a code without an
 * operator. */
#include "ts_opnames.h"

#include <string.h>

#define TS_NUM_OP_NAMES 210
static const char kNames[] =
    "ADD\0" /* 0 */
    "AVERAGE_POOL_2D\0" /* 1 */
    "CONCATENATION\0" /* 2 */
    "CONV_2D\0" /* 3 */
    "DEPTHWISE_CONV_2D\0" /* 4 */
    "DEPTH_TO_SPACE\0" /* 5 */
    "DEQUANTIZE\0" /* 6 */
    "EMBEDDING_LOOKUP\0" /* 7 */
    "FLOOR\0" /* 8 */
    "FULLY_CONNECTED\0" /* 9 */
    "HASHTABLE_LOOKUP\0" /* 10 */
    "L2_NORMALIZATION\0" /* 11 */
    "L2_POOL_2D\0" /* 12 */
    "LOCAL_RESPONSE_NORMALIZATION\0" /* 13 */
    "LOGISTIC\0" /* 14 */
    "LSH_PROJECTION\0" /* 15 */
    "LSTM\0" /* 16 */
    "MAX_POOL_2D\0" /* 17 */
    "MUL\0" /* 18 */
    "RELU\0" /* 19 */
    "RELU_N1_TO_1\0" /* 20 */
    "RELU6\0" /* 21 */
    "RESHAPE\0" /* 22 */
    "RESIZE_BILINEAR\0" /* 23 */
    "RNN\0" /* 24 */
    "SOFTMAX\0" /* 25 */
    "SPACE_TO_DEPTH\0" /* 26 */
    "SVDF\0" /* 27 */
    "TANH\0" /* 28 */
    "CONCAT_EMBEDDINGS\0" /* 29 */
    "SKIP_GRAM\0" /* 30 */
    "CALL\0" /* 31 */
    "CUSTOM\0" /* 32 */
    "EMBEDDING_LOOKUP_SPARSE\0" /* 33 */
    "PAD\0" /* 34 */
    "UNIDIRECTIONAL_SEQUENCE_RNN\0" /* 35 */
    "GATHER\0" /* 36 */
    "BATCH_TO_SPACE_ND\0" /* 37 */
    "SPACE_TO_BATCH_ND\0" /* 38 */
    "TRANSPOSE\0" /* 39 */
    "MEAN\0" /* 40 */
    "SUB\0" /* 41 */
    "DIV\0" /* 42 */
    "SQUEEZE\0" /* 43 */
    "UNIDIRECTIONAL_SEQUENCE_LSTM\0" /* 44 */
    "STRIDED_SLICE\0" /* 45 */
    "BIDIRECTIONAL_SEQUENCE_RNN\0" /* 46 */
    "EXP\0" /* 47 */
    "TOPK_V2\0" /* 48 */
    "SPLIT\0" /* 49 */
    "LOG_SOFTMAX\0" /* 50 */
    "DELEGATE\0" /* 51 */
    "BIDIRECTIONAL_SEQUENCE_LSTM\0" /* 52 */
    "CAST\0" /* 53 */
    "PRELU\0" /* 54 */
    "MAXIMUM\0" /* 55 */
    "ARG_MAX\0" /* 56 */
    "MINIMUM\0" /* 57 */
    "LESS\0" /* 58 */
    "NEG\0" /* 59 */
    "PADV2\0" /* 60 */
    "GREATER\0" /* 61 */
    "GREATER_EQUAL\0" /* 62 */
    "LESS_EQUAL\0" /* 63 */
    "SELECT\0" /* 64 */
    "SLICE\0" /* 65 */
    "SIN\0" /* 66 */
    "TRANSPOSE_CONV\0" /* 67 */
    "SPARSE_TO_DENSE\0" /* 68 */
    "TILE\0" /* 69 */
    "EXPAND_DIMS\0" /* 70 */
    "EQUAL\0" /* 71 */
    "NOT_EQUAL\0" /* 72 */
    "LOG\0" /* 73 */
    "SUM\0" /* 74 */
    "SQRT\0" /* 75 */
    "RSQRT\0" /* 76 */
    "SHAPE\0" /* 77 */
    "POW\0" /* 78 */
    "ARG_MIN\0" /* 79 */
    "FAKE_QUANT\0" /* 80 */
    "REDUCE_PROD\0" /* 81 */
    "REDUCE_MAX\0" /* 82 */
    "PACK\0" /* 83 */
    "LOGICAL_OR\0" /* 84 */
    "ONE_HOT\0" /* 85 */
    "LOGICAL_AND\0" /* 86 */
    "LOGICAL_NOT\0" /* 87 */
    "UNPACK\0" /* 88 */
    "REDUCE_MIN\0" /* 89 */
    "FLOOR_DIV\0" /* 90 */
    "REDUCE_ANY\0" /* 91 */
    "SQUARE\0" /* 92 */
    "ZEROS_LIKE\0" /* 93 */
    "FILL\0" /* 94 */
    "FLOOR_MOD\0" /* 95 */
    "RANGE\0" /* 96 */
    "RESIZE_NEAREST_NEIGHBOR\0" /* 97 */
    "LEAKY_RELU\0" /* 98 */
    "SQUARED_DIFFERENCE\0" /* 99 */
    "MIRROR_PAD\0" /* 100 */
    "ABS\0" /* 101 */
    "SPLIT_V\0" /* 102 */
    "UNIQUE\0" /* 103 */
    "CEIL\0" /* 104 */
    "REVERSE_V2\0" /* 105 */
    "ADD_N\0" /* 106 */
    "GATHER_ND\0" /* 107 */
    "COS\0" /* 108 */
    "WHERE\0" /* 109 */
    "RANK\0" /* 110 */
    "ELU\0" /* 111 */
    "REVERSE_SEQUENCE\0" /* 112 */
    "MATRIX_DIAG\0" /* 113 */
    "QUANTIZE\0" /* 114 */
    "MATRIX_SET_DIAG\0" /* 115 */
    "ROUND\0" /* 116 */
    "HARD_SWISH\0" /* 117 */
    "IF\0" /* 118 */
    "WHILE\0" /* 119 */
    "NON_MAX_SUPPRESSION_V4\0" /* 120 */
    "NON_MAX_SUPPRESSION_V5\0" /* 121 */
    "SCATTER_ND\0" /* 122 */
    "SELECT_V2\0" /* 123 */
    "DENSIFY\0" /* 124 */
    "SEGMENT_SUM\0" /* 125 */
    "BATCH_MATMUL\0" /* 126 */
    "PLACEHOLDER_FOR_GREATER_OP_CODES\0" /* 127 */
    "CUMSUM\0" /* 128 */
    "CALL_ONCE\0" /* 129 */
    "BROADCAST_TO\0" /* 130 */
    "RFFT2D\0" /* 131 */
    "CONV_3D\0" /* 132 */
    "IMAG\0" /* 133 */
    "REAL\0" /* 134 */
    "COMPLEX_ABS\0" /* 135 */
    "HASHTABLE\0" /* 136 */
    "HASHTABLE_FIND\0" /* 137 */
    "HASHTABLE_IMPORT\0" /* 138 */
    "HASHTABLE_SIZE\0" /* 139 */
    "REDUCE_ALL\0" /* 140 */
    "CONV_3D_TRANSPOSE\0" /* 141 */
    "VAR_HANDLE\0" /* 142 */
    "READ_VARIABLE\0" /* 143 */
    "ASSIGN_VARIABLE\0" /* 144 */
    "BROADCAST_ARGS\0" /* 145 */
    "RANDOM_STANDARD_NORMAL\0" /* 146 */
    "BUCKETIZE\0" /* 147 */
    "RANDOM_UNIFORM\0" /* 148 */
    "MULTINOMIAL\0" /* 149 */
    "GELU\0" /* 150 */
    "DYNAMIC_UPDATE_SLICE\0" /* 151 */
    "RELU_0_TO_1\0" /* 152 */
    "UNSORTED_SEGMENT_PROD\0" /* 153 */
    "UNSORTED_SEGMENT_MAX\0" /* 154 */
    "UNSORTED_SEGMENT_SUM\0" /* 155 */
    "ATAN2\0" /* 156 */
    "UNSORTED_SEGMENT_MIN\0" /* 157 */
    "SIGN\0" /* 158 */
    "BITCAST\0" /* 159 */
    "BITWISE_XOR\0" /* 160 */
    "RIGHT_SHIFT\0" /* 161 */
    "STABLEHLO_LOGISTIC\0" /* 162 */
    "STABLEHLO_ADD\0" /* 163 */
    "STABLEHLO_DIVIDE\0" /* 164 */
    "STABLEHLO_MULTIPLY\0" /* 165 */
    "STABLEHLO_MAXIMUM\0" /* 166 */
    "STABLEHLO_RESHAPE\0" /* 167 */
    "STABLEHLO_CLAMP\0" /* 168 */
    "STABLEHLO_CONCATENATE\0" /* 169 */
    "STABLEHLO_BROADCAST_IN_DIM\0" /* 170 */
    "STABLEHLO_CONVOLUTION\0" /* 171 */
    "STABLEHLO_SLICE\0" /* 172 */
    "STABLEHLO_CUSTOM_CALL\0" /* 173 */
    "STABLEHLO_REDUCE\0" /* 174 */
    "STABLEHLO_ABS\0" /* 175 */
    "STABLEHLO_AND\0" /* 176 */
    "STABLEHLO_COSINE\0" /* 177 */
    "STABLEHLO_EXPONENTIAL\0" /* 178 */
    "STABLEHLO_FLOOR\0" /* 179 */
    "STABLEHLO_LOG\0" /* 180 */
    "STABLEHLO_MINIMUM\0" /* 181 */
    "STABLEHLO_NEGATE\0" /* 182 */
    "STABLEHLO_OR\0" /* 183 */
    "STABLEHLO_POWER\0" /* 184 */
    "STABLEHLO_REMAINDER\0" /* 185 */
    "STABLEHLO_RSQRT\0" /* 186 */
    "STABLEHLO_SELECT\0" /* 187 */
    "STABLEHLO_SUBTRACT\0" /* 188 */
    "STABLEHLO_TANH\0" /* 189 */
    "STABLEHLO_SCATTER\0" /* 190 */
    "STABLEHLO_COMPARE\0" /* 191 */
    "STABLEHLO_CONVERT\0" /* 192 */
    "STABLEHLO_DYNAMIC_SLICE\0" /* 193 */
    "STABLEHLO_DYNAMIC_UPDATE_SLICE\0" /* 194 */
    "STABLEHLO_PAD\0" /* 195 */
    "STABLEHLO_IOTA\0" /* 196 */
    "STABLEHLO_DOT_GENERAL\0" /* 197 */
    "STABLEHLO_REDUCE_WINDOW\0" /* 198 */
    "STABLEHLO_SORT\0" /* 199 */
    "STABLEHLO_WHILE\0" /* 200 */
    "STABLEHLO_GATHER\0" /* 201 */
    "STABLEHLO_TRANSPOSE\0" /* 202 */
    "DILATE\0" /* 203 */
    "STABLEHLO_RNG_BIT_GENERATOR\0" /* 204 */
    "REDUCE_WINDOW\0" /* 205 */
    "STABLEHLO_COMPOSITE\0" /* 206 */
    "STABLEHLO_SHIFT_LEFT\0" /* 207 */
    "STABLEHLO_CBRT\0" /* 208 */
    "STABLEHLO_CASE\0" /* 209 */;

const char *ts_op_name(int32_t builtin_op) {
  if (builtin_op < 0 || builtin_op >= TS_NUM_OP_NAMES) return "UNKNOWN";
  const char *s = kNames;
  for (int32_t i = 0; i < builtin_op; i++)
    while (*s++) {
    }
  return *s ? s : "UNKNOWN";
}

void ts_name_op_codes(const char *msg, char *out, size_t size) {
  static const char key[] = "op code ";
  size_t n = 0;
  if (!size) return;
  while (*msg && n + 1 < size) {
    size_t k = 0;
    while (k < sizeof key - 1 && msg[k] == key[k]) k++;
    if (k == sizeof key - 1) {
      const char *d = msg + sizeof key - 1;
      int32_t code = 0;
      int digits = 0;
      while (*d >= '0' && *d <= '9' && digits < 4) code = code * 10 + (*d++ - '0'), digits++;
      const char *name = ts_op_name(code);
      if (digits && (*d < '0' || *d > '9') && strcmp(name, "UNKNOWN") != 0) {
        for (const char *s = "op "; *s && n + 1 < size; s++) out[n++] = *s;
        for (const char *s = name; *s && n + 1 < size; s++) out[n++] = *s;
        msg = d;
        continue;
      }
    }
    out[n++] = *msg++;
  }
  out[n] = 0;
}
