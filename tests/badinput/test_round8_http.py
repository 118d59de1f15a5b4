"""Round 8 at the HTTP side of `causalsre serve` and the gateway: OpenAI fields the server cannot honour, numbers
sent as text, an empty prompt, and bodies that are not plain JSON.

Before: `serve` answered 200 to `logprobs: 0`, `top_logprobs`, `best_of: 2`, `suffix`, `min_tokens` above
`max_tokens`, `response_format: {type: json_schema}` and `tool_choice: "required"` without tools (each ignored,
so a client relying on it got something else), to `temperature: "0.5"` and `temperature: true`, and to an empty
prompt; the gateway answered 200 to a text/plain body that `serve` refused with 400 ("Input should be a valid
dictionary"); a gzip or Latin-1 body was "There was an error parsing the body" (serve) or "not valid JSON"
(gateway), with no fix. Now each is a 400 with OpenAI's error object that names the field (``param``), says why
and what to send; both servers answer a body in the same words (vLLM's rule: only application/json).
"""

from __future__ import annotations

import gzip
import json
import re

import httpx
import pytest

from tests.serve.conftest import live_server
from tests.serve.test_gateway import live_gateway

CHAT = [{"role": "user", "content": "hi"}]
# A fix is the parenthesised part at the end of every message ("(leave it out)", "(send ...)").
ENDS_WITH_FIX = re.compile(r"\((?:[^()]|\([^()]*\))*\)$")


@pytest.fixture(scope="module")
def servers():
    with live_server() as up, live_gateway(up.url, up.model) as gw:
        yield {"serve": up.url, "gateway": gw}


def _post(url: str, body: dict, chat: bool = False) -> httpx.Response:
    path = "/v1/chat/completions" if chat else "/v1/completions"
    return httpx.post(url + path, json=({"messages": CHAT} if chat else {"prompt": "x"}) | body, timeout=60)


def _refused(r: httpx.Response, param: str | None) -> str:
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param, error
    assert "\n" not in error["message"] and ENDS_WITH_FIX.search(error["message"]), error["message"]
    return error["message"]


