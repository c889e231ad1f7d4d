"""Evaluation tasks are data: one YAML per task in this folder (prompt templates in Jinja, as lm-eval's), plus a
loader that reads the shipped dataset files into documents. Adding a task that uses an existing loader needs no
code."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from jinja2 import BaseLoader, Environment, StrictUndefined

from harness.paths import DATA_DIR

TASK_DIR = Path(__file__).resolve().parent
_JINJA = Environment(loader=BaseLoader(), undefined=StrictUndefined, keep_trailing_newline=True)


class UnknownTask(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def task_names() -> list[str]:
    return sorted(p.stem for p in TASK_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def load_task(name: str) -> "Task":
    path = TASK_DIR / f"{name}.yaml"
    if not path.exists():
        raise UnknownTask(f"unknown evaluation task {name!r}; choices: {', '.join(task_names())}")
    spec = yaml.safe_load(path.read_text())
    return Task(spec)


@dataclass
class Request:
    """One question: a context and its candidate continuations (the target delimiter already prepended)."""
    doc_id: str
    group: str
    context: str
    continuations: list[str]
    gold: int


def _render(template, doc: dict):
    if isinstance(template, list):
        return [_render(t, doc) for t in template]
    if not isinstance(template, str):
        return template
    if "{{" not in template and "{%" not in template:
        return template
    return _JINJA.from_string(template).render(**doc)


class Task:
    def __init__(self, spec: dict):
        self.spec = spec
        self.name = spec["task"]
        self.target_delimiter = spec.get("target_delimiter", " ")
        self.fewshot_delimiter = spec.get("fewshot_delimiter", "\n\n")

    # documents -------------------------------------------------------------------------------------------------
    def groups(self) -> list[str]:
        return LOADERS[self.spec["loader"]].groups(self.spec)

    def docs(self, split: str, group: str) -> list[dict]:
        return LOADERS[self.spec["loader"]].docs(self.spec, split, group)

    # rendering (lm-eval's rules) -------------------------------------------------------------------------------
    def doc_to_text(self, doc: dict) -> str:
        return _render(self.spec["doc_to_text"], doc)

    def doc_to_choice(self, doc: dict) -> list[str]:
        choices = _render(self.spec["doc_to_choice"], doc)
        return list(choices) if not isinstance(choices, str) else _literal_list(choices)

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

    def requests(self, shots: int, per_group: int | None) -> list[Request]:
        """Requests in a fixed order: groups sorted, documents in file order, the first `per_group` of each."""
        out = []
        for group in self.groups():
            fewshot = self.docs(self.spec["fewshot_split"], group)[:shots] if shots else []
            if shots and len(fewshot) < shots:
                raise ValueError(f"{self.name}/{group}: only {len(fewshot)} few-shot examples for {shots} shots")
            docs = self.docs(self.spec["test_split"], group)
            for i, doc in enumerate(docs[:per_group] if per_group else docs):
                cont = [self.target_delimiter + c for c in self.doc_to_choice(doc)]
                out.append(Request(f"{group}/{i}", group, self.context(doc, fewshot), cont, self.doc_to_target(doc)))
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


LOADERS = {"mmlu_csv": MMLUCsv}
