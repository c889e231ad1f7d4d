"""Configurations refused by the checks before anything loads (harness/config_check.py), in-process."""
import re
from pathlib import Path

import pytest

from harness.api import compose
from harness.config_check import check_values
from harness.core.errors import ConfigError


def test_a_loadgen_profile_without_a_latency_bound_is_refused_before_the_search():
    cfg = compose(["model=tiny-random", "bench=loadgen", "bench.loadgen.profiles=[server,batch1]"])
    with pytest.raises(ConfigError, match=r"\['batch1'\].*needs a profile with a TTFT or TPOT bound"):
        check_values(cfg)
    with pytest.raises(ConfigError, match=r"\['chat'\] is not allowed: expected names of conf/slo/"):
        check_values(compose(["model=tiny-random", "bench=loadgen", "bench.loadgen.profiles=[chat]"]))


def test_a_new_loadgen_profile_is_one_yaml(tmp_path, monkeypatch):
    """A profile added to conf/slo/ is searchable by LoadGen with no column declared for it (its lines go to the
    side table <stem>.loadgen.csv)."""
    import shutil

    import harness.profiles.slo as slo

    for f in slo.CONF.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "chat.yaml").write_text("name: chat\nttft_ms: 800\ntpot_ms: 80\npercentile: 90\n")
    monkeypatch.setattr(slo, "CONF", tmp_path)
    check_values(compose(["model=tiny-random", "bench=loadgen", "bench.loadgen.profiles=[server,chat]"]))


def test_an_slo_percentile_no_run_records_is_refused(tmp_path, monkeypatch):
    import harness.profiles.slo as slo

    (tmp_path / "p95.yaml").write_text("name: p95\nttft_ms: 500\ntpot_ms: 50\npercentile: 95\n")
    (tmp_path / "p90.yaml").write_text("name: p90\nttft_ms: 500\ntpot_ms: 50\npercentile: 90\n")
    monkeypatch.setattr(slo, "CONF", tmp_path)
    with pytest.raises(ConfigError, match=r"percentile=95 is not recorded; the runs record p50, p90, p99"):
        slo.load_slo("p95")
    assert slo.load_slo("p90").percentile == 90


def test_a_misspelt_key_added_with_plus_is_refused_with_the_nearest_key():
    with pytest.raises(ConfigError, match=r"^bench.level_time is not a configuration key: did you mean "
                                          r"bench.level_time_s\?"):
        check_values(compose(["model=tiny-random", "+bench.level_time=5"]))
    with pytest.raises(ConfigError, match=r"^progres is not a configuration key: did you mean progress\?"):
        check_values(compose(["model=tiny-random", "+progres=false"]))
    # free-form architecture keys and a leaf given a mapping stay allowed
    check_values(compose(["model=tiny-random", "+model.arch.head_dim=16", "engine=torch",
                          "engine.max_memory={0: 70GiB}"]))


@pytest.mark.parametrize("override, says", [
    ("progress=maybe", "progress='maybe' is not allowed: expected true or false"),
    ("engine.kv_cache_gib=lots", "engine.kv_cache_gib='lots' is not allowed: expected a whole number of GiB"),
    ("engine.inference_precision=f64", "engine.inference_precision='f64' is not allowed: expected f32, bf16 or f16"),
])
def test_values_of_keys_that_had_no_rule_are_checked(override, says):
    engine = {"progress": "torch", "engine.kv_cache_gib": "vllm"}.get(override.split("=")[0], "openvino")
    with pytest.raises(ConfigError, match=re.escape(says)):
        check_values(compose(["model=tiny-random", f"engine={engine}", override]))


@pytest.mark.parametrize("sweep", sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "sweep")
                                         .glob("*.yaml")))
def test_every_shipped_sweep_declares_only_known_keys(sweep):
    check_values(compose(["model=tiny-random", f"+sweep={sweep}"]))


