"""The rules for request fields both servers hold to (:mod:`harness.serve.protocol` builds its request models
from them; the gateway asks :func:`logit_bias_problem` too): a field the server cannot honour, a JSON number
in a range, logit_bias, stop strings. Each refusal is a 400 naming the field, the problem and the fix."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError


def _refuse(value: Any, problem: str, fix: str):
    try:
        shown = json.dumps(value, default=str)
    except (RecursionError, ValueError):
        shown = f"a JSON {type(value).__name__}"
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    # The message goes in as context: a fix quoting JSON has braces, which the template would read.
    raise PydanticCustomError("unsupported", "{message}", {"message": f"{shown} is not supported: {problem} ({fix})"})


def unsupported(problem: str, fix: str, *no_ops: Any):
    """A field the server cannot honour: null, or a value in ``no_ops`` (which asks for nothing; of the same
    JSON type, so ``0`` is not ``false``), passes; any other value, of any type, is a 400 naming the field with
    ``problem`` and ``fix``. Silently ignoring it answered a client that relied on it with something else."""

    def check(value: Any) -> Any:
        if value is None or any(type(value) is type(ok) and value == ok for ok in no_ops):
            return value
        _refuse(value, problem, fix)

    return Annotated[Any, AfterValidator(check)]


# A JSON number (an integer is one): "0.5" or true for temperature is a client bug, as NaN is; pydantic's lax
# mode read "0.5" as 0.5 and true as 1.0.
def number(**bounds: float):
    return Annotated[float, Field(strict=True, allow_inf_nan=False, **bounds)] | None


ONE_CHOICE = ("this server returns one choice per request", "leave it out or send 1; send several requests "
              "for several completions")
NO_LOGPROBS = ("the engine returns no log-probabilities", "leave it out")
NO_TOOLS = ("this server has no tool or function calling", "leave it out")
NO_STRUCTURE = ("the model (random weights, an invented vocabulary) cannot constrain its output",
                'leave it out, or send {"type": "text"}')


def logit_bias_problem(bias: dict) -> str | None:
    """Why ``bias`` (a JSON object) is not OpenAI's and vLLM's logit_bias, with the fix; None when it is: token ids
    (object keys, so strings of digits) to a number in [-100, 100]. Accepted, no effect (greedy decoding, as the
    other sampling fields); ``{"hello": 5}`` or a bias of 1e6 was a 200. The gateway asks the same."""
    for token, value in bias.items():
        if not (isinstance(token, str) and token.isascii() and token.isdigit() and len(token) <= 10):
            return f'the key {json.dumps(str(token)[:40])} is not a token id (send token ids as keys, e.g. {{"50256": -100}})'
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return (f"the bias of token {token} is {json.dumps(value, default=str)[:40]}, not a number (send a number "
                    "from -100 to 100, without quotes)")
        if not -100 <= value <= 100:
            return f"the bias {value:g} of token {token} is outside [-100, 100] (send a bias from -100 to 100)"
    return None


def check_logit_bias(bias: dict[str, Any]) -> dict[str, Any]:
    problem = logit_bias_problem(bias)
    if problem is not None:  # as context: the fix quotes JSON, whose braces the template would read
        raise PydanticCustomError("logit_bias", "{message}", {"message": problem})
    return bias


def check_stop(stop: str | list[str]) -> str | list[str]:
    if stop == "" or (isinstance(stop, list) and "" in stop):  # vLLM: "stop cannot contain an empty string."
        raise PydanticCustomError("empty_stop", "an empty stop string would end every answer before its first "
                                                "token (send stop strings of at least one character)")
    return stop
