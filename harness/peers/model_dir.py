"""Write a weightless model directory for vLLM with the shape of one of this project's presets.

Run with the peer virtualenv's Python (it needs ``transformers`` and ``tokenizers``, which vLLM brings):

    .venv-vllm/bin/python -m harness.peers.model_dir --preset tiny --out .venv-vllm/models/tiny

vLLM then loads it with ``--load-format dummy`` (random weights), so nothing is downloaded. The tokenizer
is a WordLevel vocabulary ``w0 .. wN`` split on whitespace: prompt text ``"w5 w17"`` is exactly the token
ids [5, 17] (+ offset of the special tokens), so prompt lengths are exact whichever way a client sends them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from causalsre.safeio import write_text
from harness.engine.config import MODEL_PRESETS, ModelConfig

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")  # ids 0, 1, 2


def vocabulary(vocab_size: int) -> dict[str, int]:
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for i in range(len(SPECIAL_TOKENS), vocab_size):
        vocab[f"w{i}"] = i  # the word for id i is "w{i}": text and token ids map one to one
    return vocab


def write_model_dir(preset: ModelConfig, out: Path, max_model_len: int) -> Path:
    """Save a LlamaConfig and a fast tokenizer for ``preset`` under ``out``; returns ``out``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    config = LlamaConfig(
        vocab_size=preset.vocab_size, hidden_size=preset.hidden_size, intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_layers, num_attention_heads=preset.num_heads,
        num_key_value_heads=preset.num_kv_heads, max_position_embeddings=min(preset.max_position, max_model_len),
        rope_theta=preset.rope_theta, rms_norm_eps=preset.rms_norm_eps, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2, torch_dtype="float32")
    config.save_pretrained(out)
    tok = Tokenizer(models.WordLevel(vocab=vocabulary(preset.vocab_size), unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   model_max_length=max_model_len)
    fast.save_pretrained(out)
    write_text(out / "causalsre_preset.json", json.dumps(preset.to_dict(), indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(MODEL_PRESETS), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-model-len", type=int, default=1024)
    args = parser.parse_args(argv)
    write_model_dir(MODEL_PRESETS[args.preset], args.out, args.max_model_len)
    print(f"model directory for preset {args.preset}: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