def test_a_results_name_over_the_file_system_limit_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="a file or folder name over 255 bytes"):
        check_values(compose(["model=tiny-random", f"results.path={tmp_path / ('a' * 250)}.csv"]))  # + .predictions
    check_values(compose(["model=tiny-random", f"results.path={tmp_path / ('a' * 200)}.csv"]))


CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("bench", "capability", "engine", "eval", "model", "quality")


@pytest.mark.parametrize("group, option", sorted((g, p.stem) for g in GROUPS for p in (CONF / g).glob("*.yaml")))
def test_every_shipped_option_of_every_group_passes_the_dataclasses(group, option):
    extra = ["model.id=some-org/some-model"] if (group, option) == ("model", "hf") else []
    config = check_values(compose(["model=tiny-random", f"{group}={option}", *extra]))
    assert config.model.name and config.engine.name  # typed: the sections are dataclasses, defaults filled


def test_every_registered_scheme_is_a_plain_precision_name():
    from harness.precision.registry import all_schemes

    for name in all_schemes():
        assert check_values(compose(["model=tiny-random", f"precision={name}"])).precision.name == name


@pytest.mark.parametrize("override, says", [
    ("bench.repeats=0", "bench.repeats=0 is not allowed: expected an integer >= 1"),
    ("bench.min_gain=-2", "bench.min_gain=-2 is not allowed: expected a number >= -1"),
    ("eval.shots=-1", "eval.shots=-1 is not allowed"),
    ("quality.context=1", "quality.context=1 is not allowed: expected an integer >= 2"),
    ("calibration.samples=0", "calibration.samples=0 is not allowed: expected an integer >= 1"),
    ("runner.timeout_s=0", "runner.timeout_s=0 is not allowed: expected a number > 0"),
    ("llamacpp.n_ctx=4", "llamacpp.n_ctx=4 is not allowed: expected an integer >= 16"),
    ("model.seed=-3", "model.seed=-3 is not allowed: expected an integer >= 0"),
    ("device=tpu", "device='tpu' is not allowed: expected auto, cpu or cuda"),
])
def test_a_value_out_of_its_range_is_refused_naming_the_key(override, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        check_values(compose(["model=tiny-random", f"++{override}"]))  # ++: set whether the group declares it or not


def test_the_key_table_lists_every_declared_key_with_its_help():
    from harness.config.schema import declared_keys, describe

    table = describe()
    leaves, _ = declared_keys()
    missing = [k for k in leaves if f"`{k}`" not in table]
    assert not missing, missing
    assert "| `bench.repeats` | int | `5` | timed generations (median and spread) |" in table
    assert "| `bench.loadgen.profiles` | list of str | `[server, interactive]` |" in table


def test_the_documented_key_table_is_generated_from_the_dataclasses():
    from harness.record.readme import CONFIG_DOC, render

    text = CONFIG_DOC.read_text()
    assert render(text, CONFIG_DOC) == text, "run `python -m harness.record.readme` to regenerate docs/reference/config.md"


def test_a_renamed_key_is_refused_with_its_new_name_and_hashes_as_before():
    """quality.baseline became quality.reference (and model.baseline model.source_weights): the old name is refused
    naming the new one, and a config hashes under the old names, so recorded rows keep resuming."""
    from harness.config.schema import check_keys
    from harness.config_key import config_hash, run_config

    with pytest.raises(ConfigError, match=r"quality.baseline was renamed quality.reference"):
        check_keys({"quality": {"baseline": "fp32"}})
    cfg = compose(["model=smollm2-135m", "precision=fp32"])
    today = run_config(cfg)
    old = {**today, "model": {("baseline" if k == "source_weights" else k): v for k, v in today["model"].items()},
           "quality": {("baseline" if k == "reference" else k): v for k, v in today["quality"].items()}}
    assert "source_weights" in today["model"] and config_hash(cfg) == config_hash(old)
    assert config_hash(cfg) != config_hash({**today, "model": {**today["model"], "source_weights": "other"}})