UNSUPPORTED = [  # (id, chat?, body, param): every one was a 200 that ignored the field
    ("logprobs-0", False, {"max_tokens": 2, "logprobs": 0}, "logprobs"),
    ("logprobs-5", False, {"max_tokens": 2, "logprobs": 5}, "logprobs"),
    ("chat-logprobs-true", True, {"max_tokens": 2, "logprobs": True}, "logprobs"),
    ("top-logprobs", True, {"max_tokens": 2, "top_logprobs": 3}, "top_logprobs"),
    ("best-of-2", False, {"max_tokens": 2, "best_of": 2}, "best_of"),
    ("suffix", False, {"max_tokens": 2, "suffix": "return x"}, "suffix"),
    ("response-format-json-schema", True,
     {"max_tokens": 2, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
     "response_format"),
    ("response-format-json-object", False, {"max_tokens": 2, "response_format": {"type": "json_object"}},
     "response_format"),
    ("tool-choice-required", True, {"max_tokens": 2, "tool_choice": "required"}, "tool_choice"),
    ("functions", True, {"max_tokens": 2, "functions": [{"name": "f", "parameters": {}}]}, "functions"),
    ("beam-search", False, {"max_tokens": 2, "use_beam_search": True}, "use_beam_search"),
    ("guided-json", False, {"max_tokens": 2, "guided_json": {"type": "object"}}, "guided_json"),
]


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("case_id, chat, body, param", UNSUPPORTED, ids=[c[0] for c in UNSUPPORTED])
def test_a_field_the_server_cannot_honour_is_a_400_saying_so(which, case_id, chat, body, param, servers):
    message = _refused(_post(servers[which], body, chat), param)  # the gateway relays serve's answer
    assert "is not supported" in message, message


NO_OPS = [  # the same fields with the value that asks for nothing: clients (openai, vLLM's bench) send these
    (False, {"logprobs": None, "best_of": 1, "suffix": "", "n": 1, "echo": False, "use_beam_search": False,
             "response_format": {"type": "text"}, "min_tokens": 2}),
    (True, {"logprobs": False, "top_logprobs": 0, "tool_choice": "none", "response_format": {"type": "text"},
            "modalities": ["text"], "min_tokens": 0}),
]


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("chat, body", NO_OPS, ids=["completion", "chat"])
def test_the_values_that_ask_for_nothing_are_still_served(which, chat, body, servers):
    r = _post(servers[which], {"max_tokens": 2, **body}, chat)
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_min_tokens_above_max_tokens_is_a_400(which, servers):
    message = _refused(_post(servers[which], {"max_tokens": 2, "min_tokens": 3}), "min_tokens")
    assert "min_tokens 3 is more than max_tokens 2" in message
    # Without max_tokens the default (16) is the bound.
    _refused(_post(servers[which], {"min_tokens": 17}), "min_tokens")


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("value, fragment", [("0.5", "without quotes: 0.5"), (True, "a boolean, not a number"),
                                             ("hot", "a string, not a number")])
def test_a_number_field_given_text_or_a_boolean_is_a_400(which, value, fragment, servers):
    for field in ("temperature", "top_p", "frequency_penalty"):
        assert fragment in _refused(_post(servers[which], {"max_tokens": 2, field: value}), field)
    assert _post(servers[which], {"max_tokens": 2, "temperature": 1, "top_p": 0.5}).status_code == 200


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("prompt", ["", [""]], ids=["empty-string", "list-of-empty-string"])
def test_an_empty_prompt_is_a_400(which, prompt, servers):
    assert "the prompt is empty" in _refused(_post(servers[which], {"prompt": prompt, "max_tokens": 2}), "prompt")


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_wrong_types_say_what_to_send(which, servers):
    message = _refused(_post(servers[which], {"max_tokens": "2"}), "max_tokens")
    assert "without quotes" in message
    assert "send" in _refused(_post(servers[which], {"prompt": [[1, 2]], "max_tokens": 2}), "prompt")


BODY = json.dumps({"prompt": "x", "max_tokens": 2}).encode()
BAD_BODIES = [  # (id, bytes, headers, fragment of the message)
    ("text-plain", BODY, {"content-type": "text/plain"}, "Content-Type is 'text/plain', not application/json"),
    ("form", BODY, {"content-type": "application/x-www-form-urlencoded"}, "curl -d sends that"),
    ("no-content-type", BODY, {}, "no Content-Type header"),
    ("json-suffix", BODY, {"content-type": "application/vnd.api+json"}, "not application/json"),
    ("gzip-declared", gzip.compress(BODY), {"content-type": "application/json", "content-encoding": "gzip"},
     "does not decode (send the JSON uncompressed"),
    ("gzip-undeclared", gzip.compress(BODY), {"content-type": "application/json"}, "gzip-compressed data"),
    ("latin-1", '{"prompt": "café", "max_tokens": 2}'.encode("latin-1"), {"content-type": "application/json"},
     "not UTF-8 text (byte 0xe9 at offset 15) (JSON must be UTF-8: encode the body as UTF-8)"),
    ("syntax", b'{"prompt": "x",}', {"content-type": "application/json"}, "not valid JSON (Expecting"),
    ("array", b"[1, 2]", {"content-type": "application/json"}, "must be a JSON object"),
]


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("case_id, raw, headers, fragment", BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_a_body_that_is_not_plain_json_is_a_400_with_the_fix(which, case_id, raw, headers, fragment, servers):
    r = httpx.post(servers[which] + "/v1/completions", content=raw, headers=headers, timeout=60)
    assert fragment in _refused(r, None)


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_a_json_media_type_with_parameters_is_served(which, servers):
    r = httpx.post(servers[which] + "/v1/completions", content=BODY,
                   headers={"content-type": "Application/JSON; charset=utf-8"}, timeout=60)
    assert r.status_code == 200, r.text[:300]


def test_the_key_is_checked_before_the_body():
    with live_server(api_key="k") as up:
        r = httpx.post(up.url + "/v1/completions", content=BODY, headers={"content-type": "text/plain"}, timeout=60)
        assert r.status_code == 401, r.text[:300]
        ok = httpx.post(up.url + "/v1/completions", json={"prompt": "x", "max_tokens": 2},
                        headers={"authorization": "Bearer k"}, timeout=60)
        assert ok.status_code == 200, ok.text[:300]


def test_the_body_rules_in_isolation():
    from harness.serve.body import bytes_problem, header_problem
    from harness.serve.gateway_parse import parse_body

    assert header_problem({"content-type": "application/json"}) is None
    assert header_problem({"content-type": "application/json", "content-encoding": "identity"}) is None
    assert bytes_problem('{"a": "é"}'.encode("utf-16")) is None  # JSON readers take UTF-16 (RFC 4627)
    assert bytes_problem(b"\xef\xbb\xbf{}") is None  # a UTF-8 byte-order mark
    assert "zstd" in bytes_problem(b"\x28\xb5\x2f\xfd rest")
    with pytest.raises(Exception, match="more than 4300 digits"):
        parse_body(b'{"a": ' + b"1" * 5000 + b"}")  # Python's advice (set_int_max_str_digits) was echoed
