"""The openvino engine's serving front: openvino-genai's ContinuousBatchingPipeline on the same exported folder (paged
KV cache; a request joins the running batch when it is added and leaves when done), run with the engine's own
precision knobs. One thread owns the pipeline: it adds the requests submitted since its last step, steps, and turns
each request's streamed tokens into the callbacks LoadGen needs. Greedy, fixed length (EOS ignored)."""
from __future__ import annotations

import queue
import threading
import time
from pathlib import Path


class OpenVinoServer:
    def __init__(self, folder: Path, options: dict, threads: int, cache_gb: float = 1.0):
        import openvino_genai as genai

        config = genai.SchedulerConfig()
        config.cache_size = max(1, int(round(cache_gb)))  # GB of KV cache blocks
        config.max_num_batched_tokens = 1024
        self.pipe = genai.ContinuousBatchingPipeline(str(folder), config, "CPU",
                                                     {**options, "INFERENCE_NUM_THREADS": str(threads)})
        self.genai = genai
        self.incoming: queue.Queue = queue.Queue()
        self.active: dict[str, list] = {}
        self.tokens: dict[str, list[int]] = {}
        self.running = True
        self.loop = threading.Thread(target=self._loop, daemon=True)
        self.loop.start()

    def submit(self, request_id, prompt_ids, new_tokens: int, on_first_token, on_done) -> None:
        self.incoming.put((f"r{request_id}", list(map(int, prompt_ids)), int(new_tokens), on_first_token, on_done))

    def _add(self, rid, ids, new_tokens, on_first, on_done) -> None:
        import numpy as np
        import openvino as ov

        gc = self.genai.GenerationConfig()
        gc.max_new_tokens, gc.ignore_eos = new_tokens, True
        handle = self.pipe.add_request(len(self.tokens) + len(self.active), ov.Tensor(np.array([ids], np.int64)), gc)
        self.active[rid] = [handle, on_first, on_done, []]

    def _loop(self) -> None:
        while self.running:
            while not self.incoming.empty():
                self._add(*self.incoming.get())
            if not self.active:
                time.sleep(0.001)
                continue
            self.pipe.step()
            for rid, (handle, on_first, on_done, got) in list(self.active.items()):
                if handle.can_read():
                    for out in handle.read().values():
                        if not got and len(out.generated_ids):
                            on_first()
                        got += list(out.generated_ids)
                if handle.get_status() == self.genai.GenerationStatus.FINISHED:
                    self.tokens[rid] = got
                    del self.active[rid]
                    on_done(len(got))

    def wait_idle(self, timeout_s: float = 120) -> None:
        deadline = time.time() + timeout_s
        while (self.active or not self.incoming.empty()) and time.time() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.running = False
        self.loop.join(10)
        self.pipe = None
