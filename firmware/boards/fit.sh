#!/bin/sh
# Does a linked image fit its board? Run by firmware/Makefile on the probe image (linked with
# roomy memory regions), before the image is linked with the board's real regions.
#   fit.sh ELF BOARD FLASH_BYTES RAM_BYTES ARENA_BYTES STACK_BYTES ARENA_SOURCE [SIZE NM]
# Prints the board's use line (flash, RAM split into arena / stack / other) and exits 0, or
# prints the needed vs available bytes of every region to stderr and exits 1.
# ARENA_SOURCE says where ARENA_BYTES came from ("model" = MODEL_DIR/model.mk, "board" =
# board.mk's default, "command line"); it picks the advice.
set -eu
elf=$1 board=$2 flash=$3 ram=$4 arena=$5 stack=$6 source=$7
size=${8:-arm-none-eabi-size} nm=${9:-arm-none-eabi-nm}

# Bytes of the model's C array (g_model_data) in flash; 0 if the symbol is absent.
model=$("$nm" -S "$elf" | awk '$4 == "g_model_data" { print $2 }')
model=$(printf '%d' "0x${model:-0}")
# Bytes of the model's per-channel requantization tables (g_model_tables, OUT/model_tables.c)
# in flash, beside the model; 0 without them.
tables=$("$nm" -S "$elf" | awk '$4 == "g_model_tables" { print $2 }')
tables=$(printf '%d' "0x${tables:-0}")
# Bytes of the input bank linked into flash (INPUT_BANK=): counted in flash like the model.
bank=$("$nm" -S "$elf" | awk '$4 == "input_bank_bin" { print $2 }')
bank=$(printf '%d' "0x${bank:-0}")

"$size" -A "$elf" | awk -v flash="$flash" -v ram="$ram" -v arena="$arena" -v stack="$stack" \
  -v board="$board" -v model="$model" -v bank="$bank" -v source="$source" -v tables="$tables" '
  $1 == ".text" || $1 == ".ARM.exidx" || $1 == ".data" { f += $2 }
  $1 == ".data" || $1 == ".bss" || $1 == ".stack" { r += $2 }
  END {
    other = r - arena - stack
    if (f <= flash && r <= ram) {
      printf "%s: flash %d of %d bytes (%.1f%%: model %d, tables %d%s), RAM %d of %d bytes " \
             "(%.1f%%: arena %d, stack %d, other %d), %d bytes RAM free\n", board, f, flash,
             100 * f / flash, model, tables, (bank ? sprintf(", input bank %d", bank) : ""), r,
             ram, 100 * r / ram, arena, stack, other, ram - r
      exit 0
    }
    e = "/dev/stderr"
    printf "error: the image does not fit the %s (needed vs available, per region):\n", board > e
    printf "  RAM    %d of %d bytes: %s (arena %d from %s, stack %d, firmware buffers %d)\n",
           r, ram, (r <= ram ? "fits" : "over by " (r - ram)), arena,
           (source == "model" ? "the model'"'"'s need" : (source == "board" ? "the board default" \
           : "ARENA_BYTES")), stack, other > e
    printf "  flash  %d of %d bytes: %s (model %d, tables %d, %sfirmware code and " \
           "constants %d)\n", f, flash, (f <= flash ? "fits" : "over by " (f - flash)), model,
           tables, (bank ? sprintf("input bank %d, ", bank) : ""), f - model - tables - bank > e
    if (r > ram && source == "model")
      printf "  the arena is what the model needs (its tensors as planned by the tinyscope " \
             "runtime): use a model with smaller activations (a smaller input or fewer " \
             "channels) or a board with more RAM\n" > e
    else if (r > ram)
      printf "  lower ARENA_BYTES (the model'"'"'s need is MODEL_ARENA_BYTES in MODEL_DIR/" \
             "model.mk, written by tinyscope convert) or use a smaller model\n" > e
    if (f > flash && bank)
      printf "  link fewer inputs into the bank (INPUT_BANK=), or none\n" > e
    else if (f > flash)
      printf "  use a model with fewer weights (the .tflite is %d bytes) or a board with " \
             "more flash\n", model > e
    exit 1
  }'
