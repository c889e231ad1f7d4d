"""What the engines' serving fronts share (continuous batching for harness/measure/loadgen.py): requests are
submitted from LoadGen's threads; one thread owns the runtime and calls the front's `_step`; a request is a dict
(`rid`, `prompt`, `new` tokens, `first` and `done` callbacks, `out` tokens so far); `tokens` keeps each finished
request's tokens; `wait_idle` and `close`."""
from __future__ import annotations

import queue
import threading
import time


class ServingLoop:
    def __init__(self):
        self.incoming: queue.Queue = queue.Queue()
        self.active: dict = {}
        self.tokens: dict[str, list[int]] = {}
        self.errors: list[str] = []  # requests that failed (the fronts here fail whole, in their loop thread)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def submit(self, request_id, prompt_ids, new_tokens: int, on_first_token, on_done) -> None:
        if self.errors:  # the runtime's loop has stopped: answered at once, and the caller refuses the run
            on_done(0)
            return
        self.incoming.put({"rid": f"r{request_id}", "prompt": list(map(int, prompt_ids)), "new": int(new_tokens),
                           "first": on_first_token, "done": on_done, "out": []})

    def _run(self) -> None:
        try:
            while self.running:
                if not self._step():
                    time.sleep(0.001)
        except Exception as exc:  # noqa: BLE001 - every waiting request is answered (0 tokens), never left hanging
            self.errors.append(f"{type(exc).__name__}: {exc}")
            for r in list(self.active.values()):
                r["done"](0)
            self.active.clear()
            while not self.incoming.empty():
                self.incoming.get()["done"](0)

    def _step(self) -> bool:
        """Admit, advance and finish requests; False when there was nothing to do."""
        raise NotImplementedError

    def _finish(self, r: dict) -> None:
        self.tokens[r["rid"]] = r["out"]
        r["done"](len(r["out"]))

    def wait_idle(self, timeout_s: float = 120) -> None:
        deadline = time.time() + timeout_s
        while (self.active or not self.incoming.empty()) and time.time() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.running = False
        self.thread.join(10)
