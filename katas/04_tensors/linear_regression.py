"""Linear regression three ways: the normal equations, torch.linalg.lstsq, and gradient descent on a device.

The model is y = x W^T + b, with W of shape [d_out, d_in] as in torch.nn.Linear. Fitting it
by least squares minimises the squared error summed over the examples; the closed forms solve
that exactly, gradient descent gets there step by step and is how every bigger model is trained.

Read or watch first (curriculum.toml's `reading`):
- Nicolas Rougier, 100 numpy exercises, the first third (#1-#43), which tensors.py redoes in
  torch:
  https://github.com/rougier/numpy-100
- einops, part 1: einops basics, all of it (rearrange: composing and decomposing axes, the order
  of axes inside a group; reduce, with pooling; repeat; adding and removing axes), for
  einops_katas.py:
  https://einops.rocks/1-einops-basics/
- Tim Rocktäschel, Einsum is All you Need, the worked examples (transpose, sums, column sum,
  matrix-vector and matrix-matrix products, dot, Hadamard and outer products, batch matrix
  multiplication, tensor contraction, bilinear transformation) and the attention case study, for
  einsum_katas.py:
  https://rockt.github.io/2018/04/30/einsum
- Andrej Karpathy, The spelled-out intro to neural networks and backpropagation: building
  micrograd, the comparison with PyTorch and the last part (a training loop by gradient descent,
  and what happens when the gradients are not zeroed), for linear_regression.py:
  https://www.youtube.com/watch?v=VMj-3S1tku0
"""

import torch
from jaxtyping import Float
from torch import Tensor, nn

from katakit import kata


@kata
def least_squares_normal_equations(
    x: Float[Tensor, "n d_in"], y: Float[Tensor, "n d_out"]
) -> tuple[Float[Tensor, "d_out d_in"], Float[Tensor, "d_out"]]:
    """Fit y ~ x W^T + b by least squares, solving the normal equations; return (W, b).

    Append a column of ones to x so that the bias is one more weight: with X = [x, 1], the
    least-squares coefficients B (one column per output) solve X^T X B = X^T y. Solve that square
    system with a linear solver: no explicit inverse, and no torch.linalg.lstsq or pinv, which would
    skip the normal equations (the tests check).

    Shapes:
        x: [n, d_in], one example per row
        y: [n, d_out]
        returns: (W [d_out, d_in], b [d_out])

    Hints (the next one: katas hint least_squares_normal_equations 2):
        1. Without the column of ones the line is forced through the origin: the bias cannot be fitted.
    """
    raise NotImplementedError


@kata
def least_squares_lstsq(
    x: Float[Tensor, "n d_in"], y: Float[Tensor, "n d_out"]
) -> tuple[Float[Tensor, "d_out d_in"], Float[Tensor, "d_out"]]:
    """Fit y ~ x W^T + b by least squares with torch.linalg.lstsq; return (W, b).

    Same problem as least_squares_normal_equations, solved by a QR-based routine that never forms
    X^T X (whose condition number is the square of X's), so it stays accurate on nearly collinear data:
    in float64, with two columns of x equal to about 6 digits (X's condition number about 1e7), it
    recovers noise-free coefficients to within 1e-6, where the normal equations are off by about 1e-2.

    Shapes:
        x: [n, d_in]
        y: [n, d_out]
        returns: (W [d_out, d_in], b [d_out])

    Hints (the next one: katas hint least_squares_lstsq 2):
        1. The bias still needs its column of ones.
    """
    raise NotImplementedError


class LinearModel(nn.Module):
    """A linear model y = x W^T + b, torch.nn.Linear written by hand.

    __init__ is given: it creates the parameters `weight` [d_out, d_in] and `bias` [d_out].
    The kata is `forward`.

    Shapes:
        weight: [d_out, d_in]    bias: [d_out]
        forward(x): [batch, d_in] -> [batch, d_out]

    Hints (the next one: katas hint LinearModel 2):
        1. Each output is a weighted sum of the inputs plus its bias: which way round does weight go?
    """

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) / d_in**0.5)
        self.bias = nn.Parameter(torch.randn(d_out) * 0.1)

    @kata
    def forward(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_out"]:
        """Return x W^T + b for every row of x."""
        raise NotImplementedError


@kata
def default_device() -> torch.device:
    """Return the device to train on: CUDA when it is available, otherwise the CPU.

    Ask torch.cuda whether CUDA is available (the tests stand in for its answer to try both cases).

    Shapes:
        returns: a torch.device (not a string)

    Hints (the next one: katas hint default_device 2):
        1. torch.cuda has a function that says whether a CUDA GPU can be used.
    """
    raise NotImplementedError


@kata
def train_linear_model(
    x: Float[Tensor, "n d_in"],
    y: Float[Tensor, "n d_out"],
    steps: int = 100,
    lr: float = 0.1,
    device: torch.device | None = None,
) -> nn.Module:
    """Fit a LinearModel to (x, y) by full-batch gradient descent on `device`; return the trained model.

    Create LinearModel(d_in, d_out) on `device` (default_device() when it is None), move the data
    there too, and take `steps` steps of torch.optim.SGD with learning rate `lr` on the mean squared
    error over the whole data set (torch.nn.functional.mse_loss). Return the model, still on `device`.

    Shapes:
        x: [n, d_in], y: [n, d_out], on any device
        returns: the trained LinearModel, on `device`

    Hints (the next one: katas hint train_linear_model 2):
        1. Model and data must live on the same device: move both there before training.
    """
    raise NotImplementedError
