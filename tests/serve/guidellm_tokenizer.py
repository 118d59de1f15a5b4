"""Write a tokenizer directory for guidellm that counts tokens the way `causalsre serve` does: one per word.

Run with the guidellm virtualenv's Python (it has ``tokenizers``, ``transformers`` and ``faker``):

    .venv-guidellm/bin/python tests/serve/guidellm_tokenizer.py OUT_DIR

guidellm builds synthetic prompts from faker's lorem words and trims them with this tokenizer (decoding with
special tokens skipped), so the vocabulary holds those words, capitalized and with a full stop, and splits on
whitespace only. Nothing is downloaded.
"""

from __future__ import annotations

import sys

from faker.providers.lorem.en_US import Provider
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def main(out: str) -> None:
    vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2}
    for word in Provider.word_list:
        for variant in (word, word.capitalize(), word + ".", word.capitalize() + "."):
            vocab.setdefault(variant, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token="<s>",
                            eos_token="</s>").save_pretrained(out)


if __name__ == "__main__":
    main(sys.argv[1])
