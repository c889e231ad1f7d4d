"""Every task renders exactly the (context, continuation) requests that lm-evaluation-harness 0.4.13's stock task of
the same name builds for the same documents and shots. lm-eval's own task YAML is included and only its dataset
location is pointed at the shipped files (written as JSONL in the Hugging Face row layout lm-eval reads)."""
import json
from pathlib import Path

import pytest

from harness.evaluate.accuracy import normalised_argmax
from harness.evaluate.tasks import load_task, task_names

LM_EVAL_YAML = {  # our task -> (lm-eval's stock YAML, the split we evaluate)
    "arc_easy": ("arc/arc_easy.yaml", "test"),
    "arc_challenge": ("arc/arc_challenge.yaml", "test"),
    "openbookqa": ("openbookqa/openbookqa.yaml", "test"),
    "piqa": ("piqa/piqa.yaml", "validation"),
}


def _lm_eval_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def _build(tmp_path: Path, name: str, yaml_text: str, shots: int, limit: int):
    from lm_eval.tasks import TaskManager

    (tmp_path / f"{name}.yaml").write_text(yaml_text)
    tm = TaskManager(include_path=str(tmp_path), include_defaults=False)
    task = tm.load([name])["tasks"][name]
    task.set_config(key="num_fewshot", value=shots)
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    by_doc: dict[int, list] = {}
    for inst in task.instances:
        by_doc.setdefault(inst.doc_id, []).append(tuple(inst.arguments))
    return by_doc


def _write(path: Path, docs):
    with open(path, "w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")


def lm_eval_mmlu(tmp_path, ours: str, subject: str, shots: int, limit: int):
    task = load_task(ours)
    _write(tmp_path / "test.jsonl", task.docs("test", subject))
    _write(tmp_path / "dev.jsonl", task.docs("dev", subject))
    folder = "default" if ours == "mmlu" else "continuation"
    template = "_default_template_yaml" if ours == "mmlu" else "_continuation_template_yaml"
    lead = "multiple choice questions" if ours == "mmlu" else "questions"
    name = f"local_{ours}_{subject}"
    return _build(tmp_path, name,
                  f"include: {_lm_eval_dir() / 'mmlu' / folder / template}\ntask: {name}\ndataset_path: json\n"
                  f"dataset_name: null\ndataset_kwargs:\n  data_files:\n    test: {tmp_path}/test.jsonl\n"
                  f"    dev: {tmp_path}/dev.jsonl\n"
                  f"description: \"The following are {lead} (with answers) about "
                  f"{subject.replace('_', ' ')}.\\n\\n\"\n", shots, limit)


@pytest.mark.parametrize("ours", ["mmlu", "mmlu_cloze"])
@pytest.mark.parametrize("subject", ["abstract_algebra", "college_mathematics", "high_school_us_history"])
@pytest.mark.parametrize("shots", [0, 5])
def test_mmlu_family_equals_lm_eval(tmp_path, monkeypatch, ours, subject, shots):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    limit = 4
    theirs = lm_eval_mmlu(tmp_path, ours, subject, shots, limit)
    mine = [r for r in load_task(ours).requests(shots, limit) if r.group == subject]
    assert len(mine) == len(theirs) == limit
    for i, req in enumerate(mine):
        assert [(req.context, c) for c in req.continuations] == theirs[i]


@pytest.mark.parametrize("ours", sorted(LM_EVAL_YAML))
def test_zero_shot_task_equals_lm_eval(tmp_path, monkeypatch, ours):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    stock, split = LM_EVAL_YAML[ours]
    task = load_task(ours)
    docs = task.docs(split, ours)
    _write(tmp_path / "docs.jsonl", docs)
    name = f"local_{ours}"
    splits = {"training_split": "null", "validation_split": "null", "test_split": "null"}
    splits[f"{split}_split" if split != "validation" else "validation_split"] = split
    yaml_text = (f"include: {_lm_eval_dir() / stock}\ntask: {name}\ndataset_path: json\ndataset_name: null\n"
                 f"dataset_kwargs:\n  data_files:\n    {split}: {tmp_path}/docs.jsonl\n"
                 + "".join(f"{k}: {v}\n" for k, v in splits.items()))
    limit = 40  # enough to include 3- and 5-choice and numbered ARC items? checked separately below
    theirs = _build(tmp_path, name, yaml_text, 0, limit)
    mine = task.requests(0, limit)
    assert len(mine) == len(theirs) == limit
    for i, req in enumerate(mine):
        assert [(req.context, c) for c in req.continuations] == theirs[i], req.doc_id


@pytest.mark.parametrize("ours,keys", [("arc_easy", "arc/official-answer-keys/ARC-Easy-Test-question-answers.jsonl"),
                                       ("arc_challenge",
                                        "arc/official-answer-keys/ARC-Challenge-Test-question-answers.jsonl")])
def test_arc_gold_matches_the_official_keys_with_3_5_and_numbered_choices(ours, keys):
    from harness.core.paths import DATA_DIR

    task = load_task(ours)
    docs = task.docs("test", ours)
    official = [json.loads(line) for line in (DATA_DIR / keys).read_text().splitlines() if line.strip()]
    assert [d["id"] for d in docs] == [k["id"] for k in official]
    for d, k in zip(docs, official):
        assert d["choices"]["label"][task.doc_to_target(d)] == k["answerKey"]
    sizes = {len(d["choices"]["text"]) for d in docs}
    assert {3, 4, 5} <= sizes
    assert any(d["choices"]["label"][0] == "1" for d in docs)


def test_every_task_loads_and_renders():
    for name in task_names():
        reqs = load_task(name).requests(0, 2)
        assert reqs and all(0 <= r.gold < len(r.continuations) for r in reqs)


def test_acc_norm_on_hand_made_loglikelihoods():
    # raw argmax picks the short answer; per-character normalisation picks the long one
    lls, lengths = [-4.0, -6.0], [2, 12]
    assert normalised_argmax(lls, lengths) == 1
    assert normalised_argmax([-4.0, -4.0], [4, 4]) == 0  # ties: first


def test_literal_none_answers_survive_loading():
    task = load_task("mmlu")
    nones = [d for s in task.groups() for d in task.docs("test", s) if "None" in d["choices"]]
    assert len(nones) >= 10  # 12 cells in the whole test+dev data hold the text "None"
    assert all(isinstance(c, str) for d in nones for c in d["choices"])
    cloze = [r for r in load_task("mmlu_cloze").requests(0, None) if " None" in r.continuations]
    assert cloze


def test_subset_is_stratified_and_ordered():
    reqs = load_task("mmlu").requests(0, 2)
    assert len(reqs) == 57 * 2
    assert reqs[0].doc_id == "abstract_algebra/0" and reqs[1].doc_id == "abstract_algebra/1"


def test_a_subject_subset_keeps_the_named_subjects_in_order_and_refuses_unknown_ones():
    task = load_task("mmlu")
    reqs = task.requests(5, 5, ["virology", "anatomy"])
    assert [r.doc_id for r in reqs[:1] + reqs[5:6]] == ["anatomy/0", "virology/0"] and len(reqs) == 10
    assert reqs[0].context.startswith("The following are multiple choice questions (with answers) about anatomy")
    with pytest.raises(KeyError, match="unknown subject.*astrology.*choices: abstract_algebra"):
        task.requests(5, 5, ["astrology"])


def test_every_task_has_its_lm_eval_equality_case():
    # a new task YAML without its case above (LM_EVAL_YAML, or the MMLU family's) fails here: add-a-task step 3
    assert set(task_names()) == set(LM_EVAL_YAML) | {"mmlu", "mmlu_cloze"}
