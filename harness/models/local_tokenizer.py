"""A small byte-level BPE tokenizer trained locally on the shipped WikiText-2 text: no download, deterministic."""
from __future__ import annotations

from functools import lru_cache

from harness.paths import cache_dir


@lru_cache(maxsize=4)
def local_tokenizer(vocab_size: int = 1024):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path = cache_dir("tokenizers") / f"wikitext-bpe-{vocab_size}.json"
    if path.exists():
        tok = Tokenizer.from_file(str(path))
    else:
        from harness.corpus import wikitext_test

        text = wikitext_test()
        lines = [ln for ln in text.splitlines() if ln.strip()][:3000]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(lines, trainer)
        tmp = path.with_suffix(".tmp")
        tok.save(str(tmp))
        tmp.replace(path)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")
