"""The shipped WikiText-2 raw test text (harness/evaluate/data/wikitext-2-raw, CC BY-SA 3.0): the one reader used
for the speed prompt, the quality windows and the tiny test tokenizer's training text."""
from __future__ import annotations

from functools import lru_cache

from harness.core.paths import DATA_DIR


WIKITEXT_TEST = DATA_DIR / "wikitext-2-raw" / "wiki.test.raw"  # also the file llama-perplexity reads (-f)


@lru_cache(maxsize=1)
def _text() -> str:
    return WIKITEXT_TEST.read_text(encoding="utf-8")


def wikitext_test(n_chars: int | None = None) -> str:
    """The test split's text, or its first `n_chars` characters."""
    return _text() if n_chars is None else _text()[:n_chars]
