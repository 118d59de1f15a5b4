"""Round 10 at the HTTP side of `causalsre serve` and the gateway: JSON that is not JSON, message parts, and
vLLM's sampling ranges.

Before: serve let FastAPI parse the body, which reads NaN and Infinity: ``max_tokens: NaN`` was a 500 (the
error's own wording crashed on int(nan)), ``temperature: NaN`` "out of range", and a 5,000-digit number
"There was an error parsing the body" (no fix), where the gateway answered "not valid JSON (NaN is not a JSON
number)". A body of blanks was "not valid JSON" on serve and "empty" on the gateway. A message part that was
an image, a list or had a list for its text was "is a list, not a string (send a string)". ``top_k: -5``,
``min_p: 2``, ``repetition_penalty: 0``, an empty stop string, ``stop_token_ids: ["a"]`` and chat's ``echo:
true`` were a 200 (vLLM answers each with a 400). max_tokens past the server's limit or the context said so
with no fix. Now both servers read a body with one reader and each of these is a 400 naming the field and
the fix.
"""

from __future__ import annotations

import httpx
import pytest

from tests.badinput.test_round8_http import _post, _refused
from tests.badinput.test_round9_http import _post_raw
from tests.serve.conftest import live_server
from tests.serve.test_gateway import live_gateway


@pytest.fixture(scope="module")
def servers():
    with live_server() as up, live_gateway(up.url, up.model) as gw:
        yield {"serve": up.url, "gateway": gw}


NOT_JSON = [  # (id, raw body, fragment)
    ("max-tokens-nan", b'{"prompt": "x", "max_tokens": NaN}', "NaN is not a JSON number"),
    ("max-tokens-inf", b'{"prompt": "x", "max_tokens": Infinity}', "Infinity is not a JSON number"),
    ("temperature-nan", b'{"prompt": "x", "max_tokens": 2, "temperature": NaN}', "NaN is not a JSON number"),
    ("top-p-minus-inf", b'{"prompt": "x", "max_tokens": 2, "top_p": -Infinity}', "-Infinity is not a JSON number"),
    ("overflow", b'{"prompt": "x", "max_tokens": 2, "temperature": 1e999}', "the number 1e999 is too large"),
    ("digits", b'{"prompt": "x", "max_tokens": ' + b"9" * 5000 + b"}", "a number has more than 4300 digits"),
]


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("case_id, raw, fragment", NOT_JSON, ids=[c[0] for c in NOT_JSON])
def test_json_without_json_numbers_is_the_same_400_on_both_servers(which, case_id, raw, fragment, servers):
    message = _refused(_post_raw(servers[which], raw), None)
    assert message.startswith("the request body is not valid JSON (") and fragment in message, message


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_a_body_of_blanks_is_empty_on_both_servers(which, servers):
    message = _refused(_post_raw(servers[which], b" \r\n\t "), None)
    assert message.startswith("the request body is empty ("), message


CONTENT = [  # (id, content, param, fragment)
    ("image-part", [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}], "messages.0.content.0",
     'is a part of type "image_url", and this server\'s model reads text only'),
    ("nested-list", [[{"type": "text", "text": "a"}]], "messages.0.content.0",
     "must be a content part, an object such as"),
    ("text-is-a-list", [{"type": "text", "text": [["a"]]}], "messages.0.content.0.text",
     'messages.0.content.0.text must be a string, not [["a"]]'),
    ("no-type", [{"text": "a"}], "messages.0.content.0", "messages.0.content.0 has no type"),
    ("second-part-a-number", [{"type": "text", "text": "a"}, 7], "messages.0.content.1", "not 7"),
    ("a-number", 5, "messages.0.content", "must be a string or a list of text parts, not 5"),
    ("an-object", {"type": "text", "text": "a"}, "messages.0.content", "must be a string or a list of text parts"),
]


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("case_id, content, param, fragment", CONTENT, ids=[c[0] for c in CONTENT])
def test_a_message_content_that_is_not_text_says_which_part(which, case_id, content, param, fragment, servers):
    body = {"max_tokens": 2, "messages": [{"role": "user", "content": content}]}
    message = _refused(_post(servers[which], body, chat=True), param)
    assert fragment in message, message


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_text_parts_still_pass(which, servers):
    body = {"max_tokens": 2, "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                       {"type": "text", "text": "b"}]}]}
    r = _post(servers[which], body, chat=True)
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] > 1, r.text[:300]


