"""Tests for katas/05_attention/attention.py."""

import pytest
import torch


@pytest.mark.kata("MultiHeadAttention")
def test_multi_head_attention_pattern_rows_sum_to_one(impl):
    attention = impl.MultiHeadAttention(d_model=12, n_heads=3, d_head=4)
    pattern = attention.pattern(torch.randn(2, 5, 12))
    torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 3, 5))
