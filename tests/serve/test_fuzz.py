"""Schemathesis fuzzes every operation of the OpenAPI schema the server publishes, with valid and with
schema-violating requests: no 5xx, only documented statuses, an error object on every 4xx. Generation is
derandomized, so a failure reproduces. (Schemathesis's own pytest plugin does not load under pytest 9; its
strategies are driven by hypothesis directly.)"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from tests.serve.conftest import live_server

AUTH = {"Authorization": "Bearer fuzz-key"}


@pytest.fixture(scope="module")
def api_schema():
    # Small max_tokens so the valid bodies the fuzzer finds finish quickly on a CPU.
    with live_server(api_key="fuzz-key", overrides={"max_tokens_limit": 4, "default_max_tokens": 2}) as srv:
        yield schemathesis.openapi.from_url(f"{srv.url}/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.slow
def test_api_never_answers_bad_input_with_5xx(api_schema, mode):
    seen: set[int] = set()

    @given(case=api_schema.as_strategy(generation_mode=mode, headers=AUTH))
    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(headers=AUTH, timeout=60)
        case.validate_response(response, checks=(not_a_server_error, status_code_conformance,
                                                 content_type_conformance))
        if 400 <= response.status_code < 500:
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        seen.add(response.status_code)

    check()
    assert 200 in seen if mode is GenerationMode.POSITIVE else 400 in seen
