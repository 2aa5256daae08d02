"""Calculus: finite differences, the chain rule, gradient descent, hand-written backward passes,
a scalar autograd engine, Jacobians and Jacobian-vector products.

Read or watch first (curriculum.toml's `reading`):
- Andrej Karpathy, The spelled-out intro to neural networks and backpropagation: building
  micrograd, all of it: the derivative of a function estimated numerically, the Value object,
  manual backpropagation through an expression and a neuron, the backward function of each
  operation, the topological sort, the bug when a node is used twice (hence +=), breaking up tanh,
  the comparison with PyTorch, and the MLP trained by gradient descent:
  https://www.youtube.com/watch?v=VMj-3S1tku0
- Jacob Hilton, Deep Learning Curriculum, the 'Pre-prerequisites' section on calculus
  (differentiation, partial differentiation, the chain rule, Taylor series: the first-order
  approximation behind jvp):
  https://github.com/jacobhilton/deep_learning_curriculum
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Float64, Int
from torch import Tensor

from katakit import kata


@kata
def numerical_gradient(
    f: Callable[[Float64[Tensor, "n"]], Float64[Tensor, ""]], x: Float64[Tensor, "n"], eps: float = 1e-5
) -> Float64[Tensor, "n"]:
    """Estimate the gradient of the scalar function `f` at `x` by central differences.

    Component i of the gradient is how fast f changes when only x[i] moves. Nudge x[i] by +eps
    and by -eps, evaluate f at both points and divide the difference by the distance between
    them. This is how autograd implementations are tested, so it has to be precise: work in
    float64 and leave `x` itself unchanged.

    Shapes:
        f: a function from [n] to a 0-d tensor (a scalar), float64
        x: [n], float64, the point where the gradient is taken
        returns: [n], float64, the estimated gradient

    Hints (the next one: katas hint numerical_gradient 2):
        1. Move one coordinate at a time: the step along axis i is eps times the i-th standard basis
           vector (a row of torch.eye). Work on a copy, never on x in place.
    """
    raise NotImplementedError


@kata
def chain_rule(
    f: Callable[[Float[Tensor, "n"]], Float[Tensor, "n"]],
    f_prime: Callable[[Float[Tensor, "n"]], Float[Tensor, "n"]],
    g: Callable[[Float[Tensor, "n"]], Float[Tensor, "n"]],
    g_prime: Callable[[Float[Tensor, "n"]], Float[Tensor, "n"]],
    x: Float[Tensor, "n"],
) -> Float[Tensor, "n"]:
    """Return the derivative of the composition h(x) = f(g(x)), at every entry of `x`.

    f and g are functions of one real variable applied entry by entry (like torch.sin), and
    f_prime, g_prime are their derivatives. Use only these four functions, no autograd.

    Shapes:
        f, f_prime, g, g_prime: elementwise functions, [n] -> [n]
        x: [n], the points where the derivative is taken
        returns: [n], h'(x) at each point

    Hints (the next one: katas hint chain_rule 2):
        1. The outer function's derivative is evaluated where the outer function is evaluated:
           not at x, but at the inner value g(x).
    """
    raise NotImplementedError


@kata
def gradient_descent_step(
    A: Float[Tensor, "d d"], b: Float[Tensor, "d"], x: Float[Tensor, "d"], lr: float
) -> Float[Tensor, "d"]:
    """Take one gradient-descent step on the quadratic L(x) = 1/2 x^T A x - b^T x.

    `A` is symmetric positive definite, so L is a bowl with a single minimum. Return the new point
    x - lr * grad L(x), with the gradient worked out by hand.

    Shapes:
        A: [d, d], symmetric positive definite
        b: [d]
        x: [d], the current point
        lr: the learning rate (step size), a float
        returns: [d], the point after one step

    Hints (the next one: katas hint gradient_descent_step 2):
        1. Differentiate each term: b^T x is linear in x; for x^T A x, write it as a double sum
           over A[i, j] x[i] x[j] and differentiate with respect to x[k].
    """
    raise NotImplementedError


@kata
def minimise_quadratic(A: Float[Tensor, "d d"], b: Float[Tensor, "d"], lr: float, steps: int) -> Float[Tensor, "d"]:
    """Minimise L(x) = 1/2 x^T A x - b^T x by `steps` steps of gradient descent, starting at x = 0.

    With a small enough learning rate (below 2 / largest eigenvalue of A) the iterates converge to
    the point where the gradient vanishes: the solution of A x = b.

    Shapes:
        A: [d, d], symmetric positive definite
        b: [d]
        lr: the learning rate, a float
        steps: how many steps to take (0 returns the starting point)
        returns: [d], the point after `steps` steps

    Hints (the next one: katas hint minimise_quadratic 2):
        1. Start from zeros shaped like b (same dtype) and repeat the previous kata's step.
    """
    raise NotImplementedError


@kata
def linear_backward(
    x: Float[Tensor, "batch d_in"],
    W: Float[Tensor, "d_out d_in"],
    b: Float[Tensor, "d_out"],
    grad_out: Float[Tensor, "batch d_out"],
) -> tuple[Float[Tensor, "batch d_in"], Float[Tensor, "d_out d_in"], Float[Tensor, "d_out"]]:
    """Backward pass of a linear layer y = x @ W.T + b (W stored as [d_out, d_in], like nn.Linear).

    Given the upstream gradient dL/dy, return (dL/dx, dL/dW, dL/db), worked out by hand, without
    autograd.

    Shapes:
        x: [batch, d_in], the layer's input
        W: [d_out, d_in], the weight (nn.Linear's convention)
        b: [d_out], the bias
        grad_out: [batch, d_out], dL/dy
        returns: (grad_x [batch, d_in], grad_W [d_out, d_in], grad_b [d_out])

    Hints (the next one: katas hint linear_backward 2):
        1. Each gradient has the shape of the thing it is the gradient of; let the shapes tell you
           which matrices to multiply and which to transpose.
    """
    raise NotImplementedError


@kata
def relu_backward(x: Float[Tensor, "*shape"], grad_out: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """Backward pass of ReLU: given its input x and the upstream gradient dL/dy, return dL/dx.

    relu(x) = max(x, 0). At x = 0 exactly, use derivative 0 (the convention torch follows). Work it
    out by hand, without autograd.

    Shapes:
        x: any shape, the input of the ReLU
        grad_out: same shape, dL/d relu(x)
        returns: same shape, dL/dx

    Hints (the next one: katas hint relu_backward 2):
        1. The local derivative is 1 where the input was positive and 0 elsewhere: the ReLU lets
           the gradient through or blocks it, it never scales it.
    """
    raise NotImplementedError


@kata
def tanh_backward(x: Float[Tensor, "*shape"], grad_out: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """Backward pass of tanh: given its input x and the upstream gradient dL/dy, return dL/dx.

    Work it out by hand, without autograd.

    Shapes:
        x: any shape, the input of the tanh
        grad_out: same shape, dL/d tanh(x)
        returns: same shape, dL/dx

    Hints (the next one: katas hint tanh_backward 2):
        1. The derivative of tanh is easiest to write in terms of tanh's own output.
    """
    raise NotImplementedError


@kata
def softmax_cross_entropy_backward(
    logits: Float[Tensor, "batch classes"], targets: Int[Tensor, "batch"]
) -> Float[Tensor, "batch classes"]:
    """Return the gradient of the mean cross-entropy loss with respect to the logits.

    The loss is L = mean over the batch of -log softmax(logits[n])[targets[n]], the quantity
    F.cross_entropy(logits, targets) computes. Work the gradient out by hand, without autograd.

    Shapes:
        logits: [batch, classes]
        targets: [batch], integer class indices in [0, classes)
        returns: [batch, classes], dL/dlogits

    Hints (the next one: katas hint softmax_cross_entropy_backward 2):
        1. For a single example, the gradient of -log softmax(z)[t] with respect to z is
           softmax(z) minus the one-hot vector of t. Softmax over the classes axis.
    """
    raise NotImplementedError


@kata
def mlp_forward_backward(
    x: Float[Tensor, "batch d_in"],
    targets: Int[Tensor, "batch"],
    W1: Float[Tensor, "d_hidden d_in"],
    b1: Float[Tensor, "d_hidden"],
    W2: Float[Tensor, "classes d_hidden"],
    b2: Float[Tensor, "classes"],
) -> tuple[
    Float[Tensor, ""],
    Float[Tensor, "d_hidden d_in"],
    Float[Tensor, "d_hidden"],
    Float[Tensor, "classes d_hidden"],
    Float[Tensor, "classes"],
]:
    """Run a two-layer MLP classifier forward and backward by hand; return the loss and its gradients.

    The network is logits = relu(x @ W1.T + b1) @ W2.T + b2 and the loss is the mean cross-entropy
    of the logits against `targets`. Compute the loss, then the gradients of the loss with respect
    to every parameter by composing the backward passes of the previous katas, without autograd.

    Shapes:
        x: [batch, d_in]
        targets: [batch], integer class indices
        W1: [d_hidden, d_in], b1: [d_hidden]
        W2: [classes, d_hidden], b2: [classes]
        returns: (loss [] (0-d), grad_W1, grad_b1, grad_W2, grad_b2), each gradient shaped like its parameter

    Hints (the next one: katas hint mlp_forward_backward 2):
        1. Keep the intermediate values of the forward pass (pre-activation, hidden activation,
           logits): each backward step needs the input of the layer it goes back through.
    """
    raise NotImplementedError


class Value:
    """A scalar that remembers how it was computed, so that gradients can flow back through it.

    A tiny autograd engine in the style of micrograd. Every operation returns a new Value whose
    `_children` are its operands and whose `_backward` is a closure that, when called, adds the
    new Value's gradient, times the local derivative, into the `.grad` of each operand.
    `backward()` sets the output's gradient to 1 and calls every node's `_backward` in an order
    where each node comes before the nodes it was computed from.

    Work in this order: __add__ and __mul__ (and check them alone with `out._backward()`), then
    __pow__, exp, tanh, relu, then the operations you can write with those (__neg__, __radd__,
    __sub__, __rsub__, __rmul__, __truediv__), then `backward`, which can use `topological_order`
    (the next kata).

    Shapes:
        scalars: `data` and `grad` are Python floats; `other` is a Value or a plain number, which
        the operation wraps in a Value (a constant: nobody reads its gradient).

    Hints (the next one: katas hint Value 2):
        1. A value can feed several operations, or one operation twice (a * a): its gradient is the
           sum of the contributions of every use, so each `_backward` must add to `.grad` with +=,
           never overwrite it.
    """

    def __init__(self, data: float, _children: tuple["Value", ...] = ()):
        self.data = float(data)
        self.grad = 0.0
        self._children = _children
        self._backward: Callable[[], None] = lambda: None

    def __repr__(self) -> str:
        return f"Value(data={self.data:.4g}, grad={self.grad:.4g})"

    @kata
    def __add__(self, other: "Value | float") -> "Value":
        """self + other."""
        raise NotImplementedError

    @kata
    def __mul__(self, other: "Value | float") -> "Value":
        """self * other."""
        raise NotImplementedError

    @kata
    def __pow__(self, exponent: float) -> "Value":
        """self ** exponent, for a constant (plain number) exponent."""
        raise NotImplementedError

    @kata
    def exp(self) -> "Value":
        """e ** self."""
        raise NotImplementedError

    @kata
    def tanh(self) -> "Value":
        """tanh(self)."""
        raise NotImplementedError

    @kata
    def relu(self) -> "Value":
        """max(self, 0), with derivative 0 at 0."""
        raise NotImplementedError

    @kata
    def __neg__(self) -> "Value":
        """-self."""
        raise NotImplementedError

    @kata
    def __radd__(self, other: float) -> "Value":
        """other + self, when other is a plain number."""
        raise NotImplementedError

    @kata
    def __sub__(self, other: "Value | float") -> "Value":
        """self - other."""
        raise NotImplementedError

    @kata
    def __rsub__(self, other: float) -> "Value":
        """other - self, when other is a plain number."""
        raise NotImplementedError

    @kata
    def __rmul__(self, other: float) -> "Value":
        """other * self, when other is a plain number."""
        raise NotImplementedError

    @kata
    def __truediv__(self, other: "Value | float") -> "Value":
        """self / other."""
        raise NotImplementedError

    @kata
    def backward(self) -> None:
        """Fill in `.grad` of every Value this one was computed from: d self / d node."""
        raise NotImplementedError


@kata
def topological_order(root: Value) -> list[Value]:
    """List every Value that `root` was computed from (root included), each after its children.

    The graph is followed through `_children`. Each node appears once, even when it is reached
    along several paths, and only after all the nodes it was computed from; `root` comes last.
    Walked in reverse, this order reaches a node only once every node that uses it is done, which
    is what `Value.backward` needs.

    Shapes:
        root: a Value (a scalar)
        returns: a list of Values, children before parents, root last

    Hints (the next one: katas hint topological_order 2):
        1. Depth-first search with a set of visited nodes: visit all of a node's children before
           you write the node down.
    """
    raise NotImplementedError


@kata
def jacobian(f: Callable[[Float[Tensor, "n"]], Float[Tensor, "m"]], x: Float[Tensor, "n"]) -> Float[Tensor, "m n"]:
    """Return the Jacobian of `f` at `x`, one row per output, using torch.autograd.grad.

    J[i, j] = d f(x)[i] / d x[j]. Reverse-mode autograd computes, in one backward pass, the
    gradient of a single scalar: here the gradient of output i, which is row i of the Jacobian.
    (torch.autograd.functional.jacobian does this for you: don't use it here.)

    Shapes:
        f: a function from [n] to [m]
        x: [n]
        returns: [m, n], row i is the gradient of f(x)[i]

    Hints (the next one: katas hint jacobian 2):
        1. Reverse mode gives the gradient of one scalar per backward pass: run f once, then take the gradient
           of each output entry in turn, with respect to x.
    """
    raise NotImplementedError


@kata
def jvp(
    f: Callable[[Float64[Tensor, "n"]], Float64[Tensor, "m"]],
    x: Float64[Tensor, "n"],
    v: Float64[Tensor, "n"],
    eps: float = 1e-6,
) -> Float64[Tensor, "m"]:
    """Estimate the Jacobian-vector product J(x) @ v of `f` by a central finite difference, with step eps along v.

    J v is the directional derivative: the first-order change of f(x) when x moves along v,
    f(x + t v) = f(x) + t J v + O(t**2). It costs two evaluations of f whatever n is, without ever
    forming the [m, n] Jacobian. Linear approximations of this kind are what attribution patching
    uses to estimate the effect of a change in activations.

    Shapes:
        f: a function from [n] to [m], float64
        x: [n], float64, the point
        v: [n], float64, the direction
        returns: [m], float64, J(x) @ v

    Hints (the next one: katas hint jvp 2):
        1. Restrict f to the line through x along v: g(t) = f(x + t v). J v is g'(0).
    """
    raise NotImplementedError
