"""The shape checker itself: a wrongly shaped argument or return value is a jaxtyping error
that names the dimension, raised before any numeric assertion gets a chance to run."""

import jaxtyping
import pytest
import torch
from jaxtyping import Float
from torch import Tensor

from katakit import kata


@kata
def row_sums(a: Float[Tensor, "n d"]) -> Float[Tensor, "n"]:
    return a.sum(dim=1, keepdim=True)  # a classic mistake: [n, 1] where [n] is due


@kata
def scale_rows(a: Float[Tensor, "n d"], weights: Float[Tensor, "n"]) -> Float[Tensor, "n d"]:
    return a * weights[:, None]


class Doubler(torch.nn.Module):
    @kata
    def forward(self, x: Float[Tensor, "batch d"]) -> Float[Tensor, "batch d"]:
        return torch.cat([x, x], dim=-1)


def test_a_wrongly_shaped_return_is_a_shape_error_naming_the_dimensions():
    with pytest.raises(jaxtyping.TypeCheckError) as error:
        row_sums(torch.ones(3, 5))
    message = str(error.value)
    assert "return value" in message
    assert "f32[3,1]" in message and "n=3" in message


def test_a_wrongly_shaped_argument_is_reported_before_the_body_runs():
    with pytest.raises(jaxtyping.TypeCheckError, match="parameter 'weights'"):
        scale_rows(torch.ones(3, 5), torch.ones(5))


def test_dimensions_are_bound_across_arguments_and_the_return_of_a_method():
    with pytest.raises(jaxtyping.TypeCheckError, match="return value"):
        Doubler()(torch.ones(2, 3))


def test_dtype_is_checked_too():
    with pytest.raises(jaxtyping.TypeCheckError, match="parameter 'a'"):
        row_sums(torch.ones(3, 5, dtype=torch.int64))


def test_correct_shapes_pass_through():
    torch.testing.assert_close(scale_rows(torch.ones(3, 5), torch.arange(3.0)).sum(dim=1), torch.arange(3.0) * 5)
