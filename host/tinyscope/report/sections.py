"""The comparison report laid out as data: the three answers at the top, then sections.

Every number comes from the metrics object (:func:`tinyscope.analysis.compare.compare`);
this module only chooses words, formats numbers and says which figure goes where.
"""

from __future__ import annotations

import math

from tinyscope.report.page import (
    Answer,
    Cell,
    Figure,
    Figures,
    Note,
    Page,
    Row,
    Section,
    Table,
    Viewer,
)

IDEAL_RMSE_OVER_SCALE = 1 / math.sqrt(12)


def counts(cmp: dict | None) -> dict | None:
    """``n`` and ``n_different`` of a comparison: its ``lsb`` (int8 tensors) or ``exact``
    (float32 tensors, compared bit for bit); None when the reference did not run."""
    return None if not cmp else (cmp.get("lsb") or cmp.get("exact"))


def max_difference(c: dict) -> str:
    """The largest difference: in LSB (int8), or ``=`` / ``|Δ| x`` for float32 values."""
    if "max_lsb" in c:
        return str(c["max_lsb"])
    return "= (float32)" if not c["n_different"] else f"|Δ| {c['max_abs_diff']:.3g} (float32)"


def layer_label(t: dict) -> str:
    """``conv_pw_12 (op 24, CONV_2D)``: the Keras layer first, as the user named it."""
    where = "input" if t.get("op_index") is None else f"op {t['op_index']}, {t['op']}"
    return f"{t.get('keras_layer') or t['op']} ({where})"


