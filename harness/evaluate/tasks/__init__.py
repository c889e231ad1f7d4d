"""Evaluation tasks are data: one YAML per task in this folder (prompt templates in Jinja, as lm-eval's), plus a
loader that reads the shipped dataset files into documents. Adding a task that uses an existing loader needs no
code."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
import re

from jinja2 import BaseLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from harness.core.paths import DATA_DIR
from harness.core.registry import Registry

TASK_DIR = Path(__file__).resolve().parent
# task YAMLs are data: their templates render in Jinja's sandbox (no attribute walks to os or subprocess)
_JINJA = SandboxedEnvironment(loader=BaseLoader(), undefined=StrictUndefined, keep_trailing_newline=True)
PLAIN_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


from harness.core.errors import ConfigError, UnknownName, UnknownTask  # noqa: E402,F401 - UnknownTask re-exported


def _find_tasks() -> None:
    for path in sorted(TASK_DIR.glob("*.yaml")):
        if PLAIN_NAME.match(path.stem):
            TASKS.register(path.stem, path)


TASKS: Registry[Path] = Registry("evaluation task", UnknownTask, _find_tasks)  # name -> its YAML, shipped only


def task_names() -> list[str]:
    return TASKS.names()


@lru_cache(maxsize=None)
def load_task(name: str) -> "Task":
    """A shipped task by its plain name (letters, digits, underscores): never a path."""
    return Task(yaml.safe_load(TASKS.get(str(name)).read_text()))


@dataclass
class Request:
    """One question: a context and its candidate continuations (the target delimiter already prepended)."""
    doc_id: str
    group: str
    context: str
    continuations: list[str]
    gold: int
    choice_lengths: list[int] | None = None  # characters of each answer text, for acc_norm (as lm-eval)


def _render(template, doc: dict):
    if isinstance(template, list):
        return [_render(t, doc) for t in template]
    if not isinstance(template, str):
        return template
    if template in doc:  # lm-eval: a bare field name selects that field
        return doc[template]
    if "{{" not in template and "{%" not in template:
        return template
    return _compiled(template).render(**doc)


@lru_cache(maxsize=256)
def _compiled(template: str):
    return _JINJA.from_string(template)


class Task:
    def __init__(self, spec: dict):
        self.spec = spec
        self.name = spec["task"]
        self.target_delimiter = spec.get("target_delimiter", " ")
        self.fewshot_delimiter = spec.get("fewshot_delimiter", "\n\n")

    # documents -------------------------------------------------------------------------------------------------
    def groups(self) -> list[str]:
        if not self.spec.get("group_by"):
            return [self.name]
        return LOADERS[self.spec["loader"]].groups(self.spec)

    def docs(self, split: str, group: str) -> list[dict]:
        return LOADERS[self.spec["loader"]].docs(self.spec, split, group)

    # rendering (lm-eval's rules) -------------------------------------------------------------------------------
    def doc_to_text(self, doc: dict) -> str:
        return _render(self.spec["doc_to_text"], doc)

    def doc_to_choice(self, doc: dict) -> list[str]:
        choices = _render(self.spec["doc_to_choice"], doc)
        return [str(c) for c in (list(choices) if not isinstance(choices, str) else _literal_list(choices))]

    def doc_to_target(self, doc: dict) -> int:
        target = _render(self.spec["doc_to_target"], doc)
        if isinstance(target, str) and target.strip().lstrip("-").isdigit():
            return int(target)
        if isinstance(target, int):
            return target
        return self.doc_to_choice(doc).index(target)

    def description(self, doc: dict) -> str:
        return _render(self.spec.get("description", ""), doc)

    def shot_text(self, doc: dict) -> str:
        return self.doc_to_text(doc) + self.target_delimiter + self.doc_to_choice(doc)[self.doc_to_target(doc)]

    def context(self, doc: dict, shots: list[dict]) -> str:
        prefix = self.description(doc)
        if shots:
            prefix += self.fewshot_delimiter.join(self.shot_text(s) for s in shots) + self.fewshot_delimiter
        return prefix + self.doc_to_text(doc)

    @property
    def takes_shots(self) -> bool:
        return bool(self.spec.get("fewshot_split"))

    def select_groups(self, groups=None) -> list[str]:
        """All groups, or the named ones (an MMLU subject subset) in sorted order; an unknown name lists the choices."""
        every = self.groups()
        if not groups:
            return every
        unknown = sorted(set(groups) - set(every))
        if unknown:
            raise UnknownName(f"{self.name}: unknown {self.spec.get('group_by', 'group')}(s) {unknown}; "
                           f"choices: {', '.join(every)}")
        return [g for g in every if g in set(groups)]

    def requests(self, shots: int, per_group: int | None, groups=None) -> list[Request]:
        """Requests in a fixed order: groups sorted, documents in file order, the first `per_group` of each.
        Tasks without a few-shot split are 0-shot (lm-eval's default for them)."""
        shots = shots if self.takes_shots else 0
        out = []
        for group in self.select_groups(groups):
            fewshot = self.docs(self.spec["fewshot_split"], group)[:shots] if shots else []
            if shots and len(fewshot) < shots:
                raise ConfigError(f"{self.name}/{group}: only {len(fewshot)} few-shot examples for {shots} shots")
            docs = self.docs(self.spec["test_split"], group)
            for i, doc in enumerate(docs[:per_group] if per_group else docs):
                choices = self.doc_to_choice(doc)
                cont = [self.target_delimiter + c for c in choices]
                out.append(Request(f"{group}/{i}", group, self.context(doc, fewshot), cont, self.doc_to_target(doc),
                                   [len(c) for c in choices]))
        return out


def _literal_list(text: str) -> list[str]:
    import ast

    return list(ast.literal_eval(text))


# loaders: how shipped files become documents ---------------------------------------------------------------------
class MMLUCsv:
    """The original MMLU CSVs: no header, question,A,B,C,D,answer; read with a real CSV reader so the literal
    answer text "None" (12 cells) stays a string."""

    @staticmethod
    def groups(spec) -> list[str]:
        folder = DATA_DIR / spec["data"] / spec["test_split"]
        return sorted(p.name.removesuffix(f"_{spec['test_split']}.csv") for p in folder.glob("*.csv"))

    @staticmethod
    def docs(spec, split: str, group: str) -> list[dict]:
        return _mmlu_rows(str(DATA_DIR / spec["data"] / split / f"{group}_{split}.csv"), group)


@lru_cache(maxsize=256)
def _mmlu_rows(path: str, subject: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    docs = []
    for line, row in enumerate(rows, 1):
        if len(row) != 6 or row[5] not in "ABCD" or not row[5]:
            raise ValueError(f"{path}: row {line} is not question,A,B,C,D,answer")
        docs.append({"question": row[0], "choices": row[1:5], "answer": "ABCD".index(row[5]), "subject": subject})
    return docs


class HFJsonArray:
    """A JSON array of Hugging Face dataset rows (ARC-Easy as `allenai/ai2_arc` serves it)."""

    @staticmethod
    def docs(spec, split: str, group: str) -> list[dict]:
        return _json_array(str(DATA_DIR / spec["data"]))


class AI2Jsonl:
    """AI2's original JSONL ({"question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}), mapped to the
    Hugging Face row layout lm-eval reads: the stem under `question_field`, choices as {"text": [...], "label": [...]}."""

    @staticmethod
    def docs(spec, split: str, group: str) -> list[dict]:
        return _ai2_rows(str(DATA_DIR / spec["data"]), spec.get("question_field", "question"))


class PiqaJsonl:
    """PIQA's own files: valid.jsonl ({"goal", "sol1", "sol2"}) and valid-labels.lst (0/1 per line)."""

    @staticmethod
    def docs(spec, split: str, group: str) -> list[dict]:
        return _piqa_rows(str(DATA_DIR / spec["data"]))


@lru_cache(maxsize=8)
def _json_array(path: str) -> list[dict]:
    import json

    with open(path, encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=8)
def _ai2_rows(path: str, question_field: str) -> list[dict]:
    import json

    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                q = r["question"]
                rows.append({"id": r["id"], question_field: q["stem"], "answerKey": r["answerKey"],
                             "choices": {"text": [c["text"] for c in q["choices"]],
                                         "label": [c["label"] for c in q["choices"]]}})
    return rows


@lru_cache(maxsize=2)
def _piqa_rows(folder: str) -> list[dict]:
    import json

    with open(Path(folder) / "valid.jsonl", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f if line.strip()]
    labels = [int(x) for x in (Path(folder) / "valid-labels.lst").read_text().split()]
    if len(labels) != len(docs):
        raise ValueError(f"{folder}: {len(docs)} PIQA items but {len(labels)} labels")
    return [{**d, "label": lab} for d, lab in zip(docs, labels)]


LOADERS = {"mmlu_csv": MMLUCsv, "hf_json_array": HFJsonArray, "ai2_jsonl": AI2Jsonl, "piqa_jsonl": PiqaJsonl}
