"""Bad input gets a 4xx with OpenAI's error object, never a 5xx: bodies, auth, sizes, limits, unknown models."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.serve.conftest import live_server


def _post(server, path, content=None, json=None, headers=None):
    return httpx.post(f"{server.url}{path}", content=content, json=json, headers=headers, timeout=30)


def _is_error_object(r) -> bool:
    body = r.json()
    return set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"} \
        and isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.mark.parametrize("content, param", [
    (b"{not json", None),
    (b"[1, 2]", None),
    (b'"a string"', None),
    (b"{}", "prompt"),
    (b'{"prompt": 3}', "prompt"),
    (b'{"prompt": "x", "max_tokens": 0}', "max_tokens"),
    (b'{"prompt": "x", "max_tokens": "5"}', "max_tokens"),
    (b'{"prompt": "x", "max_tokens": 1.5}', "max_tokens"),
    (b'{"prompt": "x", "stream": "yes"}', "stream"),
    (b'{"prompt": "x", "n": 2}', "n"),
    (b'{"prompt": "x", "echo": true}', "echo"),
    (b'{"prompt": "x", "logprobs": 3}', "logprobs"),
    (b'{"prompt": [-1, 2]}', "prompt"),
    (b'{"prompt": [999999]}', "prompt"),
    (b'{"prompt": ["a", "b"]}', "prompt"),
    (b'{"prompt": "x", "max_tokens": 100000}', "max_tokens"),
    (b'{"prompt": "x", "stream_options": {"include_usage": 1}}', "stream_options.include_usage"),
    (b'{"prompt": "\\ud800 lone surrogate", "max_tokens": 1, "user": 5}', "user"),
])
def test_bad_completion_bodies_get_400(server, content, param):
    r = _post(server, "/v1/completions", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert _is_error_object(r) and r.json()["error"]["param"] == param


@pytest.mark.parametrize("body, param", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"messages": "hello"}, "messages"),
    ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, "tools"),
    ({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": -3}, "max_completion_tokens"),
])
def test_bad_chat_bodies_get_400(server, body, param):
    r = _post(server, "/v1/chat/completions", json=body)
    assert r.status_code == 400 and _is_error_object(r) and r.json()["error"]["param"] == param


def test_prompt_longer_than_the_model_is_refused(server):
    words = " ".join(f"w{i}" for i in range(2048))   # 2048 words + BOS > the tiny preset's 2048 positions
    r = _post(server, "/v1/completions", json={"prompt": words, "max_tokens": 1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    r = _post(server, "/v1/completions", json={"prompt": " ".join(words.split()[:2040]), "max_tokens": 100})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"


def test_unknown_model_is_404_and_unknown_route_is_an_error_object(server):
    r = _post(server, "/v1/completions", json={"model": "gpt-9", "prompt": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = httpx.get(f"{server.url}/v1/nothing-here")
    assert r.status_code == 404 and _is_error_object(r)
    r = httpx.get(f"{server.url}/v1/completions")
    assert r.status_code == 405 and _is_error_object(r)


def test_oversized_bodies_get_413_declared_or_chunked(server):
    big = b'{"prompt": "' + b"x " * (1 << 20) + b'"}'
    r = _post(server, "/v1/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and _is_error_object(r)

    def chunks():   # no Content-Length: the server counts what arrives
        yield b'{"prompt": "'
        for _ in range(64):
            yield b"y " * 20000
        yield b'"}'

    r = _post(server, "/v1/completions", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and _is_error_object(r)


def test_tenant_header_longer_than_the_limit_is_400(server):
    r = _post(server, "/v1/completions", json={"prompt": "x", "max_tokens": 1}, headers={"X-Tenant": "t" * 300})
    assert r.status_code == 400 and r.json()["error"]["param"] == "user"


def test_api_key_required_when_set():
    with live_server(api_key="s3cret") as srv:
        body = {"prompt": "x", "max_tokens": 1}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = httpx.post(f"{srv.url}/v1/completions", json=body, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(f"{srv.url}/v1/models").status_code == 401
        ok = httpx.post(f"{srv.url}/v1/completions", json=body, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert httpx.get(f"{srv.url}/health").status_code == 200     # probes need no key, as in vLLM
        with openai.OpenAI(base_url=f"{srv.url}/v1", api_key="wrong", max_retries=0) as client:
            with pytest.raises(openai.AuthenticationError):
                client.completions.create(model=srv.model, prompt="x", max_tokens=1)