def _num(v: object, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isinf(v):
            return "∞"
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


# --------------------------------------------------------------------------- the answers


def missing_references(metrics: dict) -> dict[str, dict]:
    """The desktop references that could not run (``metrics["references"]`` says why)."""
    return {k: r for k, r in metrics.get("references", {}).items() if not r["available"]}


def bit_exact_answer(metrics: dict) -> Answer:
    rows = metrics["tensors"]
    if metrics.get("device_equals_tflm") is None:
        why = missing_references(metrics).get("tflm", {}).get("missing", "it did not run")
        return Answer("Does the device compute what TFLM computes?",
                      "TFLM missing: not compared", "warn", [why],
                      ["see 'Missing references' below: the capture is kept, compare it again "
                       "once the reference can run"])
    n_values = sum(counts(r["device_vs_tflm"])["n"] for r in rows)
    n_diff = metrics["device_vs_tflm_mismatching_elements"]
    first_bad = next((r for r in rows if counts(r["device_vs_tflm"])["n_different"]), None)
    details = [f"{len(rows)} streamed tensors × {metrics['n_images']} images: "
               f"{n_diff:,} of {n_values:,} values differ from the TFLM reference interpreter"]
    out = metrics["dataset"].get("output_equals_tflm")
    if out is not None:
        details.append("the model output equals TFLM's" if out else
                       "the model output differs from TFLM's")
    if first_bad is None:
        return Answer("Does the device compute what TFLM computes?", "Yes: bit-exact", "ok",
                      details)
    details.append(f"first differing layer: {layer_label(first_bad)}, " + (
        f"up to {first_bad['device_vs_tflm']['lsb']['max_lsb']} LSB"
        if "lsb" in first_bad["device_vs_tflm"] else "float32 values not bit-identical"))
    return Answer("Does the device compute what TFLM computes?",
                  f"No: {n_diff:,} values differ", "bad", details,
                  ["check the firmware's kernels for this operator against the reference",
                   "capture again to rule out a damaged link (run.json counts bad frames)"],
                  layer=first_bad["index"], view="device-tflm")


def drift_answer(metrics: dict) -> Answer | None:
    d = metrics.get("drift") or {}
    acc, loc, target = d.get("worst_accumulated"), d.get("worst_local"), d.get("target")
    if not acc or not target:
        return None
    details = [f"accumulated (device vs the float model on the original image): worst "
               f"{layer_label(acc)}, RMSE {acc['rmse_over_scale']:.2f} LSB"
               + (f", SNR {acc['snr_db']:.1f} dB" if acc.get("snr_db") is not None else "")]
    if loc:
        details.append(f"layer-local (this layer alone, in float, on the device's int8 input): "
                       f"worst {layer_label(loc)}, RMSE {loc['rmse_over_scale']:.2f} LSB "
                       f"(rounding alone: {IDEAL_RMSE_OVER_SCALE:.2f})")
    name = target.get("keras_layer") or target["op"]
    tips = [s["what"] + f" ({s['why']})" for s in d.get("suggestions", [])]
    question = "Which layer drifts most from the float model?"
    if d.get("finding") == "layer":
        verdict = f"{name}: adds {target['rmse_over_scale']:.2f} LSB itself"
        return Answer(question, verdict, "warn", details, tips, target["index"], "float-device")
    if d.get("finding") == "accumulation":
        verdict = (f"No single layer; it adds up to {target['rmse_over_scale']:.1f} LSB "
                   f"at {name}")
        return Answer(question, verdict, "warn", details, tips, target["index"], "float-device")
    verdict = f"None stands out (at most {target['rmse_over_scale']:.2f} LSB, at {name})"
    return Answer(question, verdict, "ok", details, [], target["index"], "float-device")


def accuracy_answer(metrics: dict) -> Answer | None:
    d = metrics["dataset"]
    if "device_accuracy" not in d:
        return None
    n = metrics["n_images"]
    agree = d.get("device_vs_float_top1_agreement")
    verdict = f"device {_pct(d['device_accuracy'])}"
    if d.get("float_accuracy") is not None:
        verdict += f" · float {_pct(d['float_accuracy'])}"
    details = [f"{n} labelled test images"]
    if agree is not None:
        details.append(f"top-1 agreement device vs float: {_pct(agree)} "
                       f"({d.get('n_disagree_with_float', 0)} images differ)")
    per_class = d.get("per_class") or []
    if per_class:
        worst = min(per_class, key=lambda c: (c["device_accuracy"] if c["n"] else 2.0))
        if worst["n"] and worst["device_accuracy"] < 1.0:
            details.append(f"weakest class on the device: {worst['class']} "
                           f"({_pct(worst['device_accuracy'])} of {worst['n']})")
    status = "ok" if agree is None or agree >= 0.99 else "warn" if agree >= 0.9 else "bad"
    actions = []
    if status != "ok":
        actions = ["look at the images the device and float disagree on (metrics.json: "
                   "disagreeing_images)", "see which layer drifts most"]
    return Answer("How accurate is it?", verdict, status, details, actions)


# --------------------------------------------------------------------------- tables


LAYER_COLUMNS = ["op", "Keras layer", "operator", "shape", "device ≠ TFLM",
                 "XNNPACK − device, max |LSB|", "drift vs float: accumulated (LSB RMSE)",
                 "drift: layer-local (LSB RMSE)", "SNR dB", "cosine"]


VERIFIED_COLUMN = "verified by digest"


def _verified_cell(v: dict | None) -> Cell:
    """A verified capture's "verified on N images, M mismatches" for one layer."""
    if v is None:
        return Cell("—", title="not an operator output: not digested")
    n, m = int(v["images"]), int(v["mismatches"])
    return Cell(f"{n:,} images, {m:,} mismatch{'es' if m != 1 else ''}", "bad" if m else "ok",
                title=f"verified on {n:,} images by on-device digest; {m:,} differ from TFLM "
                "(those tensors were fetched in full)")


def layer_table(metrics: dict) -> Table:
    d = metrics.get("drift") or {}
    verified = any("verified" in r for r in metrics["tensors"])
    worst = {(d.get("worst_accumulated") or {}).get("index"),
             (d.get("worst_local") or {}).get("index")}
    rows = []
    for r in metrics["tensors"]:
        dt = counts(r.get("device_vs_tflm"))
        xn = counts(r.get("xnnpack_vs_device"))
        fl, lo = r.get("device_vs_float", {}), r.get("device_vs_float_local", {})
        rows.append(Row([
            Cell("in" if r["op_index"] is None else str(r["op_index"])),
            Cell(str(r["keras_layer"]), "l"), Cell(r["op"], "l"),
            Cell("×".join(map(str, r["shape"]))),
            Cell(f"{dt['n_different']:,} / {dt['n']:,}", "ok" if not dt["n_different"] else "bad")
            if dt else Cell("TFLM missing", "warn"),
            Cell(max_difference(xn), title=f"{xn['n_different']:,} values differ")
            if xn else Cell("missing", "warn"),
            Cell(_num(fl.get("rmse_over_scale"))), Cell(_num(lo.get("rmse_over_scale"))),
            Cell(_num(fl.get("snr_db"))), Cell(_num(fl.get("cosine"), 4)),
        ] + ([_verified_cell(r.get("verified"))] if verified else []),
            "worst" if r["index"] in worst else ""))
    columns = LAYER_COLUMNS + ([VERIFIED_COLUMN] if verified else [])
    return Table(columns, rows, "Highlighted: the layer with the largest accumulated "
                 "drift and the one that adds the most drift itself. LSB = one quantization step "
                 f"of that tensor; rounding alone gives {IDEAL_RMSE_OVER_SCALE:.2f} LSB RMSE.")


def xnnpack_note(metrics: dict) -> Note:
    rows = [r for r in metrics["tensors"] if "lsb" in r.get("xnnpack_vs_device", {})]  # int8
    if not rows:
        return Note("LiteRT's default desktop kernels (XNNPACK) did not run: see 'Missing "
                    "references'.")
    worst = max(rows, key=lambda r: r["xnnpack_vs_device"]["lsb"]["max_lsb"])
    m = worst["xnnpack_vs_device"]["lsb"]["max_lsb"]
    if m == 0:
        return Note("LiteRT's default desktop kernels (XNNPACK) give the same values as the "
                    "device on every streamed tensor of these images.")
    first = rows[0]["xnnpack_vs_device"]["lsb"]["max_lsb"]
    return Note(
        f"LiteRT's default desktop kernels (XNNPACK), what a desktop run usually uses, differ "
        f"from the device by up to {m} LSB (in {layer_label(worst)}; {first} LSB in the first "
        "layer). They round once where TFLM and the device round twice, and the differences "
        "add up from layer to layer. This is expected, not a device bug; the column "
        "'XNNPACK − device' gives the maximum per layer.")


def per_class_table(metrics: dict) -> Table | None:
    per_class = metrics["dataset"].get("per_class")
    if not per_class:
        return None
    rows = [Row([Cell(c["class"], "l"), Cell(str(c["n"])), Cell(_pct(c.get("float_accuracy"))),
                 Cell(_pct(c["device_accuracy"]))]) for c in per_class]
    return Table(["class", "images", "float accuracy", "device accuracy"], rows)


def timing_table(metrics: dict) -> Table:
    rows = [Row([Cell(str(r["op_index"])), Cell(str(r["keras_layer"]), "l"), Cell(r["op"], "l"),
                 Cell(_num(r["macs"])), Cell(_num(r["ticks"])), Cell(_num(r["instructions"])),
                 Cell(_num(r["instructions_per_mac"]))])
            for r in metrics["timing"]["per_op"]]
    return Table(["op", "Keras layer", "operator", "MACs", "ticks (median)", "instructions",
                  "instructions / MAC"], rows)


# --------------------------------------------------------------------------- the page


def saliency_intro(metrics: dict) -> str:
    """What the saliency figures explain, and what was left out and how to get it."""
    sal = metrics.get("saliency") or {}
    if not sal:
        return ""
    text = f"Which input values {sal.get('explained', 'the score')} depends on."
    left = sal.get("left_out") or {}
    if left:
        why = set(left.values())
        text += (" Left out: " + ", ".join(left) + (f" ({why.pop()})." if len(why) == 1
                                                     else "."))
    agree = sal.get("occlusion_int8_vs_float") or {}
    if agree.get("mean_spearman") is not None:
        text += (f" Occlusion on the int8 model against the float model: mean Spearman "
                 f"{agree['mean_spearman']:.2f}, top-{agree['top_k_fraction']:.0%} IoU "
                 f"{agree['mean_iou_top_k']:.2f}.")
    if sal.get("flat_note"):
        text += f" Note: {sal['flat_note']}; the int8-vs-float agreement is not computed " \
                "for such images."
    return text


def comparison_page(metrics: dict, figures: dict[str, list[Figure]], viewer: dict | None) -> Page:
    """``figures``: ``"first_layer"``, ``"panels"``, ``"saliency"``, ``"accuracy"``,
    ``"distributions"`` -> figures with captions (any may be missing)."""
    answers = [a for a in (bit_exact_answer(metrics), drift_answer(metrics),
                           accuracy_answer(metrics)) if a is not None]
    t = metrics["timing"]
    cards = {"images": str(metrics["n_images"]),
             "streamed tensors": str(len(metrics["tensors"]))}
    if t.get("total_ticks_median"):
        cards["ticks / inference"] = f"{t['total_ticks_median']:,}"
        if t.get("instructions_per_tick"):
            instr = t["total_ticks_median"] * t["instructions_per_tick"]
            cards["instructions / inference"] = f"{instr / 1e6:.2f} M"
    sal = metrics.get("saliency", {}).get("occlusion_int8_vs_float")
    if sal:
        cards["saliency int8 vs float"] = (f"ρ {sal['mean_spearman']:.2f}"
                                           if sal.get("mean_spearman") is not None
                                           else "flat map: not compared")
    fig = figures.get
    missing = missing_references(metrics)
    if missing:
        cards["missing references"] = ", ".join(r["label"] for r in missing.values())
    if metrics.get("device_equals_tflm") is None:
        cards["device vs TFLM"] = "TFLM missing"
    sections = [
        Section("Missing references",
                "These desktop references could not run; their columns and views are left "
                "out. The capture is untouched.",
                [Table(["reference", "why"], [Row([Cell(r["label"], "l"), Cell(r["missing"], "l")])
                                              for r in missing.values()])] if missing else []),
        Section("Every layer, every panel image",
                "Pick an image and a layer: each channel of the layer's output as the device "
                "computed it, next to the desktop TFLM interpreter, the float model and their "
                "differences. Hover a map for the int8 and real values.",
                [Viewer(viewer)] if viewer else []),
        Section("Per layer", "", [xnnpack_note(metrics), layer_table(metrics)]),
        Section("Accuracy", "",
                [x for x in ([Figures(fig("accuracy"))] if fig("accuracy") else [])
                 + [per_class_table(metrics)] if x is not None]),
        Section("First layer", "", [Figures(fig("panels"))] if fig("panels") else []),
        Section("Feature maps of the first layer", "",
                [Figures(fig("first_layer"))] if fig("first_layer") else []),
        Section("Saliency", saliency_intro(metrics),
                [Figures(fig("saliency"))] if fig("saliency") else []),
        Section("Timing per operator",
                f"tick unit: {t.get('tick_note') or t.get('tick_hz')}", [timing_table(metrics)]),
        Section("Distributions", "",
                [Figures(fig("distributions"))] if fig("distributions") else []),
    ]
    sub = (f"board {metrics['board']} · firmware {metrics['firmware_version']} · model "
           f"{metrics['model_sha256'][:12]} · {metrics['run_dir']}")
    return Page("tinyscope: device vs desktop", sub, answers, cards, sections)
