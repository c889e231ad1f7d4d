"""Several questions, each a context with its continuations, in one sequence: the layout engines use to score
multiple-choice questions with each context computed once (lm-eval computes it once per choice).

Each question's context comes first, then each continuation but its last token (nothing reads the logits after it);
then the next question. A token sees earlier tokens of its own question only: a context token its context, a
continuation token the context and its own continuation. Position ids restart for each question and, after the
context, for each continuation, so every log-probability is the one a separate `context + continuation` forward
gives. Nothing is padded and only the rows that predict a continuation token are asked for. The torch engine turns
this into a 4D attention mask (`sees`)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Packed:
    tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # restart per question, and per continuation after the context
    segment: list[int] = field(default_factory=list)  # one id per context and per continuation, unique in the pack
    context_of: list[int] = field(default_factory=list)  # the segment id of the token's question's context
    targets: list[list[list[tuple[int, int]]]] = field(default_factory=list)  # [question][continuation] -> (index
    # whose logits predict the token, token id)

    def longest_question(self) -> int:
        """Tokens of the longest question (its context and its longest continuation)."""
        return max((p + 1 for p in self.positions), default=0)


def pack(items: list[tuple[list[int], list[list[int]]]]) -> Packed:
    out, seg = Packed(), 0
    for context, continuations in items:
        if not context or not continuations or not all(continuations):
            raise ValueError("a context and each of its continuations need at least one token")
        n, ctx_seg, ctx_end = len(context), seg, len(out.tokens) + len(context) - 1
        out.tokens += context
        out.positions += range(n)
        out.segment += [ctx_seg] * n
        out.context_of += [ctx_seg] * n
        question = []
        for cont in continuations:
            seg += 1
            start, own = len(out.tokens), cont[:-1]
            out.tokens += own
            out.positions += range(n, n + len(own))
            out.segment += [seg] * len(own)
            out.context_of += [ctx_seg] * len(own)
            question.append(list(zip([ctx_end, *range(start, start + len(own))], cont)))
        out.targets.append(question)
        seg += 1
    return out


def sees(packed: Packed):
    """[T, T] bool: token i attends to token j (j <= i, and j is in i's own segment or in i's question's context)."""
    import torch

    seg, ctx = torch.tensor(packed.segment), torch.tensor(packed.context_of)
    return torch.tril((seg[None, :] == seg[:, None]) | (seg[None, :] == ctx[:, None]))


def rows(packed: Packed) -> list[int]:
    """The indices whose logits are needed, sorted."""
    return sorted({r for question in packed.targets for cont in question for r, _ in cont})
