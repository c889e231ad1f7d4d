"""Engines turn tokens into logits and tokens. Measurement and evaluation talk to this narrow interface only:

    generate(input_ids [B, T], new_tokens, on_token) -> generated ids [B, new_tokens]   (greedy, fixed length)
    logprobs(seqs: list[list[int]], positions: list[list[int]]) -> list of float32 [len(positions_i), vocab]
    max_length: int                                                                      (context window)

so the llama.cpp engine is one more engine, not a second pipeline."""
