"""The llama.cpp engine's serving front: what llama.cpp's own server does, with its Python binding. A context with
`slots` sequence ids; one thread owns it and, each step, builds one `llama_batch` holding the prompts of the requests
admitted into free slots (prefill) and one token of every request already decoding; after the decode each request
takes its greedy token, a finished request's sequence is removed from the KV cache and its slot refills with the next
waiting request. Fixed length (EOS ignored)."""
from __future__ import annotations

import queue
import threading
import time

import numpy as np


class LlamaCppServer:
    def __init__(self, engine, slots: int = 16, max_tokens_per_request: int = 512):
        self.engine, self.slots = engine, slots
        self.ctx, self.batch = engine._context_for(slots, slots * max_tokens_per_request)
        self.ctx.kv_cache_clear()
        self.n_batch = engine._multi.n_ctx if engine._multi else 512
        self.incoming: queue.Queue = queue.Queue()
        self.free = list(range(slots))
        self.active: dict[int, dict] = {}  # slot -> request state
        self.tokens: dict[str, list[int]] = {}
        self.running = True
        self.loop = threading.Thread(target=self._loop, daemon=True)
        self.loop.start()

    def submit(self, request_id, prompt_ids, new_tokens: int, on_first_token, on_done) -> None:
        self.incoming.put({"rid": f"r{request_id}", "prompt": list(map(int, prompt_ids)), "new": int(new_tokens),
                           "first": on_first_token, "done": on_done, "out": []})

    def _loop(self) -> None:
        while self.running:
            b = self.batch.batch
            n, rows = 0, []  # rows: (slot, batch index whose logits give its next token)
            for slot, r in self.active.items():  # one token of each request already decoding
                b.token[n], b.pos[n], b.n_seq_id[n], b.seq_id[n][0], b.logits[n] = \
                    r["out"][-1], len(r["prompt"]) + len(r["out"]) - 1, 1, slot, True
                rows.append((slot, n))
                n += 1
            while self.free and not self.incoming.empty() and n + len(self.incoming.queue[0]["prompt"]) <= self.n_batch:
                r, slot = self.incoming.get(), self.free.pop(0)
                for pos, tok in enumerate(r["prompt"]):
                    b.token[n], b.pos[n], b.n_seq_id[n], b.seq_id[n][0], b.logits[n] = tok, pos, 1, slot, False
                    n += 1
                b.logits[n - 1] = True
                rows.append((slot, n - 1))
                self.active[slot] = r
            if not n:
                time.sleep(0.001)
                continue
            b.n_tokens = n
            self.ctx.decode(self.batch)
            for slot, i in rows:
                r = self.active[slot]
                row = np.ctypeslib.as_array(self.ctx.get_logits_ith(i), shape=(self.engine.vocab_size,))
                r["out"].append(int(row.argmax()))
                if len(r["out"]) == 1:
                    r["first"]()
                if len(r["out"]) == r["new"]:
                    self.ctx.kv_cache_seq_rm(slot, -1, -1)
                    del self.active[slot]
                    self.free.append(slot)
                    self.tokens[r["rid"]] = r["out"]
                    r["done"](len(r["out"]))

    def wait_idle(self, timeout_s: float = 120) -> None:
        deadline = time.time() + timeout_s
        while (self.active or not self.incoming.empty()) and time.time() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.running = False
        self.loop.join(10)
