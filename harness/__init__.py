"""LLM quantisation benchmarking harness."""
