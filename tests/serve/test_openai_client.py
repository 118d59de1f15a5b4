"""The official `openai` client against a real server: completions and chat, streaming and not."""

from __future__ import annotations

import httpx
import openai
import pytest

from harness.serve.text import prompt_ids, token_word


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as c:
        yield c


def test_models_lists_the_served_model(client, server):
    assert [m.id for m in client.models.list().data] == [server.model]


def test_completion_counts_words_as_tokens_and_generates_max_tokens(client, server):
    out = client.completions.create(model=server.model, prompt="the quick brown fox", max_tokens=7)
    assert out.usage.prompt_tokens == 5            # BOS + four words
    assert out.usage.completion_tokens == 7        # no EOS: always max_tokens
    assert out.choices[0].finish_reason == "length"
    assert len(out.choices[0].text.split()) == 7   # one word per token


def test_greedy_decoding_is_deterministic(client, server):
    a = client.completions.create(model=server.model, prompt="same prompt", max_tokens=5).choices[0].text
    b = client.completions.create(model=server.model, prompt="same prompt", max_tokens=5).choices[0].text
    assert a == b


def test_streamed_completion_equals_the_non_streamed_one(client, server):
    full = client.completions.create(model=server.model, prompt="stream me please", max_tokens=6)
    chunks = list(client.completions.create(model=server.model, prompt="stream me please", max_tokens=6,
                                            stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == full.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens == 6 and usage[0].prompt_tokens == 4
    assert chunks[-1].choices == []                # the usage chunk comes last, with no choices


def test_chat_non_streaming(client, server):
    out = client.chat.completions.create(model=server.model, max_tokens=4,
                                         messages=[{"role": "system", "content": "be brief"},
                                                   {"role": "user", "content": "hello there"}])
    msg = out.choices[0].message
    assert msg.role == "assistant" and len(msg.content.split()) == 4
    # "system: be brief\nuser: hello there" -> BOS + 6 words
    assert out.usage.prompt_tokens == 7 == len(prompt_ids("system: be brief\nuser: hello there", 4096))


def test_chat_streaming_with_usage(client, server):
    stream = client.chat.completions.create(model=server.model, max_completion_tokens=5, stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "count to five"}])
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    words = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(words) == 5 and all(w.startswith(" ") for w in words)
    assert chunks[-1].usage.completion_tokens == 5 and chunks[-1].usage.total_tokens == 5 + 5


def test_without_include_usage_no_usage_chunk(client, server):
    chunks = list(client.completions.create(model=server.model, prompt="a b", max_tokens=3, stream=True))
    assert all(c.usage is None for c in chunks) and len(chunks) == 3 + 1   # three tokens, one finish chunk


def test_token_ids_prompt_and_words(client, server):
    out = client.completions.create(model=server.model, prompt=[5, 6, 7, 8], max_tokens=2)
    assert out.usage.prompt_tokens == 4
    assert token_word(0) == " ka" and token_word(17) == " lolo"


def test_sse_stream_ends_with_done(server):
    body = {"model": server.model, "prompt": "raw sse", "max_tokens": 2, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)


def test_health_and_metrics_use_vllm_names(server, client):
    assert httpx.get(f"{server.url}/health").status_code == 200
    before = server.metric("vllm:generation_tokens_total")
    client.completions.create(model=server.model, prompt="metrics", max_tokens=3)
    text = httpx.get(f"{server.url}/metrics").text
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                 "vllm:num_preemptions_total", "vllm:time_to_first_token_seconds_bucket",
                 "vllm:inter_token_latency_seconds_bucket", "vllm:e2e_request_latency_seconds_bucket",
                 "vllm:request_queue_time_seconds_bucket", "vllm:prompt_tokens_total",
                 "vllm:generation_tokens_total"):
        assert f'{name}{{' in text and f'model_name="{server.model}"' in text, name
    assert server.metric("vllm:generation_tokens_total") == before + 3
