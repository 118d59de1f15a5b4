"""Round 8 at the TOML configs of `causalsre serve` and the harness: typos, wrong types, huge numbers.

Before: an unknown key was "unknown key" alone (`serve.max_tokns_limit`, `engine.max_num_seq`, a `[serv]`
section); the [serve] section read `max_tokens_limit = "5"` as 5 and `= true` as 1, served a limit of 10^20
tokens or `max_body_bytes = 1e12` (a float, read as a terabyte), and called `flush_interval_s = nan` "less
than or equal to 60". Now a close key is suggested, the [serve] section takes TOML's own types (strict), and
its numbers are bounded (int32 token counts, bodies up to 1 GiB, Retry-After up to an hour, finite floats).
"""

from __future__ import annotations

import pytest

from causalsre.errors import UserError
from harness.serve import load_serve_settings


def _refused(tmp_path, text: str, fragment: str) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_serve_settings(path)
    message = caught.value.one_line()
    assert fragment in message and "\n" not in message, message


@pytest.mark.parametrize("text, fragment", [
    ("[serve]\nmax_tokns_limit = 5\n", "serve.max_tokns_limit: unknown key (did you mean 'max_tokens_limit'?)"),
    ("[engine]\nmax_num_seq = 4\n", "engine.max_num_seq: unknown key (did you mean 'max_num_seqs'?)"),
    ("nmae = 'x'\n", "nmae: unknown key (did you mean 'name'?)"),
    ("[serv]\nmodel_name = 'x'\n", "serv: unknown key (did you mean 'serve'?)"),
    ("[[governor.tiers]]\nname = 'a'\ntenants = ['x']\nobjectve = 0.9\n",
     "governor.tiers.0.objectve: unknown key (did you mean 'objective'?)"),
], ids=["serve-key", "engine-key", "top-key", "serve-section", "tier-key"])
def test_a_misspelt_key_gets_the_key_meant(tmp_path, text, fragment):
    _refused(tmp_path, text, fragment)


@pytest.mark.parametrize("text, fragment", [
    ('[serve]\nmax_tokens_limit = "5"\n', "serve.max_tokens_limit: Input should be a valid integer (got '5')"),
    ("[serve]\nmax_tokens_limit = true\n", "serve.max_tokens_limit: Input should be a valid integer"),
    ("[serve]\nmax_tokens_limit = 99999999999999999999\n", "less than or equal to 2147483647"),
    ("[serve]\nmax_body_bytes = 1e12\n", "serve.max_body_bytes: Input should be a valid integer"),
    ("[serve]\nmax_body_bytes = 1099511627776\n", "less than or equal to 1073741824"),
    ("[serve]\nretry_after_s = 86400\n", "less than or equal to 3600"),
    ("[serve]\nflush_interval_s = nan\n", "serve.flush_interval_s: Input should be a finite number"),
], ids=["string", "bool", "huge-tokens", "float-bytes", "terabyte", "day-retry", "nan"])
def test_a_serve_value_of_the_wrong_type_or_size_is_refused(tmp_path, text, fragment):
    _refused(tmp_path, text, fragment)


def test_valid_serve_sections_still_load(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text("[serve]\nmodel_name = 'm'\nflush_interval_s = 1\nmax_tokens_limit = 2048\nretry_after_s = 5\n")
    settings = load_serve_settings(path)
    assert (settings.model_name, settings.serve.flush_interval_s, settings.serve.max_tokens_limit) == ("m", 1.0, 2048)
