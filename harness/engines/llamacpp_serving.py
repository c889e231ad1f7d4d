"""The llama.cpp engine's serving front: what llama.cpp's own server does, with its Python binding. A context with
`slots` sequence ids; each step builds one `llama_batch` holding the prompts of the requests admitted into free slots
(prefill) and one token of every request already decoding; after the decode each request takes its greedy token, a
finished request's sequence is removed from the KV cache and its slot refills with the next waiting request. Fixed
length (EOS ignored)."""
from __future__ import annotations

import numpy as np

from harness.engines.serving import ServingLoop


class LlamaCppServer(ServingLoop):
    def __init__(self, engine, slots: int = 16, max_tokens_per_request: int = 512):
        self.engine = engine
        self.ctx, self.batch = engine._context_for(slots, slots * max_tokens_per_request)
        self.ctx.kv_cache_clear()
        self.n_batch = engine._multi.n_ctx  # _context_for sizes the batch to the context
        self.free = list(range(slots))
        super().__init__()

    def _step(self) -> bool:
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
            return False
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
                self._finish(r)
        return True
