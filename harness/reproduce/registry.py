"""The registry of published claims: one YAML per claim in claims/, validated against a small schema."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CLAIMS = Path(__file__).resolve().parent / "claims"
REQUIRED = {"id": str, "claim": str, "source": str, "setting": dict, "published": dict, "agreement": dict,
            "check": dict, "requires": dict}
SETTING_KEYS = ("models", "dataset", "shots", "context", "metric", "framework")
AGREEMENT_KINDS = ("non_inferiority", "exact", "ratio", "ordering", "within_stderr", "threshold")


from harness.core.errors import ClaimError  # noqa: E402,F401 - re-exported


@dataclass
class Claim:
    id: str
    claim: str
    source: str
    setting: dict
    published: dict
    agreement: dict
    check: dict
    requires: dict
    path: Path


def validate(data: dict, path: Path) -> Claim:
    if not isinstance(data, dict):
        raise ClaimError(f"{path.name}: not a mapping")
    for key, kind in REQUIRED.items():
        if key not in data:
            raise ClaimError(f"{path.name}: missing field '{key}' (required: {', '.join(REQUIRED)})")
        if not isinstance(data[key], kind):
            raise ClaimError(f"{path.name}: field '{key}' must be a {kind.__name__}")
    missing = [k for k in SETTING_KEYS if k not in data["setting"]]
    if missing:
        raise ClaimError(f"{path.name}: setting lacks {missing} (required: {', '.join(SETTING_KEYS)})")
    if data["agreement"].get("kind") not in AGREEMENT_KINDS:
        raise ClaimError(f"{path.name}: agreement.kind must be one of {AGREEMENT_KINDS}")
    from harness.reproduce.checks import CHECKS

    if data["check"].get("function") not in CHECKS:
        raise ClaimError(f"{path.name}: check.function must be one of {CHECKS.names()}")
    return Claim(**{k: data[k] for k in REQUIRED}, path=path)


def load_claims(folder: Path = CLAIMS) -> dict[str, Claim]:
    from harness.core.registry import Registry

    claims: Registry[Claim] = Registry("claim", ClaimError)
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            where = getattr(exc, "problem_mark", None)
            at = f", line {where.line + 1}, column {where.column + 1}" if where is not None else ""
            raise ClaimError(f"{path.name}{at} is not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
        claim = validate(data, path)
        try:
            claims.register(claim.id, claim)
        except ValueError:
            raise ClaimError(f"{path.name}: duplicate id {claim.id!r}") from None
    return claims.items()


def runnable_here(claim: Claim) -> tuple[bool, str]:
    """Whether this machine has what the claim needs (model obtainable, hardware, extras)."""
    import importlib.util

    if claim.check["function"] == "not_runnable":
        return False, claim.check["params"]["needs"]
    hw = claim.requires.get("hardware", "none")
    if hw == "cuda":
        import torch

        if not torch.cuda.is_available():
            return False, "needs a CUDA GPU"
    if claim.requires.get("hub"):
        from harness.core.errors import ModelLoadError
        from harness.models.hub import check_source

        for model_id in claim.requires.get("hub_models", []):
            try:
                check_source({"source": "hub", "id": model_id})
            except ModelLoadError as exc:
                return False, f"needs the hub ({exc})"
        return True, ""
    conf = Path(__file__).resolve().parents[2] / "conf" / "model"
    for model in claim.requires.get("models", []):
        if not (conf / f"{model}.yaml").exists():
            return False, f"model {model} is not obtainable here"
    if "llamacpp" in claim.requires.get("extras", []) and importlib.util.find_spec("llama_cpp") is None:
        return False, "needs llama-cpp-python (make llamacpp)"
    if "llama-perplexity" in claim.requires.get("extras", []):
        from harness.reproduce.llama_perplexity import find_binary

        if find_binary() is None:
            return False, "needs llama.cpp's llama-perplexity (make llama-perplexity, or LLAMA_PERPLEXITY=path)"
    return True, ""
