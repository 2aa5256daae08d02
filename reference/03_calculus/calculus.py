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

    Hints:
        1. Move one coordinate at a time: the step along axis i is eps times the i-th standard basis
           vector (a row of torch.eye). Work on a copy, never on x in place.
        2. Central differences: evaluate f one step forward and one step back along axis i, and divide the
           difference by the distance between the two points. The error shrinks like eps**2; a one-sided
           difference is only accurate to about eps.
    """
    steps = eps * torch.eye(x.shape[0], dtype=x.dtype)
    return torch.stack([(f(x + step) - f(x - step)) / (2 * eps) for step in steps])


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

    Hints:
        1. The outer function's derivative is evaluated where the outer function is evaluated:
           not at x, but at the inner value g(x).
        2. The chain rule: the derivative of f(g(x)) is the outer derivative, taken at the inner value, times
           the inner derivative, taken at x; everything here is elementwise.
    """
    return f_prime(g(x)) * g_prime(x)


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

    Hints:
        1. Differentiate each term: b^T x is linear in x; for x^T A x, write it as a double sum
           over A[i, j] x[i] x[j] and differentiate with respect to x[k].
        2. The gradient of b^T x is b, and that of 1/2 x^T A x is 1/2 (A + A^T) x: simplify it for a symmetric
           A.
        3. Descent steps against the gradient: move x by lr times the gradient, in the downhill direction.
    """
    return x - lr * (A @ x - b)


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

    Hints:
        1. Start from zeros shaped like b (same dtype) and repeat the previous kata's step.
        2. Loop exactly `steps` times, each time replacing x by the point one step further; with 0 steps the
           loop never runs and the start comes back.
    """
    x = torch.zeros_like(b)
    for _ in range(steps):
        x = gradient_descent_step(A, b, x, lr)
    return x


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

    Hints:
        1. Each gradient has the shape of the thing it is the gradient of; let the shapes tell you
           which matrices to multiply and which to transpose.
        2. Write y[n, o] = sum_i x[n, i] W[o, i] + b[o] and differentiate it with respect to x[n, i], W[o, i]
           and b[o]: multiply grad_out by the local derivative and sum over the indices the variable does not
           carry (the batch index, for W and b).
        3. Each of those sums is a matrix product of grad_out with W or with x (one of them transposed), or a
           sum of grad_out over the batch axis: match the shapes.
    """
    return grad_out @ W, grad_out.T @ x, grad_out.sum(dim=0)


@kata
def relu_backward(x: Float[Tensor, "*shape"], grad_out: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """Backward pass of ReLU: given its input x and the upstream gradient dL/dy, return dL/dx.

    relu(x) = max(x, 0). At x = 0 exactly, use derivative 0 (the convention torch follows). Work it
    out by hand, without autograd.

    Shapes:
        x: any shape, the input of the ReLU
        grad_out: same shape, dL/d relu(x)
        returns: same shape, dL/dx

    Hints:
        1. The local derivative is 1 where the input was positive and 0 elsewhere: the ReLU lets
           the gradient through or blocks it, it never scales it.
        2. A comparison of x with 0 (strictly greater) gives a boolean mask; let the upstream gradient through
           only where it is True.
    """
    return grad_out * (x > 0)


@kata
def tanh_backward(x: Float[Tensor, "*shape"], grad_out: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """Backward pass of tanh: given its input x and the upstream gradient dL/dy, return dL/dx.

    Work it out by hand, without autograd.

    Shapes:
        x: any shape, the input of the tanh
        grad_out: same shape, dL/d tanh(x)
        returns: same shape, dL/dx

    Hints:
        1. The derivative of tanh is easiest to write in terms of tanh's own output.
        2. tanh'(x) is 1 minus the square of tanh(x): square the output, not the input, then multiply by the
           upstream gradient.
    """
    return grad_out * (1 - torch.tanh(x) ** 2)


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

    Hints:
        1. For a single example, the gradient of -log softmax(z)[t] with respect to z is
           softmax(z) minus the one-hot vector of t. Softmax over the classes axis.
        2. The loss is a mean over the batch, so each row's gradient is also divided by the batch size.
        3. torch.nn.functional has a one-hot encoder; its output is integer, so convert it to the dtype of the
           logits.
    """
    batch, classes = logits.shape
    one_hot = F.one_hot(targets, classes).to(logits.dtype)
    return (logits.softmax(dim=-1) - one_hot) / batch


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

    Hints:
        1. Keep the intermediate values of the forward pass (pre-activation, hidden activation,
           logits): each backward step needs the input of the layer it goes back through.
        2. Walk back from the loss: cross-entropy gives dL/dlogits, the second linear layer gives
           dL/dW2, dL/db2 and dL/dhidden, the ReLU (at the pre-activation) turns that into
           dL/dpre-activation, and the first linear layer gives dL/dW1 and dL/db1.
    """
    pre_activation = x @ W1.T + b1
    hidden = pre_activation.relu()
    logits = hidden @ W2.T + b2
    loss = -logits.log_softmax(dim=-1).gather(-1, targets[:, None]).mean()

    grad_logits = softmax_cross_entropy_backward(logits, targets)
    grad_hidden, grad_W2, grad_b2 = linear_backward(hidden, W2, b2, grad_logits)
    grad_pre_activation = relu_backward(pre_activation, grad_hidden)
    _, grad_W1, grad_b1 = linear_backward(x, W1, b1, grad_pre_activation)
    return loss, grad_W1, grad_b1, grad_W2, grad_b2


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

    Hints:
        1. A value can feed several operations, or one operation twice (a * a): its gradient is the
           sum of the contributions of every use, so each `_backward` must add to `.grad` with +=,
           never overwrite it.
        2. The local derivatives: d(a+b) = 1 for each operand, d(a*b)/da = b, d(a**k)/da =
           k a**(k-1), exp' = exp (the output), tanh' = 1 - tanh**2 (the output), relu' = 1 if the
           input is > 0 else 0. Define `_backward` as a closure after creating `out` so it sees
           out.grad at the time it is called, and the reversed operations by reusing the others
           (a - b = a + (-b), a / b = a * b**-1, 2 + a = a + 2).
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
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def _backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    @kata
    def __mul__(self, other: "Value | float") -> "Value":
        """self * other."""
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))

        def _backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    @kata
    def __pow__(self, exponent: float) -> "Value":
        """self ** exponent, for a constant (plain number) exponent."""
        out = Value(self.data**exponent, (self,))

        def _backward() -> None:
            self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out

    @kata
    def exp(self) -> "Value":
        """e ** self."""
        out = Value(math.exp(self.data), (self,))

        def _backward() -> None:
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    @kata
    def tanh(self) -> "Value":
        """tanh(self)."""
        out = Value(math.tanh(self.data), (self,))

        def _backward() -> None:
            self.grad += (1 - out.data**2) * out.grad

        out._backward = _backward
        return out

    @kata
    def relu(self) -> "Value":
        """max(self, 0), with derivative 0 at 0."""
        out = Value(max(self.data, 0.0), (self,))

        def _backward() -> None:
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    @kata
    def __neg__(self) -> "Value":
        """-self."""
        return self * -1

    @kata
    def __radd__(self, other: float) -> "Value":
        """other + self, when other is a plain number."""
        return self + other

    @kata
    def __sub__(self, other: "Value | float") -> "Value":
        """self - other."""
        return self + (-other)

    @kata
    def __rsub__(self, other: float) -> "Value":
        """other - self, when other is a plain number."""
        return -self + other

    @kata
    def __rmul__(self, other: float) -> "Value":
        """other * self, when other is a plain number."""
        return self * other

    @kata
    def __truediv__(self, other: "Value | float") -> "Value":
        """self / other."""
        return self * other**-1

    @kata
    def backward(self) -> None:
        """Fill in `.grad` of every Value this one was computed from: d self / d node."""
        self.grad = 1.0
        for node in reversed(topological_order(self)):
            node._backward()


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

    Hints:
        1. Depth-first search with a set of visited nodes: visit all of a node's children before
           you write the node down.
        2. Append a node to the list after the recursive calls on its children return (post-order),
           not before: writing it down first puts parents before children.
    """
    order: list[Value] = []
    visited: set[int] = set()

    def visit(node: Value) -> None:
        if id(node) in visited:
            return
        visited.add(id(node))
        for child in node._children:
            visit(child)
        order.append(node)

    visit(root)
    return order


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

    Hints:
        1. Reverse mode gives the gradient of one scalar per backward pass: run f once, then take the gradient
           of each output entry in turn, with respect to x.
        2. Differentiate with respect to a fresh leaf: detach x and switch requires_grad on.
           torch.autograd.grad frees the graph after each call unless you ask it to keep it (retain_graph).
        3. torch.autograd.grad returns a tuple, one gradient per input: collect the m rows of shape [n] and
           stack them into [m, n].
    """
    x = x.detach().requires_grad_()
    y = f(x)
    rows = [torch.autograd.grad(y_i, x, retain_graph=True)[0] for y_i in y]
    return torch.stack(rows)


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

    Hints:
        1. Restrict f to the line through x along v: g(t) = f(x + t v). J v is g'(0).
        2. Estimate g'(0) with the central difference of numerical_gradient, the step taken along v instead of
           along a basis vector: two evaluations of f, whatever n is.
    """
    return (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
