"""Foundations every stage uses and that import no stage: the error classes, logging, the cache and data folders,
atomic and validated cache files, process lifetime, registries, the shipped corpus, the environment record, quiet
imports and the configuration's identity. The stages (models -> precision -> engines -> measure -> evaluate ->
record -> analysis -> reproduce) import from here; orchestration (harness/*.py at the root) imports from both."""
