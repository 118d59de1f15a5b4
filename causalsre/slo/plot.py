"""The report figure: burn rate over each alert tier's long window with its threshold, and the burn-down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from causalsre.errors import UserError
from causalsre.slo.evaluate import alert_windows_for
from causalsre.slo.windows import AlertWindows

_TIER_COLOURS = ["tab:red", "tab:orange", "tab:purple", "tab:blue", "tab:green", "tab:brown"]


# Formats matplotlib's Agg canvas writes (checked before any work, so a typo costs no computation).
PLOT_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "webp", "eps", "ps", "tif", "tiff")


def check_image_path(path: str | Path, flag: str = "--plot") -> Path:
    """An image path, or a UserError when its folder is missing or its suffix is not an image format.

    Commands call it before any work, so a typo in ``flag``'s value costs no computation.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"folder {path.parent} for {flag} does not exist", "create it first or choose another path")
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise UserError(f"{flag} {path.name}: {suffix or 'no suffix'} is not an image format",
                        f"end the name with one of .{', .'.join(PLOT_FORMATS)}")
    return path


def plot_timelines(
    timelines: list[tuple[Any, pd.DataFrame]], path: str | Path, alert_windows: AlertWindows | None = None
) -> Path:
    """Write a PNG with two panels per SLO; ``timelines`` pairs each SLO with its burn_rate_timeline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2 * len(timelines), 1, figsize=(10, 5.5 * len(timelines)), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2] * len(timelines)})
    for index, (slo, frame) in enumerate(timelines):
        burn_axis, budget_axis = axes[2 * index][0], axes[2 * index + 1][0]
        windows = alert_windows_for(slo, alert_windows)
        for colour, tier in zip(_TIER_COLOURS, windows.tiers, strict=False):
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
        budget_axis.plot(frame["ts"], frame["budget_remaining"], color="black", linewidth=1.4)
        budget_axis.axhline(0.0, color="tab:red", linewidth=0.8)
        budget_axis.set_ylabel("budget remaining")
        budget_axis.set_xlabel("time (UTC)")
        budget_axis.grid(alpha=0.3)
        burn_axis.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
