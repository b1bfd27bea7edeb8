"""``tinyscope saliency``: saliency maps for test images of a build."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyscope.cli.formatter import HelpFormatter
from tinyscope.report.saliency import run_saliency


def summary_lines(result: dict, out: Path) -> list[str]:
    """What ``tinyscope saliency`` prints: what ran, the agreement (or why there is none),
    what was left out and how to get it, the stage times."""
    lines = [f"{result['n_images']} inputs: {', '.join(result['methods']) or 'no method'} "
             f"(explaining {result['explained']})"]
    d = result.get("occlusion_int8_vs_float")
    if d and d.get("mean_spearman") is not None:
        lines.append(f"occlusion saliency int8 vs float: mean Spearman "
                     f"{d['mean_spearman']:.3f}, mean IoU of top {d['top_k_fraction']:.0%} "
                     f"values {d['mean_iou_top_k']:.3f}")
    if result.get("flat_note"):
        lines.append(f"note: {result['flat_note']}"
                     + ("; int8 vs float agreement not computed" if d else ""))
    left = result.get("left_out") or {}
    if left:
        reasons: dict[str, list[str]] = {}
        for name, why in left.items():
            reasons.setdefault(why, []).append(name)
        for why, names in reasons.items():
            lines.append(f"left out: {', '.join(names)}: {why}")
    sec, cpu = result["seconds"], result["cpu_seconds"]
    lines.append(f"saliency stage: maps {sec['maps']:.1f} s ({cpu['maps']:.1f} s CPU) · "
                 f"figures {sec['figures']:.1f} s ({cpu['figures']:.1f} s CPU) · float model "
                 f"load {sec['load float model']:.1f} s")
    lines.append(f"wrote {len(result['figures'])} figures and saliency.json to {out}")
    return lines


def _cmd_saliency(args: argparse.Namespace) -> int:
    out = Path(args.out)
    result = run_saliency(args.build_dir, out, n=args.n, model_path=args.float_model,
                          data=args.data)
    print("\n".join(summary_lines(result, out)))
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser(
        "saliency",
        help="saliency maps (gradient, SmoothGrad, Grad-CAM, occlusion float/int8) + panels",
        description=(
            "For N held-out test inputs: vanilla gradient, SmoothGrad and Grad-CAM on the "
            "float model, occlusion on the float and on the int8 model (LiteRT's builtin "
            "kernels, bit-exact with TFLM, in a child process), all explaining the "
            "pre-softmax score of the predicted class (an autoencoder: its reconstruction "
            "error). Images, 2-D features (time x feature) and vectors. Without a float "
            "model (a build converted from a .tflite) only occlusion on the int8 model runs; "
            "--float-model F adds the rest. Writes per-input panels (input | saliency | "
            "first-layer int8 feature maps), a figure comparing the methods, and "
            "saliency.json (int8-vs-float occlusion drift: Spearman rank correlation and IoU "
            "of the top-10%% values)."
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("build_dir", help="a directory written by 'tinyscope convert'")
    p.add_argument("--out", required=True, help="directory for the figures and saliency.json")
    p.add_argument("--n", type=int, default=8, help="number of held-out test images")
    p.add_argument("--data", default=None, help="'mnist' or an image folder (default: convert's)")
    p.add_argument("--float-model", "--model", dest="float_model", default=None,
                   help="the float twin (.keras or .h5) for the gradient methods and float "
                   "occlusion (default: the one recorded in manifest.json, if any)")
    p.set_defaults(func=_cmd_saliency)
