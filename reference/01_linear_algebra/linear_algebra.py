"""Linear algebra: bases, change of basis, orthogonality, eigenvectors and the SVD."""

import torch
from jaxtyping import Float
from torch import Tensor

from katakit import kata


@kata
def coordinates_in_basis(basis: Float[Tensor, "d d"], v: Float[Tensor, "d"]) -> Float[Tensor, "d"]:
    """Return the coordinates of `v` in the basis whose vectors are the columns of `basis`.

    A vector space has no canonical basis: the same vector has different coordinates in
    different bases. The coordinates c are the weights with `basis @ c == v`.

    Shapes:
        basis: [d, d], column j is the j-th basis vector
        v: [d], coordinates in the standard basis
        returns: [d], coordinates of v in `basis`

    Hints:
        1. Write v as a weighted sum of the columns of `basis`: which equation do the weights solve?
        2. Solve basis @ c = v with torch.linalg.solve; never form the inverse explicitly.
    """
    return torch.linalg.solve(basis, v)
