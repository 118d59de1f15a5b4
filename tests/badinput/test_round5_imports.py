"""Round 5 of the hostile inputs: OpenTelemetry traces that repeat a span or an attribute.

Before: the same span (trace id, span id) given twice, in one file or in two, imported as two requests; a span
whose attributes list gen_ai.usage.prompt_tokens twice with different values kept the last without a word.
"""

from __future__ import annotations

import json

from tests.badinput.conftest import refused, run_cli


def _span(span_id: str, prompt_values: tuple[int, ...] = (10,)) -> dict:
    attrs = [{"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": str(v)}} for v in prompt_values]
    attrs.append({"key": "gen_ai.usage.completion_tokens", "value": {"intValue": "5"}})
    return {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": span_id, "name": "llm_request",
            "startTimeUnixNano": "1769860800000000000", "endTimeUnixNano": "1769860801000000000", "attributes": attrs}


def _doc(*spans: dict) -> str:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": list(spans)}]}]})


def test_a_span_given_twice_is_refused_in_one_file_and_across_files(world, capsys):
    one = world.path("one.json")
    one.write_text(_doc(_span("eee0d48f5ff7b329"), _span("eee0d48f5ff7b329")))
    db = world.path("new.duckdb")
    refused(["db", "import", "otel", str(one), "--db", str(db)], "appears twice", capsys)
    a, b = world.path("a.json"), world.path("b.json")
    a.write_text(_doc(_span("00000000000000a1")))
    b.write_text(_doc(_span("00000000000000b2"), _span("00000000000000a1")))
    refused(["db", "import", "otel", str(a), str(b), "--db", str(db)], "(first in a.json)", capsys)
    assert not db.exists()
    b.write_text(_doc(_span("00000000000000b2")))
    code, _, err = run_cli(["db", "import", "otel", str(a), str(b), "--db", str(db)], capsys)
    assert code == 0 and "imported 2 requests" in err + _, err


def test_an_attribute_given_twice_with_different_values_is_refused(world, capsys):
    path = world.path("attrs.json")
    path.write_text(_doc(_span("00000000000000c3", (10, 11))))
    refused(["db", "import", "otel", str(path), "--db", str(world.path("new.duckdb"))],
            "attribute 'gen_ai.usage.prompt_tokens' is given twice with different values (10 and 11)", capsys)
    path.write_text(_doc(_span("00000000000000c3", (10, 10))))  # the same value twice says one thing: read
    code, _, err = run_cli(["db", "import", "otel", str(path), "--db", str(world.path("new.duckdb"))], capsys)
    assert code == 0, err


def test_prometheus_names_the_one_file_that_gives_two_values_and_the_skipped_non_finite(world, capsys):
    # Before: "two files give ..." of a single file; "hold no samples" of a scrape whose only value was +Inf.
    path = world.path("scrapes.prom")
    path.write_text('# scrape_time 1769860800\nvllm:num_requests_running{model="m"} 3\n'
                    '# scrape_time 1769860800\nvllm:num_requests_running{model="m"} 5\n')
    db = world.path("new.duckdb")
    refused(["db", "import", "prometheus", str(path), "--db", str(db)],
            'scrapes.prom gives vllm:num_requests_running{"model": "m"} different values at the same time', capsys)
    path.write_text('# scrape_time 1769860800\nvllm:num_requests_running{model="m"} +Inf\n')
    refused(["db", "import", "prometheus", str(path), "--db", str(db)],
            "hold no samples (1 non-finite values, NaN or +-Inf, are skipped)", capsys)
    assert not db.exists()


def test_prometheus_scrape_times_mixing_naive_and_offset_iso_are_refused(world, capsys):
    path = world.path("mixed.prom")
    path.write_text('# scrape_time 1769860800\nvllm:num_requests_running{model="m"} 3\n'
                    '# scrape_time 2026-01-31T12:00:05\nvllm:num_requests_running{model="m"} 5\n'
                    '# scrape_time 2026-01-31T12:00:10+02:00\nvllm:num_requests_running{model="m"} 6\n')
    refused(["db", "import", "prometheus", str(path), "--db", str(world.path("new.duckdb"))],
            "mixed.prom mixes # scrape_time values with a UTC offset (scrape 3: '2026-01-31T12:00:10+02:00') and "
            "without one (scrape 2: '2026-01-31T12:00:05')", capsys)
    path.write_text(path.read_text().replace("12:00:05\n", "12:00:05Z\n"))  # every ISO time with an offset: read
    code, _, err = run_cli(["db", "import", "prometheus", str(path), "--db", str(world.path("new.duckdb"))], capsys)
    assert code == 0, err
