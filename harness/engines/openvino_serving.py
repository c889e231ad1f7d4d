"""The openvino engine's serving front: openvino-genai's ContinuousBatchingPipeline on the same exported folder (paged
KV cache; a request joins the running batch when it is added and leaves when done), run with the engine's own
precision knobs. The loop's thread owns the pipeline: it adds the requests submitted since its last step, steps, and
turns each request's streamed tokens into the callbacks LoadGen needs. Greedy, fixed length (EOS ignored)."""
from __future__ import annotations

from pathlib import Path

from harness.engines.serving import ServingLoop


class OpenVinoServer(ServingLoop):
    def __init__(self, folder: Path, options: dict, threads: int, cache_gb: float = 1.0):
        import openvino_genai as genai

        config = genai.SchedulerConfig()
        config.cache_size = max(1, int(round(cache_gb)))  # GB of KV cache blocks
        config.max_num_batched_tokens = 1024
        self.pipe = genai.ContinuousBatchingPipeline(str(folder), config, "CPU",
                                                     {**options, "INFERENCE_NUM_THREADS": str(threads)})
        self.genai, self.added = genai, 0
        super().__init__()

    def _step(self) -> bool:
        import numpy as np
        import openvino as ov

        while not self.incoming.empty():
            r = self.incoming.get()
            gc = self.genai.GenerationConfig()
            gc.max_new_tokens, gc.ignore_eos = r["new"], True
            r["handle"] = self.pipe.add_request(self.added, ov.Tensor(np.array([r["prompt"]], np.int64)), gc)
            self.added += 1
            self.active[r["rid"]] = r
        if not self.active:
            return False
        self.pipe.step()
        for rid, r in list(self.active.items()):
            if r["handle"].can_read():
                for out in r["handle"].read().values():
                    if not r["out"] and len(out.generated_ids):
                        r["first"]()
                    r["out"] += list(out.generated_ids)
            if r["handle"].get_status() == self.genai.GenerationStatus.FINISHED:
                del self.active[rid]
                self._finish(r)
        return True

    def close(self) -> None:
        super().close()
        self.pipe = None
