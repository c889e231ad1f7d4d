"""Real checkpoints as users have them: a folder saved in bf16 (a published shape, random weights) loads in each
scheme's target precision without a full-precision copy; a folder's row names the folder, and two folders are two
models to the analysis; the hub's answers (gated, unknown, offline) are one line each; a planned split over two GPUs
is accelerate's, computed here without GPUs."""
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from tests.conftest import ROOT, run_harness


def save_checkpoint(folder, **arch):
    """A random-weight Llama checkpoint saved in bf16 with the local tokenizer, as a hub download would look."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.models.local_tokenizer import local_tokenizer

    torch.manual_seed(0)
    config = LlamaConfig(**{"vocab_size": 1024, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
                            "tie_word_embeddings": True, **arch})
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    local_tokenizer(1024).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def smollm2_360m_shape(tmp_path_factory):
    """SmolLM2-360M's published shape (362M parameters, 724 MB in bf16), random weights."""
    return save_checkpoint(tmp_path_factory.mktemp("hub") / "SmolLM2-360M-shape", vocab_size=49152, hidden_size=960,
                           intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                           num_key_value_heads=5, max_position_embeddings=8192, rope_theta=100000.0)


@pytest.mark.parametrize("precision,plan", [("bf16", "cast, read in bfloat16"),
                                            ("torchao-int8wo", "load-time config (TorchAoConfig)"),
                                            ("bnb-nf4", "load-time config (BitsAndBytesConfig)")])
def test_a_bf16_checkpoint_loads_in_its_scheme_without_a_full_precision_copy(smollm2_360m_shape, precision, plan,
                                                                             tmp_path):
    """The load's growth of the run's resident memory stays under 1.5x the bf16 weight bytes (an fp32 load held 2x
    them: ~2.1 GB here). The growth is taken over the process's memory just before the load (its imports,
    ~250 MB, are the same for every scheme)."""
    csv = tmp_path / "r.csv"
    run_harness("model=hf", f"model.id={smollm2_360m_shape}", f"precision={precision}", "eval=none", "quality=none",
                "bench=quick", "bench.new_tokens=2", "bench.warmup=0", "bench.repeats=1", f"results.path={csv}")
    row = pd.read_csv(csv).iloc[-1]
    assert row["status"] == "ok", row["error"]
    bf16_bytes = 361_821_120 * 2
    growth = (row["load_peak_rss_mb"] - row["rss_before_load_mb"]) * 2**20
    assert growth < 1.5 * bf16_bytes, f"{precision}: the load grew the process by {growth / 2**20:.0f} MiB"
    assert row["load_plan"].startswith(plan)
    assert row["model"] == "SmolLM2-360M-shape" and row["model_source"] == "hub"
    assert row["architecture"] == "LlamaForCausalLM" and row["weight_devices"] == "cpu"
    if precision != "bf16":
        assert row["weight_bytes"] < 0.75 * bf16_bytes and row["quantized_fraction"] > 0.8


def test_two_checkpoint_folders_are_two_models_in_a_sweep_and_its_analysis(tmp_path):
    from harness.analysis.report import analyse

    a = save_checkpoint(tmp_path / "tiny-a")
    b = save_checkpoint(tmp_path / "tiny-b", num_hidden_layers=3)
    csv = tmp_path / "sweep.csv"
    run_harness("-m", "model=hf", f"model.id={a},{b}", "precision=bf16,fp32", "eval=none", "quality=none",
                "bench=quick", f"results.path={csv}", f"hydra.sweep.dir={tmp_path / 'multirun'}")
    rows = pd.read_csv(csv)
    assert set(rows["model"]) == {"tiny-a", "tiny-b"} and (rows["status"] == "ok").all()
    assert rows.groupby("model")["model_params"].nunique().eq(1).all()
    assert rows.drop_duplicates("model").set_index("model")["model_params"].is_unique
    analysis = analyse(csv)
    assert analysis.ok["model"].nunique() == 2


def test_a_checkpoint_changed_in_place_is_a_new_configuration(tmp_path):
    from harness.api import compose
    from harness.config_key import config_hash

    folder = save_checkpoint(tmp_path / "ckpt")
    before = config_hash(compose(["model=hf", f"model.id={folder}", "precision=bf16"]))
    save_checkpoint(folder, initializer_range=0.5)  # same shapes, other weights
    after = config_hash(compose(["model=hf", f"model.id={folder}", "precision=bf16"]))
    assert before != after


