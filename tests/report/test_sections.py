"""The report laid out as data: the three answers, the highlighted table, the console table
with full names, and the page rendered from a Jinja2 template with nothing unescaped."""

from __future__ import annotations

import copy

from tinyscope.report import console, sections
from tinyscope.report.page import Figure, Page, Section, Table, Text, render


def _lsb(n: int, diff: int = 0, max_lsb: int = 0) -> dict:
    return {"lsb": {"n": n, "n_different": diff, "max_lsb": max_lsb}}


def _metrics() -> dict:
    rows = []
    for i, name in enumerate(["a_rather_long_layer_name_conv", "b_pool", "c_logits"]):
        rows.append({
            "index": 10 + i, "op_index": i, "op": "CONV_2D", "keras_layer": name,
            "shape": [1, 4, 4, 8], "scale": 0.1, "zero_point": 0,
            "device_vs_tflm": _lsb(256), "xnnpack_vs_device": _lsb(256, 3 * i, 2 * i),
            "device_vs_float": {"rmse_over_scale": 0.3 + i, "snr_db": 40.0 - 10 * i,
                                "cosine": 0.99},
            "device_vs_float_local": {"rmse_over_scale": 0.3 + 0.1 * i},
        })
    return {
        "n_images": 2, "classes": ["x", "y"], "tensors": rows, "board": "qemu",
        "firmware_version": "0.1", "model_sha256": "ab" * 32, "run_dir": "captures/demo",
        "device_equals_tflm": True, "device_vs_tflm_mismatching_elements": 0,
        "device_vs_tflm_max_lsb": 0,
        "dataset": {"device_accuracy": 0.5, "float_accuracy": 1.0,
                    "device_vs_float_top1_agreement": 0.5, "n_disagree_with_float": 1,
                    "output_equals_tflm": True,
                    "per_class": [{"class": "x", "n": 1, "device_accuracy": 0.0,
                                   "float_accuracy": 1.0},
                                  {"class": "y", "n": 1, "device_accuracy": 1.0,
                                   "float_accuracy": 1.0}]},
        "drift": {"worst_accumulated": {**_pick(rows[2]), "snr_db": 20.0},
                  "worst_local": {**_pick(rows[2]), "rmse_over_scale": 0.5},
                  "finding": "accumulation",
                  "target": {**_pick(rows[2]), "rmse_over_scale": 2.3},
                  "suggestions": [{"what": "quantization-aware training", "why": "adds up"}]},
        "timing": {"per_op": [], "tick_note": "1 tick = 40 instructions"},
    }


def _pick(row: dict) -> dict:
    return {k: row[k] for k in ("index", "op_index", "op", "keras_layer")} | {
        "rmse_over_scale": row["device_vs_float"]["rmse_over_scale"]}


def test_answers_bit_exact_drift_and_accuracy() -> None:
    m = _metrics()
    page = sections.comparison_page(m, {}, None)
    q = {a.question: a for a in page.answers}
    assert q["Does the device compute what TFLM computes?"].verdict == "Yes: bit-exact"
    drift = q["Which layer drifts most from the float model?"]
    assert drift.status == "warn" and "c_logits" in drift.verdict and drift.layer == 12
    assert drift.actions == ["quantization-aware training (adds up)"]
    acc = q["How accurate is it?"]
    assert acc.status == "bad" and "device 50.0%" in acc.verdict
    assert any("weakest class on the device: x" in d for d in acc.details)
    bad = copy.deepcopy(m)
    bad["device_equals_tflm"] = False
    bad["device_vs_tflm_mismatching_elements"] = 3
    bad["tensors"][1]["device_vs_tflm"] = _lsb(256, 3, 1)
    a = sections.bit_exact_answer(bad)
    assert a.status == "bad" and a.layer == 11 and a.view == "device-tflm"


def test_layer_table_highlights_the_worst_layers_and_xnnpack_note_gives_max_lsb() -> None:
    m = _metrics()
    table = sections.layer_table(m)
    assert [r.css for r in table.rows] == ["", "", "worst"]
    assert table.rows[0].cells[1].text == "a_rather_long_layer_name_conv"
    note = sections.xnnpack_note(m).text
    assert "up to 4 LSB" in note and "c_logits (op 2, CONV_2D)" in note


def test_layer_table_of_a_verified_capture_says_images_and_mismatches_per_layer() -> None:
    m = _metrics()
    assert sections.VERIFIED_COLUMN not in sections.layer_table(m).columns  # a full dump
    for r, bad in zip(m["tensors"], (0, 1, 0), strict=True):
        r["verified"] = {"images": 1000, "mismatches": bad}
    m["tensors"].insert(0, {**m["tensors"][0], "index": 9, "op_index": None})
    del m["tensors"][0]["verified"]  # the model input: not digested
    table = sections.layer_table(m)
    col = table.columns.index(sections.VERIFIED_COLUMN)
    assert col == len(table.columns) - 1
    cells = [r.cells[col] for r in table.rows]
    assert [c.text for c in cells] == ["—", "1,000 images, 0 mismatches",
                                       "1,000 images, 1 mismatch", "1,000 images, 0 mismatches"]
    assert [c.css for c in cells[1:]] == ["ok", "bad", "ok"]
    assert all(len(r.cells) == len(table.columns) for r in table.rows)


def test_console_table_keeps_full_layer_names() -> None:
    lines = console.summary_lines(_metrics())
    assert any(line.split()[1] == "a_rather_long_layer_name_conv" for line in lines[1:4])
    widths = {len(line) for line in lines[:4]}
    assert len(widths) <= 2  # aligned columns (trailing space stripped)
    assert lines[4].startswith("bit-exact? yes")


def test_page_escapes_text_and_embeds_figures(tmp_path) -> None:
    png = tmp_path / "f.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    page = Page("t <b>", "s", sections=[
        Section("S", "cap <i>", [Text("x < y"), Table(["c"], []),
                                 sections_figures(png)]),
        Section("empty"),
    ])
    html = render(page)
    assert "t &lt;b&gt;" in html and "cap &lt;i&gt;" in html and "x &lt; y" in html
    assert 'src="data:image/png;base64,iVBORw0KGgpmYWtl"' in html
    assert "<h2 id=\"empty\">" not in html  # sections without items are left out
    assert "http://" not in html and "https://" not in html


def sections_figures(png):
    from tinyscope.report.page import Figures

    return Figures([Figure(png, "a caption")])
