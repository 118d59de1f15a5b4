"""Round 9 at the HTTP side of `causalsre serve` and the gateway: logit_bias and stream_options.

Before: both servers answered 200 to a `logit_bias` keyed by words (`{"hello": 5}`), with a bias of 1e6 or
"5", or that was not an object, and to `stream_options` without `stream: true` (vLLM: 400 "Stream options can
only be defined when `stream=True`."); the gateway read `stream: "false"` as a stream. Now each is a 400 with
OpenAI's error object naming the field; a valid logit_bias (token ids to [-100, 100]) is accepted, no effect.
"""

from __future__ import annotations

import httpx
import pytest

from tests.badinput.test_round8_http import _post, _refused
from tests.serve.conftest import live_server
from tests.serve.test_gateway import live_gateway


@pytest.fixture(scope="module")
def servers():
    with live_server() as up, live_gateway(up.url, up.model) as gw:
        yield {"serve": up.url, "gateway": gw}


BAD = [  # (id, chat?, body, param, fragment)
    ("bias-word-key", False, {"logit_bias": {"hello": 5}}, "logit_bias", 'the key "hello" is not a token id'),
    ("bias-negative-key", True, {"logit_bias": {"-1": 5}}, "logit_bias", 'the key "-1" is not a token id'),
    ("bias-huge", False, {"logit_bias": {"50": 1e6}}, "logit_bias", "the bias 1e+06 of token 50 is outside [-100, 100]"),
    ("bias-below", True, {"logit_bias": {"50": -101}}, "logit_bias", "is outside [-100, 100]"),
    ("bias-text", False, {"logit_bias": {"50": "5"}}, "logit_bias", 'the bias of token 50 is "5", not a number'),
    ("bias-bool", False, {"logit_bias": {"50": True}}, "logit_bias", "is true, not a number"),
    ("bias-list", False, {"logit_bias": [50, 5]}, "logit_bias", "not an object"),
    ("options-no-stream", False, {"stream_options": {"include_usage": True}}, "stream_options",
     "stream_options is allowed only when stream is true"),
    ("options-stream-false", True, {"stream": False, "stream_options": {"include_usage": True}}, "stream_options",
     "allowed only when stream is true"),
]


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("case_id, chat, body, param, fragment", BAD, ids=[c[0] for c in BAD])
def test_a_bad_logit_bias_or_stream_options_is_a_400_naming_it(which, case_id, chat, body, param, fragment, servers):
    message = _refused(_post(servers[which], {"max_tokens": 2, **body}, chat), param)
    assert fragment in message, message


def test_the_gateway_refuses_a_stream_flag_that_is_text(servers):
    _refused(_post(servers["gateway"], {"max_tokens": 2, "stream": "false"}), "stream")


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_valid_logit_bias_and_stream_options_still_pass(which, servers):
    ok = _post(servers[which], {"max_tokens": 2, "logit_bias": {"50256": -100, "7": 100.0, "3": 0}})
    assert ok.status_code == 200, ok.text[:300]
    with httpx.stream("POST", servers[which] + "/v1/completions", timeout=60,
                      json={"prompt": "x", "max_tokens": 2, "stream": True,
                            "stream_options": {"include_usage": True}}) as r:
        body = r.read().decode()
    assert r.status_code == 200 and '"usage"' in body and body.rstrip().endswith("data: [DONE]"), body[-300:]
    assert _post(servers[which], {"max_tokens": 2, "stream_options": None}).status_code == 200


def _post_raw(url: str, raw: bytes, chat: bool = False) -> httpx.Response:
    path = "/v1/chat/completions" if chat else "/v1/completions"
    return httpx.post(url + path, content=raw, headers={"content-type": "application/json"}, timeout=60)


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("levels", [300, 100_000], ids=["300", "1e5"])
def test_a_deeply_nested_body_says_how_deep_on_both_servers(which, levels, servers):
    """serve answered "There was an error parsing the body" (FastAPI's words, no fix); the gateway another line."""
    raw = b'{"prompt": "x", "max_tokens": 2, "extra": ' + b"[" * levels + b"]" * levels + b"}"
    message = _refused(_post_raw(servers[which], raw), None)
    assert f"nests {levels + 1:,} levels deep (send at most 256 levels" in message, message


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_brackets_inside_strings_are_not_nesting(which, servers):
    r = _post(servers[which], {"max_tokens": 2, "prompt": "[" * 5000 + "{" * 5000, "stop": ["]]]"]})
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_a_lone_surrogate_echoed_in_an_error_is_escaped_not_a_500(which, servers):
    r = _post_raw(servers[which], b'{"prompt": "x", "max_tokens": 2, "model": "\\ud800"}')
    assert r.status_code == 404, r.text[:300]
    error = r.json()["error"]
    assert error["code"] == "model_not_found" and "the model '\\ud800' does not exist" in error["message"], error


def test_a_seed_beyond_vllms_bound_is_refused(servers):
    _refused(_post(servers["serve"], {"max_tokens": 2, "seed": 2**63}), "seed")
    _refused(_post(servers["gateway"], {"max_tokens": 2, "seed": -2**63 - 1}), "seed")  # relayed from serve
    assert _post(servers["serve"], {"max_tokens": 2, "seed": 2**63 - 1}).status_code == 200


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_a_token_id_outside_the_vocabulary_names_it_and_the_fix(which, servers):
    message = _refused(_post(servers[which], {"max_tokens": 2, "prompt": [1, 2, 10**6]}), "prompt")
    assert "token id 1000000 is outside this model's vocabulary, [0, 4096) (send ids below 4096" in message, message


def test_a_lone_surrogate_tenant_is_refused_by_the_gateway_before_its_telemetry(tmp_path):
    """The gateway recorded the tenant "\\ud800" before the upstream refused the body: its writer could not
    encode it, the flush failed ("Application shutdown failed") and the batch's rows, the good ones too, were lost."""
    import duckdb

    db = tmp_path / "gateway.duckdb"
    with live_server() as up, live_gateway(up.url, up.model, str(db)) as gw:
        assert _post(gw, {"max_tokens": 2}).status_code == 200
        message = _refused(_post_raw(gw, b'{"prompt": "x", "max_tokens": 2, "user": "\\ud800"}'), "user")
        assert "holds a lone surrogate, which is not text (send the tenant as UTF-8 text)" in message, message
        assert _post(gw, {"max_tokens": 2, "user": "caf\u00e9"}).status_code == 200
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT tenant, status FROM requests ORDER BY request_id").fetchall()
    finally:
        con.close()
    assert [status for _, status in rows] == ["ok", "ok"] and rows[1][0] == "caf\u00e9", rows


def test_serve_words_a_lone_surrogate_field_with_the_fix(servers):
    message = _refused(_post_raw(servers["serve"], b'{"prompt": "x", "max_tokens": 2, "user": "\\ud800"}'), "user")
    assert message == "user: holds a lone surrogate, which is not text (send UTF-8 text)", message
