"""The output of ``tinyscope drift``: ``metrics.json`` and PNG figures for a build."""

from __future__ import annotations

from pathlib import Path

from tinyscope.analysis import drift
from tinyscope.report import figures as figures_mod


def run_drift(build_dir: str | Path, out: str | Path, n: int = drift.DEFAULT_N,
              data: str | None = None, model_path: str | Path | None = None) -> dict:
    """Drift metrics for a build, their figures and ``out/metrics.json``; returns the metrics."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics, figure_data = drift.run(build_dir, n=n, data=data, model_path=model_path)
    figures = figures_mod.drift_figures(metrics, figure_data, out)
    metrics["figures"] = [p.name for p in figures]
    drift.write_metrics(out / "metrics.json", metrics)
    return metrics
