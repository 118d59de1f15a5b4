"""causalsre: why an LLM inference service burned its error budget, and what would have prevented it."""

from causalsre.errors import UserError

__version__ = "0.1.0"
__all__ = ["UserError", "__version__"]
