"""What a weight source hands the next stage: the model, its tokenizer and where the weights came from."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    name: str
    source_weights: str
    weights: str = "real"  # or "random"
    folder: Path | None = None  # the checkpoint folder it was read from (None: created in memory)
