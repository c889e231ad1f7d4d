"""The shared-context layout: each question's context once, continuations restart their positions after it, and a
token sees only its own question's context and its own continuation."""
import pytest

from harness.engines.shared_context import pack, rows, sees


def test_layout_positions_and_targets():
    p = pack([([10, 11, 12], [[20, 21], [30]]), ([40], [[50, 51, 52]])])
    assert p.tokens == [10, 11, 12, 20, 40, 50, 51]
    assert p.positions == [0, 1, 2, 3, 0, 1, 2]
    # continuation [20, 21]: 20 predicted by the context's last token (index 2), 21 by 20 (index 3)
    assert p.targets == [[[(2, 20), (3, 21)], [(2, 30)]], [[(4, 50), (5, 51), (6, 52)]]]
    assert rows(p) == [2, 3, 4, 5, 6] and p.longest_question() == 4


def test_each_token_sees_its_context_and_its_own_continuation_only():
    p = pack([([10, 11], [[20, 21, 22], [30, 31]]), ([40, 41], [[50, 51]])])
    # tokens: 10 11 | 20 21 | 30 | 40 41 | 50
    m = sees(p).int().tolist()
    assert m[3] == [1, 1, 1, 1, 0, 0, 0, 0]  # 21: the context, 20 and itself
    assert m[4] == [1, 1, 0, 0, 1, 0, 0, 0]  # 30: the context and itself, not the other continuation
    assert m[7] == [0, 0, 0, 0, 0, 1, 1, 1]  # 50: its own question only
    assert m[5] == [0, 0, 0, 0, 0, 1, 0, 0]  # a new question's first token sees itself


def test_empty_contexts_or_continuations_are_refused():
    with pytest.raises(ValueError):
        pack([([], [[1]])])
    with pytest.raises(ValueError):
        pack([([1], [[]])])
