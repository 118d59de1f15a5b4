"""Round 5 of the hostile inputs over HTTP: an empty body, a number past a double, a wrong path or method.

Before: `causalsre serve` answered an empty body with "missing required field 'None'"; the gateway parsed
`1e999` as inf and forwarded it as the non-JSON token `Infinity` (a 200 from our server, which ignores the
field; anything else may choke on it), and answered an unknown path or a wrong method with FastAPI's
`{"detail": "Not Found"}` instead of OpenAI's error object.
"""

from __future__ import annotations

import httpx
import pytest

from tests.serve.conftest import live_server
from tests.serve.test_gateway import live_gateway


@pytest.fixture(scope="module")
def servers():
    with live_server() as up, live_gateway(up.url, up.model) as gw:
        yield {"serve": up.url, "gateway": gw}, up.model


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text[:300]
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_an_empty_body_says_so(which, servers):
    urls, _ = servers
    r = httpx.post(urls[which] + "/v1/completions", content=b"", headers={"content-type": "application/json"},
                   timeout=60)
    message = _error(r, 400)["message"]
    assert "None" not in message and ("empty" in message or "not valid JSON" in message), message


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("method, path, status", [("GET", "/v1/completions", 405), ("GET", "/no/such/path", 404),
                                                  ("POST", "/v1/models", 405)])
def test_a_wrong_path_or_method_is_the_error_object(which, method, path, status, servers):
    urls, _ = servers
    assert _error(httpx.request(method, urls[which] + path, timeout=60), status)["code"] == status


def test_the_gateway_refuses_a_number_past_a_double_instead_of_forwarding_infinity(servers):
    urls, model = servers
    body = b'{"model": "%s", "prompt": "x", "max_tokens": 2, "frequency_penalty": 1e999}' % model.encode()
    r = httpx.post(urls["gateway"] + "/v1/completions", content=body, headers={"content-type": "application/json"},
                   timeout=60)
    assert "too large for a double" in _error(r, 400)["message"]
    fine = body.replace(b"1e999", b"1.5e0")  # in OpenAI's range (-2..2), which serve holds it to since round 8
    assert httpx.post(urls["gateway"] + "/v1/completions", content=fine, headers={"content-type": "application/json"},
                      timeout=60).status_code == 200


def test_the_body_forwarded_upstream_is_strict_json():
    from harness.serve.gateway_parse import parse_body, upstream_body

    assert upstream_body(parse_body(b'{"a": 1e308, "b": -2.5}')) == b'{"a": 1e+308, "b": -2.5}'
