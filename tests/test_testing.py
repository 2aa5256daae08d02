"""katakit.testing.assert_close: what a learner reads when a kata's numbers are wrong."""

import pytest
import torch

from katakit.testing import assert_close


def test_matching_tensors_pass_within_the_default_tolerance():
    assert_close(torch.ones(2, 3) + 1e-7, torch.ones(2, 3), what="x")


def test_a_wrong_value_names_the_quantity_the_index_and_the_likely_mistake():
    expected = torch.zeros(2, 3)
    actual = expected.clone()
    actual[1, 2] = 0.5
    with pytest.raises(AssertionError) as error:
        assert_close(actual, expected, what="the pattern", hint="softmax over the wrong axis?")
    message = str(error.value)
    assert "the pattern is wrong: 1 of 6 values differ" in message
    assert "index [1, 2]: got 0.5, expected 0" in message
    assert "Likely mistake: softmax over the wrong axis?" in message


def test_a_wrong_shape_is_reported_before_the_values():
    with pytest.raises(AssertionError, match=r"has shape \[3, 1\], expected \[3\]"):
        assert_close(torch.zeros(3, 1), torch.zeros(3), what="the sums")


def test_dtype_is_checked_unless_asked_not_to():
    with pytest.raises(AssertionError, match="dtype torch.float32, expected torch.float64"):
        assert_close(torch.zeros(2), torch.zeros(2, dtype=torch.float64), what="x")
    assert_close(torch.zeros(2), torch.zeros(2, dtype=torch.float64), what="x", check_dtype=False)


def test_a_dtype_mismatch_names_the_dtype_mistake_not_the_value_hint():
    with pytest.raises(AssertionError) as info:
        assert_close(torch.zeros(2), torch.zeros(2, dtype=torch.float64), what="x", hint="the wrong axis?")
    assert "the wrong axis" not in str(info.value) and "dtype=x.dtype" in str(info.value)


def test_tolerances_follow_torch_testing():
    assert_close(torch.tensor([1.0]), torch.tensor([1.05]), what="x", atol=0.1, rtol=0)
    with pytest.raises(AssertionError):
        assert_close(
            torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0 + 1e-6], dtype=torch.float64), what="x"
        )


def test_nan_is_a_mismatch_unless_equal_nan():
    nan = torch.tensor([float("nan"), 1.0])
    with pytest.raises(AssertionError, match="1 of 2 values differ"):
        assert_close(nan, nan.clone(), what="x")
    assert_close(nan, nan.clone(), what="x", equal_nan=True)


def test_integers_must_match_exactly():
    with pytest.raises(AssertionError):
        assert_close(torch.tensor([1, 2]), torch.tensor([1, 3]), what="indices")


def test_a_non_tensor_is_reported_as_such():
    with pytest.raises(AssertionError, match="should be a tensor, got list"):
        assert_close([1.0], torch.tensor([1.0]), what="x")


@pytest.mark.parametrize("dtype", [torch.bool, torch.complex64])
def test_booleans_and_complex_numbers_are_compared_too(dtype):
    with pytest.raises(AssertionError, match="1 of 2 values differ"):
        assert_close(torch.tensor([1, 0], dtype=dtype), torch.tensor([1, 1], dtype=dtype), what="x")
