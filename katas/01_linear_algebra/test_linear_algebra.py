"""Tests for katas/01_linear_algebra/linear_algebra.py."""

import pytest
import torch


@pytest.mark.kata("coordinates_in_basis")
def test_coordinates_rebuild_the_vector(impl):
    basis = torch.randn(5, 5, dtype=torch.float64)
    v = torch.randn(5, dtype=torch.float64)
    c = impl.coordinates_in_basis(basis, v)
    torch.testing.assert_close(
        basis @ c, v, msg=lambda m: f"basis @ coordinates should give back v. {m}\nDid you use basis.T by mistake?"
    )
