"""What both servers ask of a request body before they read it as JSON, and the words for each refusal
(here too: a field's wrong type or range as :func:`validation_message` words it).

vLLM's rule (``validate_json_request`` on its OpenAI routes): the media type must be ``application/json``,
else a 400. ``causalsre serve`` answered that already (FastAPI left a text/plain body unparsed) while the
gateway parsed any body whatever its Content-Type and answered 200; both now refuse it in the same words. A
body sent with a content coding (gzip) is refused too: neither server decodes one, and vLLM only failed on
the bytes. Each message names the problem and what to send instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from fastapi.exceptions import RequestValidationError

from harness.engine.errors import clip

MEDIA_TYPE = "application/json"
EXAMPLE = '{"prompt": "hello", "max_tokens": 8}'
SEND_JSON = f"send one JSON object with 'Content-Type: {MEDIA_TYPE}', e.g. {EXAMPLE}"
# Compressed data a client may send without saying so in Content-Encoding.
_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip"}


def empty_message() -> str:
    return f"the request body is empty ({SEND_JSON})"


def not_json_message(detail: str | None = None) -> str:
    """The body's bytes decode but do not parse: ``detail`` is the parser's reason (where it stopped)."""
    reason = f" ({clip(detail, max_len=200)})" if detail else ""
    return f"the request body is not valid JSON{reason} ({SEND_JSON})"


def header_problem(headers: Mapping[str, str]) -> str | None:
    """Why the headers say the body is not plain JSON, or None. ``headers`` is case-insensitive (Starlette's)."""
    coding = headers.get("content-encoding", "").strip().lower()
    if coding not in ("", "identity"):
        return (f"the request body is sent with Content-Encoding: {clip(coding, max_len=60)}, which this server "
                "does not decode (send the JSON uncompressed, without a Content-Encoding header)")
    content_type = headers.get("content-type")
    if content_type is None:
        return f"the request has no Content-Type header ({SEND_JSON})"
    media = content_type.split(";", 1)[0].strip().lower()
    if media == MEDIA_TYPE:
        return None
    shown = clip(content_type, max_len=80)
    if media == "application/x-www-form-urlencoded":  # what `curl -d` sends unless told otherwise
        return (f"the request's Content-Type is {shown!r}, not {MEDIA_TYPE} (curl -d sends that: add "
                f"-H 'Content-Type: {MEDIA_TYPE}')")
    return f"the request's Content-Type is {shown!r}, not {MEDIA_TYPE} ({SEND_JSON})"


def bytes_problem(raw: bytes) -> str | None:
    """Why ``raw`` cannot be JSON text at all (compressed, or not in the encoding its first bytes imply, or
    nested past :data:`MAX_DEPTH`), or None. JSON readers take UTF-16 and UTF-32 too, detected from the first
    bytes (RFC 4627); so does this."""
    for magic, kind in _MAGIC.items():
        if raw.startswith(magic):
            return f"the request body is {kind}-compressed data, not JSON text (send the JSON uncompressed, as UTF-8)"
    encoding = json.detect_encoding(raw)
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        name = encoding.upper().replace("-SIG", "")
        return (f"the request body is not {name} text (byte 0x{raw[exc.start]:02x} at offset {exc.start}) "
                "(JSON must be UTF-8: encode the body as UTF-8)")
    depth = nesting_depth(raw) if encoding == "utf-8" else 0
    if depth > MAX_DEPTH:
        return (f"the request body nests {depth:,} levels deep (send at most {MAX_DEPTH} levels of lists and "
                "objects)")
    return None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e999: json reads it as inf, then forwards it as "Infinity"
        raise ValueError(f"the number {text[:40]} is too large for a double")
    return value


def read_json(raw: bytes) -> tuple[object, str | None]:
    """(the JSON value, None), or (None, why not with the fix), as both servers read a body: :func:`bytes_problem`
    first, then JSON without NaN/Infinity/1e999 (JSON has no such numbers, and the gateway could not forward
    them) or a number of more than 4300 digits. serve let FastAPI parse, which took NaN: a ``max_tokens: NaN``
    was a 500, and a 5,000-digit number "There was an error parsing the body" (no fix)."""
    problem = bytes_problem(raw)
    if problem is not None:
        return None, problem
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite), None
    except RecursionError:
        return None, ("the request body nests too deeply (send at most a few hundred levels of lists and "
                      "objects)")
    except ValueError as exc:  # a syntax error (where it stopped), NaN, 1e999, an integer of thousands of digits
        detail = "a number has more than 4300 digits" if "integer string conversion" in str(exc) else str(exc)
        return None, not_json_message(detail)