def test_a_hub_folder_in_the_cache_is_named_by_its_repository(tmp_path):
    from omegaconf import OmegaConf

    from harness.models.identity import model_label, path_name

    snap = tmp_path / "hub" / "models--meta-llama--Llama-3.1-8B" / "snapshots" / "0123456789abcdef0123"
    snap.mkdir(parents=True)
    cfg = OmegaConf.create({"name": "hf", "source": "hub", "id": str(snap)})
    assert model_label(cfg) == "meta-llama/Llama-3.1-8B@0123456789ab"
    assert path_name(cfg) == "meta-llama--Llama-3.1-8B--0123456789ab"  # plain name: no "/" or "@" in paths
    hub = OmegaConf.create({"name": "hf", "source": "hub", "id": "Qwen/Qwen2.5-72B", "revision": "v1"})
    assert model_label(hub) == "Qwen/Qwen2.5-72B@v1"


def _hub_error(kind: str):
    import httpx2 as httpx
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    response = httpx.Response(401 if kind == "gated" else 404, request=httpx.Request("GET", "https://hf.co/x"))
    return (GatedRepoError if kind == "gated" else RepositoryNotFoundError)(f"{kind} repo", response=response)


@pytest.mark.parametrize("kind,line", [("gated", "is a gated model (HF_TOKEN is not set): accept its licence"),
                                       ("missing", "no such model on the hub (a private model needs HF_TOKEN)"),
                                       ("offline", "the hub (https://huggingface.co) could not be reached")])
def test_the_hubs_answers_are_one_line_each(monkeypatch, kind, line):
    import huggingface_hub

    from harness.core.errors import ModelLoadError
    from harness.models import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hub, "cached_snapshot", lambda model_id, revision: None)

    def model_info(self, repo_id, **kwargs):
        if kind == "offline":
            import httpx2 as httpx

            raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution")
        raise _hub_error(kind)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    from omegaconf import OmegaConf

    with pytest.raises(ModelLoadError) as err:
        hub.check_source(OmegaConf.create({"name": "hf", "source": "hub", "id": "meta-llama/Llama-3.1-8B"}))
    assert line in str(err.value) and "\n" not in str(err.value)


def test_a_gated_model_is_refused_before_anything_runs(tmp_path):
    """The command line, offline here: one line, exit 2, no row, no download attempted."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HARNESS_CACHE": str(tmp_path / "cache"),
           "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "harness", "model=hf", "model.id=meta-llama/Llama-3.1-8B",
                           f"results.path={tmp_path / 'r.csv'}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: model.id=meta-llama/Llama-3.1-8B is not in the "
                                                           "local hub cache and HF_HUB_OFFLINE is set")
    assert not (tmp_path / "r.csv").exists()


def test_the_planned_split_over_two_gpus_is_accelerates_and_is_recorded():
    from omegaconf import OmegaConf

    from harness.models.placement import bytes_per_device, gpus_needed, plan_device_map
    from harness.models.random_arch import build_config
    from harness.run import placement_columns

    config = build_config(OmegaConf.load(ROOT / "conf" / "model" / "llama-3.1-8b-arch.yaml"))
    device_map = plan_device_map(config, "bfloat16", {0: "9GiB", 1: "9GiB", "cpu": 0})
    assert set(device_map.values()) == {0, 1}
    per = bytes_per_device(config, "bfloat16", device_map)
    assert set(per) == {"cuda:0", "cuda:1"} and all(v <= 9 * 2**30 for v in per.values())
    assert sum(per.values()) == pytest.approx(8.03e9 * 2, rel=0.01)
    cols = placement_columns(per)
    assert cols["gpu_count"] == 2 and cols["weight_devices"] == "cuda:0,cuda:1"
    assert cols["weights_per_device_mb"].startswith("cuda:0=") and ";cuda:1=" in cols["weights_per_device_mb"]
    # 16 GB of bf16 weights: one 80 GB GPU, two of 10 GB
    assert gpus_needed(config, "bfloat16", 80 * 2**30) == 1 and gpus_needed(config, "bfloat16", 10 * 2**30) == 2
