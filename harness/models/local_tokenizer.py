"""A small byte-level BPE tokenizer trained locally on the shipped WikiText-2 text: no download, deterministic."""
from __future__ import annotations

from functools import lru_cache

from harness.core.paths import cache_dir


@lru_cache(maxsize=4)
def local_tokenizer(vocab_size: int = 1024):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path = cache_dir("tokenizers") / f"wikitext-bpe-{vocab_size}.json"
    tok = None
    if path.exists():
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file: trained again
            from harness.core.logs import get

            get(__name__).warning(f"cache file {path} is not a readable tokenizer ({type(exc).__name__}): "
                                  "training it again")
    if tok is None:
        from harness.core.corpus import wikitext_test

        text = wikitext_test()
        lines = [ln for ln in text.splitlines() if ln.strip()][:3000]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(lines, trainer)
        import os

        from harness.core.cache_files import cache_write

        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        try:
            with cache_write(path, "the local tokenizer"):
                tok.save(str(tmp))
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")