# The deepest nesting of lists and objects a body may have: an OpenAI body nests four or five levels. Python's
# JSON parser gives up near 1,000 (a RecursionError), which serve answered "There was an error parsing the
# body" (FastAPI's words, no fix); both servers now say how deep it went, before parsing.
MAX_DEPTH = 256
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of [ and { in UTF-8 JSON text, brackets inside strings not counted. Cheap when the
    body has few brackets (the usual case: at most MAX_DEPTH of them cannot nest deeper)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """One line for the first problem, and the offending field (``messages.0.role``) as OpenAI's ``param``:
    what was sent, what the field takes, and what to send (pydantic's own words gave no fix)."""
    errors = exc.errors()
    if not errors:
        return "invalid request body", None
    err = errors[0]
    kind = err.get("type")
    loc = [str(p) for p in err.get("loc", ()) if p != "body" and not _is_type_tag(p)]
    param = ".".join(loc) or None
    if kind == "json_invalid":
        where = (err.get("loc") or (None, None))[-1]
        detail = (err.get("ctx") or {}).get("error")
        return not_json_message(f"{detail} at byte {where}" if detail and where is not None else detail), \
            None
    if param is None and kind in ("model_attributes_type", "dict_type", "model_type"):
        return f"the request body must be a JSON object (send e.g. {EXAMPLE})", None
    if kind == "missing" and param is None:  # no body at all: it said "missing required field 'None'"
        return empty_message(), None
    if kind == "missing":
        return f"missing required field '{param}' ({_EXAMPLES.get(param, f'add {param} to the body')})", param
    if len(loc) == 3 and loc[0] == "messages" and loc[2] == "content":
        return _content_message(param, err.get("input"))
    if param in _SHAPES and kind not in ("unsupported", "empty_prompt"):
        what, example = _SHAPES[param]
        return f"{param} must be {what}, not {_shown(err.get('input'))} (send e.g. {example})", param
    message = _in_words(err)
    return clip(f"{param}: {message}" if param else message), param  # a 5,000-digit string is not echoed whole


TEXT_PART = '{"type": "text", "text": "hello"}'


def _content_message(param: str, content) -> tuple[str, str]:
    """A message's content that is neither a string nor a list of text parts, in words: it said "is a list,
    not a string (send a string)" for a list of parts, an image part or a part whose text was a list."""
    for i, part in enumerate(content if isinstance(content, list) else ()):
        where = f"{param}.{i}"
        if not isinstance(part, dict):
            return (f"{where} must be a content part, an object such as {TEXT_PART}, not {_shown(part)} "
                    f"(send the parts as objects, e.g. [{TEXT_PART}])"), where
        if "type" not in part:
            return f"{where} has no type (send e.g. {TEXT_PART})", where
        if part["type"] != "text":
            return (f"{where} is a part of type {_shown(part['type'])}, and this server's model reads text only "
                    f"(send text parts, e.g. {TEXT_PART}, or the content as a string)"), where
        if not isinstance(part.get("text"), str):
            return (f"{where}.text must be a string, not {_shown(part.get('text'))} (send e.g. {TEXT_PART})"), \
                f"{where}.text"
    return (f"{param} must be a string or a list of text parts, not {_shown(content)} (send e.g. \"hello\" or "
            f"[{TEXT_PART}])"), param


_EXAMPLES = {"prompt": 'send e.g. "prompt": "hello"',
             "messages": 'send e.g. "messages": [{"role": "user", "content": "hello"}]'}
# Fields whose union of forms pydantic reports member by member ("prompt: Input should be a valid string" for
# a list of lists): the forms in one line instead.
_SHAPES = {"prompt": ("a string, a list of one string or a non-empty list of token ids (whole numbers >= 0)",
                      '"hello" or [1, 2, 3]'),
           "messages": ("a non-empty list of messages", '[{"role": "user", "content": "hello"}]')}
_WANTED = {"float_type": "a number", "int_type": "a whole number", "int_from_float": "a whole number",
           "bool_type": "true or false", "string_type": "a string", "list_type": "a list",
           "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object"}
_BOUNDS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number",
           "too_short", "too_long", "string_too_long", "string_too_short")


def _shown(value) -> str:
    """A sent value as JSON, short (a 100,000-item list is not echoed whole)."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _json_kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}.get(type(value), "a number")


def _in_words(err: dict) -> str:
    kind, value = err.get("type"), err.get("input")
    said = clip(str(err.get("msg", "invalid value")))
    if kind in _WANTED:
        wanted = _WANTED[kind]
        if isinstance(value, str) and kind in ("float_type", "int_type") and _is_number(value) and len(value) <= 40:
            return f"{_shown(value)} is a string, not {wanted} (send the number without quotes: {value.strip()})"
        if isinstance(value, float) and wanted == "a whole number" and math.isfinite(value):
            return f"{_shown(value)} is not a whole number (send an integer, e.g. {max(int(value), 1)})"
        return f"{_shown(value)} is {_json_kind(value)}, not {wanted} (send {wanted})"
    if kind == "string_unicode":  # a lone surrogate ("\ud800"): the field went on as pydantic's words, no fix
        return "holds a lone surrogate, which is not text (send UTF-8 text)"
    if kind in _BOUNDS:
        return f"{_shown(value)} is out of range ({said.replace('Input should', 'it should')})"
    if kind == "literal_error":
        return f"{_shown(value)} is not allowed (send {(err.get('ctx') or {}).get('expected', 'an allowed value')})"
    return said


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_TYPE_NAMES = {"str", "int", "float", "bool", "list", "dict", "none", "function-after", "function-before"}


def _is_type_tag(part) -> bool:
    """Pydantic names the union member in an error's location ('prompt.str'); OpenAI's param has no such part."""
    if isinstance(part, int):
        return False
    text = str(part)
    return text in _TYPE_NAMES or any(c in text for c in "[-'") or text[:1].isupper()
