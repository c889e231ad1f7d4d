"""The torch engine's serving front: transformers' own continuous batching (ContinuousBatchingManager, a paged KV
cache). A request joins the running batch as soon as it is submitted and leaves when it has its tokens; decoding is
greedy and of fixed length (EOS ignored), as in every other measurement of the harness. The manager runs its own
thread; the loop's thread hands it the submitted requests and turns its streamed results into the callbacks LoadGen
needs (first token, done). Block (prefix) sharing is off: the request sets here repeat prompts (64 for 500 queries),
and a shared block would skip a repeated prompt's prefill, which distinct user prompts would not (vLLM's prefix
caching is off for the same reason; openvino-genai's is off by default)."""
from __future__ import annotations

from harness.engines.serving import ServingLoop


class TorchServer(ServingLoop):
    def __init__(self, model, max_memory_percent: float = 0.05, pad_id: int = 0, max_batch_tokens: int | None = None):
        from transformers import GenerationConfig

        config = GenerationConfig(do_sample=False, eos_token_id=-1, pad_token_id=pad_id, max_new_tokens=64)
        kwargs = {}
        try:  # transformers >= 5.2x: bound the paged cache (by default it sizes itself to the memory available)
            from transformers.generation.configuration_utils import ContinuousBatchingConfig

            import inspect

            knobs = {"max_memory_percent": max_memory_percent}
            if max_batch_tokens:
                knobs["max_batch_tokens"] = int(max_batch_tokens)
            if "allow_block_sharing" in inspect.signature(ContinuousBatchingConfig).parameters:
                knobs["allow_block_sharing"] = False
            kwargs["continuous_batching_config"] = ContinuousBatchingConfig(**knobs)
        except ImportError:
            pass
        self.manager = model.init_continuous_batching(generation_config=config, **kwargs)
        self.manager.start()
        super().__init__()

    def _step(self) -> bool:
        while not self.incoming.empty():
            r = self.incoming.get()
            self.active[r["rid"]] = r
            self.manager.add_request(r["prompt"], request_id=r["rid"], max_new_tokens=r["new"], streaming=True)
        if not self.active:
            return False
        result = self.manager.get_result(timeout=0.05)
        if result is None and not self.manager.is_running():
            status = getattr(self.manager, "background_thread_status", None)
            raise RuntimeError(f"transformers' continuous batching stopped: {getattr(status, 'fatal_error', None)!r}")
        r = self.active.get(result.request_id) if result is not None else None
        if r is None:
            return True
        if not r["out"] and result.generated_tokens:
            r["first"]()
        r["out"] = list(result.generated_tokens)
        if str(getattr(result.status, "name", result.status)) == "FINISHED":
            del self.active[result.request_id]
            self._finish(r)
        return True

    def close(self) -> None:
        super().close()
        self.manager.stop(block=True)