VLLM_RANGES = [  # (id, chat?, body, param, fragment): vLLM's SamplingParams refuses each; serve answered 200
    ("top-k-below", False, {"top_k": -5}, "top_k", "should be greater than or equal to -1"),
    ("top-k-text", True, {"top_k": "5"}, "top_k", '"5" is a string, not a whole number'),
    ("top-k-float", False, {"top_k": 2.5}, "top_k", "2.5 is not a whole number"),
    ("min-p-above", False, {"min_p": 2}, "min_p", "should be less than or equal to 1"),
    ("min-p-below", True, {"min_p": -0.1}, "min_p", "should be greater than or equal to 0"),
    ("repetition-zero", False, {"repetition_penalty": 0}, "repetition_penalty", "should be greater than 0"),
    ("repetition-text", True, {"repetition_penalty": "1.1"}, "repetition_penalty", "send the number without quotes"),
    ("stop-empty", False, {"stop": ""}, "stop", "an empty stop string would end every answer"),
    ("stop-list-empty", True, {"stop": ["a", ""]}, "stop", "send stop strings of at least one character"),
    ("stop-token-ids-text", False, {"stop_token_ids": ["a"]}, "stop_token_ids.0", "not a whole number"),
    ("chat-echo", True, {"echo": True}, "echo", "the answer holds only the generated message"),
]


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("case_id, chat, body, param, fragment", VLLM_RANGES, ids=[c[0] for c in VLLM_RANGES])
def test_a_sampling_field_outside_vllms_range_is_a_400(which, case_id, chat, body, param, fragment, servers):
    message = _refused(_post(servers[which], {"max_tokens": 2, **body}, chat), param)
    assert fragment in message, message


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_sampling_fields_in_range_still_pass(which, servers):
    for body in ({"top_k": 0}, {"top_k": -1}, {"top_k": 50, "min_p": 0.05, "repetition_penalty": 1.1},
                 {"min_p": 0, "min_p": 1}, {"stop": "x", "stop_token_ids": [1, 2]}, {"stop": ["x", "y"]}):
        r = _post(servers[which], {"max_tokens": 2, **body})
        assert r.status_code == 200, (body, r.text[:300])
    r = _post(servers[which], {"max_tokens": 2, "echo": False}, chat=True)
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_max_tokens_past_the_limit_or_the_context_says_what_to_send(which, servers):
    message = _refused(_post(servers[which], {"max_tokens": 10**6}), "max_tokens")
    assert "(send max_tokens of at most 1024" in message, message
    context = httpx.get(servers["serve"] + "/v1/models", timeout=60).json()["data"][0]["max_model_len"]
    words = " ".join(["w"] * (context - 3))   # BOS plus one per word: room for 2 tokens
    message = _refused(_post(servers[which], {"prompt": words, "max_tokens": 5}), "max_tokens")
    assert "(send max_tokens of at most 2, or a shorter prompt)" in message, message


ROUTES = ("GET /health, GET /metrics, GET /v1/models, POST /v1/completions, POST /v1/chat/completions")
WRONG_ROUTES = [  # (id, method, path, status, fragment): they said "Not Found" / "Method Not Allowed", no fix
    ("double-slash", "POST", "/v1//completions", 404, "POST /v1//completions: no such route"),
    ("upper-case", "POST", "/V1/completions", 404, "POST /V1/completions: no such route"),
    ("model-by-id", "GET", "/v1/models/causalsre-tiny", 404, "GET /v1/models/causalsre-tiny: no such route"),
    ("unicode-path", "GET", "/v1/caf%C3%A9", 404, "GET /v1/café: no such route"),
    ("get-completions", "GET", "/v1/completions", 405, "GET /v1/completions: the route does not take GET"),
    ("post-models", "POST", "/v1/models", 405, "POST /v1/models: the route does not take POST"),
]


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("case_id, method, path, status, fragment", WRONG_ROUTES, ids=[c[0] for c in WRONG_ROUTES])
def test_a_wrong_route_or_method_names_the_routes_there_are(which, case_id, method, path, status, fragment, servers):
    r = httpx.request(method, servers[which] + path, timeout=60)
    assert r.status_code == status, r.text[:300]
    error = r.json()["error"]
    assert error["message"] == f"{fragment} (this server has {ROUTES})", error
    assert error["code"] == status and "\n" not in error["message"]
