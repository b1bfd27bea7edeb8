"""``tinyscope run``: the whole pipeline in one command (what ``make demo`` runs).

convert (skipped when the build is up to date) -> build the firmware -> flash (boot the
emulated board) -> capture -> compare -> report. The emulated board is always stopped at
the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack
from pathlib import Path

from tinyscope.analysis import references
from tinyscope.analysis.verify import verify_capture
from tinyscope.analysis.verify_boards import verify_on_boards
from tinyscope.cli.capture import add_cache_options, cache_line, digest_cache_root
from tinyscope.cli.compare import add_report_options, report_and_gate
from tinyscope.cli.convert import add_data_options
from tinyscope.cli.formatter import HelpFormatter
from tinyscope.cli.stages import Stages, show_progress
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert.flow import convert
from tinyscope.data import quantized_test_inputs
from tinyscope.device import boards, capture, flash_bank
from tinyscope.errors import TinyscopeError

DEFAULT_MODEL = "models/default.keras"
DEFAULT_BUILD = "build/default"
DEFAULT_RUN = "captures/demo"


def build_is_current(model_path: Path, build_dir: Path,
                     args: argparse.Namespace | None = None) -> bool:
    """True when BUILD_DIR was converted from exactly these model bytes (and, given ``args``,
    the same --data, --test-data, --input-range and --float-model)."""
    man_path = build_dir / manifest_mod.MANIFEST_NAME
    if not man_path.is_file() or not (build_dir / "model_data.cc").is_file():
        return False
    if not model_path.is_file():  # a SavedModel directory: no single hash, convert again
        return False
    try:
        manifest = json.loads(man_path.read_text())
    except ValueError:
        return False
    if args is not None:
        rec = manifest.get("dataset") or {}
        wanted = {"data": args.data, "test_data": args.test_data,
                  "input_range": args.input_range}
        if any(v is not None and str(v) != str(rec.get(k)) for k, v in wanted.items()):
            return False
        if args.float_model is not None and str(args.float_model) != manifest.get("float_model"):
            return False
    return manifest.get("source_sha256") == manifest_mod.sha256(model_path.read_bytes())


def _capture(args: argparse.Namespace, stages: Stages, build: Path, out: Path, elf: Path,
             board_name: str, progress: bool):
    """Start the desktop references, boot or flash the board, then capture; the emulator is
    stopped at the end. Returns the references (pending or done)."""
    manifest = manifest_mod.load(build)
    x, q, labels = quantized_test_inputs(manifest, args.n)  # the build's data, split and range
    # The desktop references need only the inputs: they run in worker processes during the
    # capture and land in OUT/references/, where compare finds them.
    src = manifest_mod.float_model_path(manifest)
    keras_path = src if src and Path(src).is_file() else None
    refs = references.start(manifest_mod.model_bytes(build, manifest), q,
                            x if keras_path else None, keras_path, cache_dir=out)

    source = manifest.get("data", "")

    resume = args.resume and (out / "run.json").is_file()

    def capture_from(url: str, bank: Path | None = None) -> None:
        if args.verify:
            how = " from the input bank" if bank else ""
            with stages.stage("capture", f"verify {len(q)} images{how} (every layer, by "
                              f"digest) on {url} -> {out}"):
                run = verify_capture(url, build, out, q, labels, progress=progress,
                                     data_source=source, bank=bank, resume=resume,
                                     digest_cache=digest_cache_root(args))
            print(cache_line(run))
            return
        verb = "resume the capture of" if resume else "capture"
        with stages.stage("capture", f"{verb} {len(q)} images (layers: {args.layers}) from "
                          f"{url} -> {out}"):
            try:
                capture.capture(url, build, out, q, labels, args.layers, progress=progress,
                                data_source=source, resume=resume)
            except capture.CaptureInterrupted as err:
                raise capture.CaptureInterrupted(
                    f"{err}; or run the same 'tinyscope run' again with --resume") from err

    if board_name in boards.EMULATORS:
        emulator = boards.EMULATORS[board_name]
        state = Path(args.state_dir)
        boards.stop(state)
        if args.verify and args.jobs > 1 and emulator.input_bank_addr:
            with stages.stage("capture", f"verify {len(q)} images on {args.jobs} emulated "
                              f"boards -> {out}"):
                run = verify_on_boards(elf, build, out, q, labels, args.jobs, state / "jobs",
                                       data_source=source, progress=progress, resume=resume,
                                       digest_cache=digest_cache_root(args))
            print(cache_line(run))
            return refs
        bank = None
        if args.verify and emulator.input_bank_addr is None:  # a real board's image: flash
            with stages.stage("build", f"firmware for {board_name} with an input bank in "
                              "flash"):
                elf, count, bank = flash_bank.build_with_flash_bank(
                    build, board_name, q, state / "fw-bank")
            print(f"input bank in flash: {count} of {len(q)} inputs (USE_INPUT); "
                  f"{len(q) - count} by SET_INPUT", flush=True)
            bank = bank if count else None
        elif args.verify and emulator.input_bank_addr is not None:
            bank = state / "input_bank.bin"  # loaded into the board's memory at boot
            state.mkdir(parents=True, exist_ok=True)
            count = boards.write_memory_bank(bank, q, emulator.machine)
            if count < len(q):
                print(f"input bank in the emulator's memory: {count} of {len(q)} inputs "
                      f"(USE_INPUT); {len(q) - count} by SET_INPUT, which is slower (--jobs "
                      f"{-(-len(q) // max(count, 1))} gives each board a bank of its share)",
                      flush=True)
            bank = bank if count else None
        with ExitStack() as stack:
            with stages.stage("boot", f"{elf.name} on QEMU {emulator.machine}"):
                board = stack.enter_context(
                    boards.emulated_board(elf, state, emulator.machine, input_bank=bank))
            capture_from(board.url, bank)
    else:
        with stages.stage("flash", board_name):
            boards.flash_real(board_name, elf)
        capture_from(boards.resolve_port(args.port))
    return refs


def run_pipeline(args: argparse.Namespace) -> int:
    model, build, out = Path(args.model), Path(args.build), Path(args.out)
    if not model.exists():
        raise TinyscopeError(
            f"model {model} not found; give an int8 .tflite, a .keras or .h5 file or a "
            "SavedModel directory with --model")
    boards.check_board(args.board)
    board_name = boards.canonical_board(args.board)
    stages = Stages()
    progress = show_progress(args.no_progress)
    if args.force or not build_is_current(model, build, args):
        with stages.stage("convert", f"{model} -> {build}"):
            convert(model, build, data=args.data, float_model=args.float_model,
                    test_data=args.test_data, input_range=args.input_range)
    else:
        print(f"==> convert: {build} is up to date with {model} (use --force to convert again)")
    with stages.stage("build", f"firmware for {board_name}"):
        elf = boards.build_firmware(build, boards.firmware_board(board_name), quiet=True)
    refs = _capture(args, stages, build, out, elf, board_name, progress)
    print("==> references and report: TFLM, LiteRT and the float model; figures, viewer",
          flush=True)
    refs.wait()
    return report_and_gate(args, out, out / "report", build, stages=stages)


def add_cli(sub) -> None:
    p = sub.add_parser(
        "run", help="the whole pipeline: convert, build, flash (QEMU), capture, compare, report",
        description="Convert MODEL (skipped when BUILD is up to date), build the firmware, boot "
        "it on the emulated Cortex-M4 (QEMU mps2-an386; or flash a real board with --board), "
        "capture N test images over its serial port, compare every streamed tensor with TFLM / "
        "LiteRT / the float model and write OUT/report/report.html. An emulator is stopped at "
        "the end.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="int8 .tflite (used byte for byte), .keras, legacy .h5 or a SavedModel "
                   "directory")
    p.add_argument("--build", default=DEFAULT_BUILD, help="build directory for convert")
    p.add_argument("--out", default=DEFAULT_RUN, help="run directory (capture + report)")
    add_data_options(p)
    p.add_argument("--n", type=int, default=100, help="number of test images")
    p.add_argument("--layers", default="all",
                   help="layers to stream: first, all, or operator indices like 0,2")
    p.add_argument("--board", default="qemu",
                   help="qemu (emulated Cortex-M4), netduinoplus2 (emulated STM32F405 running "
                   "the Nucleo image) or a real board such as nucleo-f446re")
    p.add_argument("--port", default="auto",
                   help="serial port of a real board (auto: the ST-LINK port)")
    p.add_argument("--force", action="store_true", help="convert even if the build is current")
    add_report_options(p)
    p.add_argument("--state-dir", default="build/qemu-run", help=argparse.SUPPRESS)
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted capture in --out (same build, data, layers, "
                   "--n or more) instead of starting over")
    p.add_argument("--verify", action="store_true",
                   help="verify every layer of every image by on-device digests against TFLM "
                   "and fetch only the mismatching tensors (instead of --layers)")
    p.add_argument("--jobs", type=int, default=1,
                   help="with --verify on the emulator: N emulated boards in parallel, the "
                   "images sharded between them and merged into one capture")
    add_cache_options(p)
    p.set_defaults(func=run_pipeline)
