"""Text <-> token ids for a model with random weights and no tokenizer.

The engine's model has no vocabulary, so the server invents a deterministic one:

* **prompt -> ids**: a BOS id (1), then one id per whitespace-separated word: the first 8 bytes of the word's
  BLAKE2b digest, modulo the vocabulary, kept away from ids 0-2. "one two three" is always 4 tokens, on every
  machine and every run, so a client controls the prompt length by the number of words it sends.
  A prompt given as a list of token ids (OpenAI's other prompt form) is used as is.
* **ids -> text**: each output id becomes one short pronounceable word (" kalo", " mivu", ...) built from its
  digits in base 16 over consonant-vowel syllables, so one streamed chunk is one token is one word.

Chat messages are flattened to ``"role: content"`` lines before the prompt mapping (the role words count).
"""

from __future__ import annotations

import hashlib

BOS_ID = 1
_RESERVED = 3   # ids 0-2 are never produced by a word (0 pad, 1 BOS, 2 EOS by convention)
_SYLLABLES = ("ka", "lo", "mi", "vu", "te", "ra", "no", "si", "pe", "du", "go", "ha", "ri", "zo", "be", "fa")


def word_id(word: str, vocab_size: int) -> int:
    digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return _RESERVED + int.from_bytes(digest, "little") % (vocab_size - _RESERVED)


def prompt_ids(text: str, vocab_size: int) -> list[int]:
    """BOS plus one id per word; an empty prompt is just BOS (the engine needs at least one token)."""
    return [BOS_ID] + [word_id(w, vocab_size) for w in text.split()]


def token_word(token_id: int) -> str:
    """The word a generated id reads as, with its leading space (ids are non-negative)."""
    parts = []
    value = int(token_id)
    while True:
        parts.append(_SYLLABLES[value % 16])
        value //= 16
        if value == 0:
            break
    return " " + "".join(parts)


def chat_text(messages: list[tuple[str, str]]) -> str:
    """The prompt a chat becomes: one ``role: content`` line per message."""
    return "\n".join(f"{role}: {content}" for role, content in messages)
