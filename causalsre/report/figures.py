"""Figures of the SLO report, the what-if and the root-cause ranking (matplotlib ``Figure`` objects, no
pyplot; see palette.py). ``slo_timelines`` is the report's PNG of the same figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalsre.report.document import Figure
from causalsre.report.palette import INK, METHOD_COLOURS, TIER_COLOURS, family_colour, new_figure, save_figure


def slo_timelines_figure(timelines: list[tuple[Any, Any]], alert_windows: Any = None):
    """Two panels per SLO: burn rate over each alert tier's long window with its threshold, and the budget
    remaining. ``timelines`` pairs each SLO with its ``burn_rate_timeline`` frame."""
    from causalsre.slo.budget import alert_windows_for

    fig, axes = new_figure(10, 5.5 * len(timelines), nrows=2 * len(timelines), ncols=1, squeeze=False,
                           gridspec_kw={"height_ratios": [3, 2] * len(timelines)})
    for index, (slo, frame) in enumerate(timelines):
        burn_axis, budget_axis = axes[2 * index][0], axes[2 * index + 1][0]
        windows = alert_windows_for(slo, alert_windows)
        for colour, tier in zip(TIER_COLOURS, windows.tiers, strict=False):
            column = f"burn_rate_{tier.long_window}"
            threshold = tier.threshold(windows.period)
            label = f"{tier.severity}/{tier.speed}: {threshold:.3g}x over {tier.long_window}"
            if column in frame:
                burn_axis.plot(frame["ts"], frame[column], color=colour, linewidth=1.2, label=f"burn {tier.long_window}")
            burn_axis.axhline(threshold, color=colour, linestyle="--", linewidth=0.9, label=label)
        burn_axis.axhline(1.0, color="grey", linewidth=0.8, linestyle=":", label="1x (budget lasts the period)")
        burn_axis.set_yscale("symlog", linthresh=1.0)  # linear below 1x, logarithmic above
        burn_axis.set_ylim(bottom=0.0)
        burn_axis.set_ylabel("burn rate (x budget)")
        burn_axis.set_title(f"{slo.name}: objective {slo.objective:.4g}, {slo.window.duration} window")
        burn_axis.legend(fontsize=7, ncol=2, loc="upper left")
        budget_axis.plot(frame["ts"], frame["budget_remaining"], color=INK, linewidth=1.4)
        budget_axis.axhline(0.0, color=TIER_COLOURS[0], linewidth=0.8)
        budget_axis.set_ylabel("budget remaining")
        budget_axis.set_xlabel("time (UTC)")
        budget_axis.grid(alpha=0.3)
        burn_axis.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_timelines(timelines: list[tuple[Any, Any]], path: str | Path, alert_windows: Any = None) -> Path:
    """``slo report --plot``: write :func:`slo_timelines_figure` as an image."""
    return save_figure(slo_timelines_figure(timelines, alert_windows), path)


def slo_timelines(timelines: list[tuple[Any, Any]], alert_windows: Any = None) -> Figure:
    return Figure.from_matplotlib(slo_timelines_figure(timelines, alert_windows),
                                  "Burn rate over each alert window with its threshold (dashed), and the error budget "
                                  "remaining (below zero: the SLO is breached for the period).",
                                  "Burn-rate timeline and budget burn-down")


def whatif_figure(result: dict):
    """Observed burn, each method's prediction with its 90 % interval, and the replay's measurement."""
    rows = [("observed", result["observed"], None, None)]
    rows += [(name, p["burn_rate"], p.get("low"), p.get("high")) for name, p in result["predicted"].items()]
    if result.get("verified"):
        rows.append(("verified", result["verified"]["burn_rate"], None, None))
    fig, ax = new_figure(7, 0.5 * len(rows) + 1.4)
    for i, (name, value, low, high) in enumerate(rows):
        colour = METHOD_COLOURS.get(name, METHOD_COLOURS["gcm"])
        ax.plot([value], [i], "o", color=colour, markersize=8)
        if low is not None and high is not None:
            ax.hlines(i, low, high, color=colour, linewidth=2.5)
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle=":", label="1x (within budget)")
    ax.set_yticks(range(len(rows)), labels=[r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=1.0)
    change = ", ".join(f"{k}={v}" for k, v in result["intervention"].items())
    ax.set_xlabel("burn rate (x budget); lines: 90 % intervals")
    ax.set_title(f"What if {change} in {result['window']}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def root_cause_figure(result: dict):
    """Root-cause scores of ``causalsre attribute``'s JSON, best on top."""
    causes = result["root_causes"]
    fig, ax = new_figure(7, 0.4 * max(len(causes), 2) + 1.2)
    ax.barh(range(len(causes)), [c["score"] for c in causes], color=family_colour("hardware"))
    ax.set_yticks(range(len(causes)), labels=[c["node"] for c in causes])
    ax.invert_yaxis()
    ax.set_xlabel("score (anomalies explained + share of the deviation)")
    ax.set_title(f"Root-cause candidates for {result['target']}" + ("" if causes else ": nothing anomalous"))
    fig.tight_layout()
    return fig
