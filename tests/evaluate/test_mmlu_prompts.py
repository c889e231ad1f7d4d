"""Our MMLU requests equal what lm-evaluation-harness 0.4 builds from its own `mmlu` template for the same
documents and shots (lm-eval's task is constructed offline here, on the shipped files)."""
import json
from pathlib import Path

import pytest

from harness.evaluate.tasks import load_task

SUBJECTS = ["abstract_algebra", "college_mathematics", "high_school_us_history"]


def lm_eval_requests(tmp_path: Path, subject: str, shots: int, limit: int):
    import lm_eval.tasks
    from lm_eval.tasks import TaskManager

    task = load_task("mmlu")
    for split in ("test", "dev"):
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            for doc in task.docs(split, subject):
                f.write(json.dumps(doc) + "\n")
    template = Path(lm_eval.tasks.__file__).parent / "mmlu" / "default" / "_default_template_yaml"
    name = f"local_mmlu_{subject}"
    (tmp_path / "task.yaml").write_text(
        f"include: {template}\ntask: {name}\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    test: {tmp_path}/test.jsonl\n    dev: {tmp_path}/dev.jsonl\n"
        f"description: \"The following are multiple choice questions (with answers) about "
        f"{subject.replace('_', ' ')}.\\n\\n\"\n")
    tm = TaskManager(include_path=str(tmp_path), include_defaults=False)
    lm_task = tm.load([name])["tasks"][name]
    lm_task.set_config(key="num_fewshot", value=shots)
    lm_task.build_all_requests(limit=limit, rank=0, world_size=1)
    by_doc: dict[int, list] = {}
    for inst in lm_task.instances:
        by_doc.setdefault(inst.doc_id, []).append(inst.arguments)
    return by_doc


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("shots", [0, 5])
def test_requests_equal_lm_eval(tmp_path, monkeypatch, subject, shots):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    limit = 4
    theirs = lm_eval_requests(tmp_path, subject, shots, limit)
    ours = [r for r in load_task("mmlu").requests(shots, limit) if r.group == subject]
    assert len(ours) == len(theirs) == limit
    for i, req in enumerate(ours):
        assert [(req.context, c) for c in req.continuations] == [tuple(a) for a in theirs[i]]


def test_literal_none_answers_survive_loading():
    task = load_task("mmlu")
    nones = [d for s in task.groups() for d in task.docs("test", s) if "None" in d["choices"]]
    assert len(nones) >= 10  # 12 cells in the whole test+dev data hold the text "None"
    assert all(isinstance(c, str) for d in nones for c in d["choices"])


def test_subset_is_stratified_and_ordered():
    reqs = load_task("mmlu").requests(0, 2)
    assert len(reqs) == 57 * 2
    assert reqs[0].doc_id == "abstract_algebra/0" and reqs[1].doc_id == "abstract_algebra/1"
