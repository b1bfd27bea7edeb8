"""``tinyscope capture``: run test images on the device, save what it streams."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from tinyscope.analysis import digest_cache
from tinyscope.analysis.verify import verify_capture
from tinyscope.analysis.verify_boards import verify_on_boards
from tinyscope.convert import manifest as manifest_mod
from tinyscope.data import quantized_test_inputs
from tinyscope.device.boards import DEFAULT_STATE_DIR, resolve_port
from tinyscope.device.capture import MAX_IMAGE_RETRIES, capture
from tinyscope.device.link import BAUDRATE, REQUEST_TIMEOUT, RUN_TIMEOUT
from tinyscope.errors import TinyscopeError


def _cmd_capture(args: argparse.Namespace) -> int:
    prev: dict = {}
    if args.resume:
        run_path = Path(args.resume) / "run.json"
        try:
            prev = json.loads(run_path.read_text())
        except (OSError, ValueError) as err:
            raise TinyscopeError(f"--resume {args.resume}: cannot read {run_path} ({err}); give "
                                 "the RUN_DIR of an earlier 'tinyscope capture'") from err
        if prev.get("complete"):
            print(f"{args.resume} is complete ({prev.get('images')} images): nothing to do")
            return 0
    build = args.build or prev.get("build")
    out = args.resume or args.out
    if not build or not out:
        raise TinyscopeError("give --build BUILD_DIR and --out RUN_DIR (or --resume RUN_DIR)")
    if not args.resume:
        refuse_or_clear(Path(out), args.force)
    layers = args.layers or prev.get("layers") or "first"
    n = args.n or prev.get("images_requested") or 100
    data = args.data or prev.get("data") or None
    manifest = manifest_mod.load(build)
    _, q, labels = quantized_test_inputs(manifest, n, data)
    verify = args.verify or layers == "verify"
    jobs = int(prev.get("jobs") or args.jobs) if args.resume else args.jobs
    if verify and jobs > 1:
        run = _verify_on_emulated_boards(args, build, out, q, labels, jobs,
                                         data or manifest.get("data", ""))
        _print_verified(run, f"{run['jobs']} emulated boards", out)
        return 0
    url = resolve_port(args.port, args.state_dir)
    if verify:
        run = verify_capture(url, build, out, q, labels, progress=not args.no_progress,
                             data_source=data or manifest.get("data", ""),
                             timeout=args.timeout, retries=args.retries, baudrate=args.baud,
                             resume=bool(args.resume), digest_cache=digest_cache_root(args))
        _print_verified(run, url, out)
        return 0
    run = capture(url, build, out, q, labels, layers, progress=not args.no_progress,
                  data_source=data or manifest.get("data", ""), timeout=args.timeout,
                  retries=args.retries, resume=bool(args.resume), baudrate=args.baud)
    timing = run.get("timing", {})
    print(f"captured {run['images']} images from {run['board']} ({url}) in {run['seconds']} s "
          f"-> {out}/capture.npz, run.json")
    if run.get("retries") or run.get("bad_frames"):
        print(f"link: {run['retries']} images retried, {run['reconnects']} reconnects, "
              f"{run['bad_frames']} bad frames received, {run['device_bad_frames']} reported "
              "by the device")
    if timing:
        print(f"median ticks per inference: {timing['total_ticks_median']} "
              f"at {timing['tick_hz']} Hz")
    return 0


def _verify_on_emulated_boards(args: argparse.Namespace, build: str, out: str, q, labels,
                               jobs: int, data_source: str) -> dict:
    """--verify --jobs N: build the firmware of BUILD for the emulator and verify on N QEMU
    boards at once (each with its shard of the images in its input bank)."""
    from tinyscope.device import boards

    if args.port != "auto":
        raise TinyscopeError(f"--jobs {jobs} boots {jobs} emulated boards itself: leave out "
                             f"--port {args.port} (or verify on that board with --jobs 1)")
    elf = boards.build_firmware(build, "qemu", quiet=True)
    return verify_on_boards(elf, build, out, q, labels, jobs, Path(args.state_dir) / "jobs",
                            data_source=data_source, progress=not args.no_progress,
                            resume=bool(args.resume), digest_cache=digest_cache_root(args))


def refuse_or_clear(out: Path, force: bool) -> None:
    """A new capture into ``out``: refuse if it holds a run, unless ``force`` (then the old
    capture and its report are removed, so nothing stale is left beside the new one)."""
    old = [p for p in (out / "run.json", out / "capture.npz") if p.exists()]
    if not old:
        return
    if not force:
        try:
            n = json.loads((out / "run.json").read_text()).get("images", "?")
        except (OSError, ValueError):
            n = "?"
        raise TinyscopeError(f"--out {out} already holds a capture ({n} images): continue it "
                             f"with --resume {out}, replace it with --force, or pick another "
                             "--out")
    for p in old:
        p.unlink()
    shutil.rmtree(out / "report", ignore_errors=True)


def _print_verified(run: dict, url: str, out: str) -> None:
    v = run["verify"]
    bad = [r for r in v["per_op"] if r["mismatches"]]
    print(f"verified {run['images']} images x {len(v['per_op'])} operators on {run['board']} "
          f"({url}) in {run['seconds']} s: {v['mismatched_images']} images with mismatches, "
          f"{run['wire_bytes_received']} bytes received -> {out}/capture.npz, run.json")
    print(cache_line(run))
    for r in bad:
        print(f"  op {r['op_index']} (tensor {r['tensor_index']}): {r['mismatches']} of "
              f"{r['images']} images differ from TFLM (tensors stored)")


def add_cache_options(p: argparse.ArgumentParser) -> None:
    """--cache-dir / --no-cache: where a verified capture keeps TFLM's digests."""
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="with --verify: keep TFLM's per-image, per-operator digests in DIR, "
                   "keyed by the model's and each input's bytes, the TFLM version and the "
                   "digest algorithm, so that verifying the same inputs again (after a firmware "
                   "change) does not run TFLM again (default: $TINYSCOPE_CACHE_DIR, else "
                   "$XDG_CACHE_HOME/tinyscope, else ~/.cache/tinyscope)")
    p.add_argument("--no-cache", action="store_true",
                   help="with --verify: compute TFLM's digests for every image; neither read "
                   "nor write the digest cache")


