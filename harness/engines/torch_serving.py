"""The torch engine's serving front: transformers' own continuous batching (ContinuousBatchingManager, a paged KV
cache). A request joins the running batch as soon as it is submitted and leaves when it has its tokens; decoding is
greedy and of fixed length (EOS ignored), as in every other measurement of the harness. A pump thread turns the
manager's streamed results into the callbacks LoadGen needs (first token, done)."""
from __future__ import annotations

import threading
import time


class TorchServer:
    def __init__(self, model, max_memory_percent: float = 0.2, pad_id: int = 0):
        from transformers import GenerationConfig

        config = GenerationConfig(do_sample=False, eos_token_id=-1, pad_token_id=pad_id, max_new_tokens=64)
        kwargs = {}
        try:  # transformers >= 5.2x: bound the paged cache (by default it sizes itself to the memory available)
            from transformers.generation.configuration_utils import ContinuousBatchingConfig

            kwargs["continuous_batching_config"] = ContinuousBatchingConfig(max_memory_percent=max_memory_percent)
        except ImportError:
            pass
        self.manager = model.init_continuous_batching(generation_config=config, **kwargs)
        self.manager.start()
        self.callbacks: dict[str, list] = {}
        self.tokens: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        self.running = True
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def submit(self, request_id, prompt_ids, new_tokens: int, on_first_token, on_done) -> None:
        rid = f"r{request_id}"
        with self.lock:
            self.callbacks[rid] = [on_first_token, on_done, False]
        self.manager.add_request(list(map(int, prompt_ids)), request_id=rid, max_new_tokens=int(new_tokens),
                                 streaming=True)

    def _pump(self) -> None:
        while self.running:
            result = self.manager.get_result(timeout=0.05)
            if result is None:
                continue
            with self.lock:
                cb = self.callbacks.get(result.request_id)
            if cb is None:
                continue
            if not cb[2] and result.generated_tokens:
                cb[2] = True
                cb[0]()
            if str(getattr(result.status, "name", result.status)) == "FINISHED":
                self.tokens[result.request_id] = list(result.generated_tokens)
                with self.lock:
                    self.callbacks.pop(result.request_id, None)
                cb[1](len(result.generated_tokens))

    def wait_idle(self, timeout_s: float = 120) -> None:
        deadline = time.time() + timeout_s
        while self.callbacks and time.time() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.running = False
        self.manager.stop(block=True)
        self.pump.join(5)
