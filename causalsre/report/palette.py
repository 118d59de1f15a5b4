"""One palette and one way to make a figure, for every plot causalsre draws.

Figures are ``matplotlib.figure.Figure`` objects built directly (the object-oriented API): no pyplot, no
global figure manager, no backend switch. They render headless (``savefig`` uses the Agg canvas for that
one call) and display inline in Jupyter, and importing this module leaves the user's backend alone.
"""

from __future__ import annotations

from pathlib import Path

from causalsre.errors import UserError

# Factor families (graph nodes, attribution bars) and the outcome nodes.
FAMILY_COLOURS = {"batching": "#3b6fd4", "hardware": "#d4623b", "workload": "#3ba55c", "outcome": "#b03a48",
                  "other": "#8a8f98"}
# Alert tiers, fastest first; what-if methods.
TIER_COLOURS = ["#c0392b", "#e67e22", "#8e44ad", "#2e86c1", "#27ae60", "#7f5539"]
METHOD_COLOURS = {"observed": "#1d2433", "gcm": "#3b6fd4", "bayes": "#3ba55c", "verified": "#d4623b"}
INK, GRID = "#1d2433", "#c5cbd6"

# Formats matplotlib's Agg canvas writes (checked before any work, so a typo costs no computation).
PLOT_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "webp", "eps", "ps", "tif", "tiff")


def new_figure(width: float, height: float, **subplots):
    """(figure, axes): a figure that belongs to no pyplot state, so nothing global changes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots(**subplots)


def family_colour(family: object) -> str:
    return FAMILY_COLOURS.get(str(family), FAMILY_COLOURS["other"])


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


def save_figure(figure, path: str | Path, dpi: int = 110) -> Path:
    from causalsre.safeio import write_with

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".") or None  # the scratch file's name must not decide the format
    write_with(path, lambda scratch: figure.savefig(scratch, dpi=dpi, format=fmt), what="image")
    return path