def digest_cache_root(args: argparse.Namespace) -> Path | None:
    if args.no_cache:
        return None
    return Path(args.cache_dir) if args.cache_dir else digest_cache.default_root()


def cache_line(run: dict) -> str:
    """How many images' TFLM digests came from the cache (a verified capture)."""
    v = run["verify"]
    if not v.get("digest_cache"):
        return f"TFLM digests: computed for all {run['images']} images (no cache)"
    return (f"TFLM digests: {v.get('digests_from_cache', 0)} of {run['images']} images from "
            f"the cache, the others computed and added ({v['digest_cache']})")


def add_cli(sub) -> None:
    c = sub.add_parser(
        "capture", help="run test images on the device and save the streamed int8 tensors",
        description="Handshake with the device (its model sha256 must match BUILD/manifest.json), "
        "send each test image, run it, and save RUN_DIR/capture.npz (input_<i>, "
        "t<tensor>_<i>, output_<i>, labels) and RUN_DIR/run.json; see docs/capture-format.md. "
        "Link errors (timeouts, corrupted frames, a reset or reconnected device) retry the "
        "image; complete images are always kept, and --resume RUN_DIR continues a run.",
    )
    c.add_argument("--port", default="auto",
                   help="serial port: /dev/ttyACM0, /dev/pts/N, socket://127.0.0.1:PORT or "
                   "auto (the running emulator, else the only USB serial port)")
    c.add_argument("--build", default=None, help="the model's build dir (tinyscope convert)")
    c.add_argument("--data", default=None, help="mnist or an image folder (default: the "
                   "build's dataset)")
    c.add_argument("--n", type=int, default=None, help="number of test images (default 100)")
    c.add_argument("--layers", default=None,
                   help="first (the first layer, default), all, or operator indices like 0,2,5")
    c.add_argument("--out", default=None, help="run directory to write")
    c.add_argument("--force", action="store_true",
                   help="replace the capture (and report) already in --out")
    c.add_argument("--verify", action="store_true",
                   help="verify every layer of every image by on-device digests against the "
                   "TFLM reference; fetch and store only the tensors that differ")
    c.add_argument("--jobs", type=int, default=1,
                   help="with --verify: boot N emulated boards (QEMU) for BUILD and verify "
                   "the images sharded between them, merged into one capture")
    add_cache_options(c)
    c.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the interrupted capture in RUN_DIR (same build, data, layers; "
                   "a verified capture goes on verifying, on as many boards as before)")
    c.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT,
                   help=f"seconds to wait for the device before a request fails (default "
                   f"{REQUEST_TIMEOUT:g}; RUN waits at least {RUN_TIMEOUT:g} unless given)")
    c.add_argument("--retries", type=int, default=MAX_IMAGE_RETRIES,
                   help=f"retries per image after a link error (default {MAX_IMAGE_RETRIES})")
    c.add_argument("--baud", type=int, default=BAUDRATE,
                   help=f"UART baud rate of a real board: must match the firmware's BAUD= "
                   f"(default {BAUDRATE}; ignored by the emulator and USB CDC ports)")
    c.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help=argparse.SUPPRESS)
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_capture)
