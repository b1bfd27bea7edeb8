"""The summary ``tinyscope compare`` and ``run`` print: one row per layer with its full name,
then the three answers in one line each."""

from __future__ import annotations

from collections.abc import Sequence

from tinyscope.report.sections import counts, layer_label, max_difference

COLUMNS = ["op", "Keras layer", "operator", "shape", "device≠TFLM", "XNNPACK max LSB",
           "drift LSB", "local LSB", "SNR dB"]


def _num(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def rows(metrics: dict) -> list[list[str]]:
    out = []
    for r in metrics["tensors"]:
        dt = counts(r.get("device_vs_tflm"))
        xn = counts(r.get("xnnpack_vs_device"))
        fl, lo = r.get("device_vs_float", {}), r.get("device_vs_float_local", {})
        out.append([
            "in" if r["op_index"] is None else str(r["op_index"]), str(r["keras_layer"]),
            r["op"], "x".join(map(str, r["shape"])),
            f"{dt['n_different']}/{dt['n']}" if dt else "missing",
            max_difference(xn) if xn else "missing", _num(fl.get("rmse_over_scale")),
            _num(lo.get("rmse_over_scale")), _num(fl.get("snr_db"), 1),
        ])
    return out


def table(columns: Sequence[str], body: list[list[str]]) -> list[str]:
    """Columns as wide as their widest cell: names are never cut."""
    widths = [max(len(c), *(len(row[i]) for row in body)) if body else len(c)
              for i, c in enumerate(columns)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*columns).rstrip()] + [fmt.format(*row).rstrip() for row in body]


def verify_lines(metrics: dict) -> list[str]:
    """A verified capture (on-device digests): what was proven, and the first mismatches
    named to the element."""
    v = metrics.get("verify")
    if not v:
        return []
    lines = [f"verified by on-device digests: every layer ({v['operators']} operators) of "
             f"{v['images']} images; {v['mismatched_images']} images with mismatches"]
    for e in v["elements"][:5]:
        lines.append(f"  op {e['op_index']} {e['op']}, image {e['image']}, element "
                     f"{e['element']} (position {tuple(e['position'])}, channel "
                     f"{e['channel']}): device {e['device']}, TFLM {e['tflm']}")
    return lines


def summary_lines(metrics: dict) -> list[str]:
    lines = table(COLUMNS, rows(metrics))
    n = metrics["n_images"]
    for ref in metrics.get("references", {}).values():
        if not ref["available"]:
            lines.append(f"missing reference: {ref['missing']}")
    if metrics["device_equals_tflm"] is None:
        lines.append("bit-exact? not compared: the TFLM reference did not run")
    elif metrics["device_equals_tflm"]:
        lines.append(f"bit-exact? yes: device == TFLM on every streamed tensor of {n} images")
    else:
        lines.append(f"bit-exact? no: {metrics['device_vs_tflm_mismatching_elements']} values "
                     f"differ from TFLM (max {metrics['device_vs_tflm_max_lsb']} LSB)")
    lines += verify_lines(metrics)
    d = metrics.get("drift") or {}
    if d.get("worst_accumulated"):
        acc = d["worst_accumulated"]
        text = f"most drift: {layer_label(acc)} {acc['rmse_over_scale']:.2f} LSB accumulated"
        if d.get("worst_local"):
            loc = d["worst_local"]
            text += f"; {layer_label(loc)} adds the most itself ({loc['rmse_over_scale']:.2f} LSB)"
        lines.append(text)
    ds = metrics["dataset"]
    if "device_accuracy" in ds:
        text = f"accuracy: device {ds['device_accuracy']:.2%}"
        if ds.get("float_accuracy") is not None:
            text += f", float {ds['float_accuracy']:.2%}"
        if ds.get("device_vs_float_top1_agreement") is not None:
            text += f", top-1 agreement {ds['device_vs_float_top1_agreement']:.2%}"
        lines.append(text)
    return lines


def print_summary(metrics: dict) -> None:
    print("\n".join(summary_lines(metrics)))
