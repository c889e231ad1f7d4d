"""What the config files need before Hydra composes them, registered once by every entry point (the command line and
harness.api): the `precision` group's options, one per registered scheme (store_schemes: the registry is their one
source, so no YAML per scheme is kept in step), and OmegaConf resolvers. `${harness_job:gpus,<model.id>,<GPU GiB>}` and its `mem_gb` and `timeout_min` siblings size a cluster
job from the checkpoint (conf/hydra/launcher/slurm_gpu.yaml; harness/models/placement.py job_size)."""
from __future__ import annotations


def _job(field: str, model_id, gpu_gib=80):
    if not model_id:
        return {"gpus": 1, "mem_gb": 64, "timeout_min": 120}[field]
    from harness.models.placement import job_size

    return job_size(str(model_id), float(gpu_gib))[field]


def _cache(part: str) -> str:
    from harness.core.paths import cache_dir

    return str(cache_dir(part))


def store_schemes() -> None:
    """`precision=<name>` for every registered scheme, as Hydra config-group options in its ConfigStore (each option
    is `{name: <name>}`; the scheme's code is the registry's). A user's --config-dir may still add YAML options."""
    from hydra.core.config_store import ConfigStore

    from harness.precision.registry import all_schemes

    store = ConfigStore.instance()
    for name in all_schemes():
        store.store(group="precision", name=name, node={"name": name}, provider="harness")


def register() -> None:
    from omegaconf import OmegaConf

    store_schemes()
    from harness.config.schema import store

    store()  # the sections' dataclasses, group `schema`

    if not OmegaConf.has_resolver("harness_job"):
        OmegaConf.register_new_resolver("harness_job", _job, use_cache=True)
    if not OmegaConf.has_resolver("harness_cache"):
        OmegaConf.register_new_resolver("harness_cache", _cache)
