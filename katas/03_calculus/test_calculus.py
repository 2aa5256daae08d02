"""Tests for katas/03_calculus/calculus.py.

Every gradient is checked against torch.autograd (or torch.func), in float64 where finite
differences are involved, at tolerances that tell a central difference from a one-sided one.
"""

import pytest
import torch
import torch.nn.functional as F

from katakit.testing import ForbiddenCall, assert_close, calls, forbid

F64 = torch.float64

# Every way to ask torch for a derivative: torch.func's transforms and torch.autograd.functional go
# through torch.autograd.grad, except forward mode (torch.func.jvp, jacfwd).
AUTOGRAD = (
    torch.autograd.grad,
    torch.autograd.backward,
    torch.Tensor.backward,
    torch.func.jvp,
    torch.func.jacfwd,
)


def bumpy(x: torch.Tensor) -> torch.Tensor:
    """A scalar function of a vector with curvature everywhere and coupled coordinates."""
    return (torch.sin(2 * x) * x**2).sum() + x[0] * x[-1] + torch.exp(0.5 * x).sum()


def spd_matrix(d: int, low: float = 1.0, high: float = 4.0) -> torch.Tensor:
    """A random symmetric positive definite [d, d] matrix with eigenvalues in [low, high]."""
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=F64))
    eigenvalues = torch.linspace(low, high, d, dtype=F64)
    return q @ torch.diag(eigenvalues) @ q.T


def autograd_grads(fn, *inputs: torch.Tensor, upstream: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The gradients of fn(*inputs) (times `upstream`, for a non-scalar output) w.r.t. each input."""
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*leaves)
    return list(torch.autograd.grad(out, leaves, grad_outputs=upstream))


# --- finite differences and the chain rule -------------------------------------------------------


@pytest.mark.kata("numerical_gradient")
def test_numerical_gradient_matches_autograd(impl):
    x = torch.randn(7, dtype=F64)
    (expected,) = autograd_grads(bumpy, x)
    # With the default eps = 1e-5 a central difference is off by eps**2 f''' / 6 + 1e-16 |f| / eps, under
    # 1e-8 here; a one-sided difference is off by eps f'' / 2, about 1e-5.
    assert_close(
        impl.numerical_gradient(bumpy, x),
        expected,
        what="the central-difference gradient",
        hint="a one-sided difference (f(x + eps) - f(x)) / eps, a step of eps instead of 2 eps in the "
        "denominator, or the step applied to every coordinate at once?",
        atol=1e-8,
        rtol=1e-7,
    )


@pytest.mark.kata("numerical_gradient")
def test_numerical_gradient_is_a_central_difference_with_step_eps(impl):
    # For a cubic the central difference is off by exactly eps**2 per coordinate, 1e-6 at eps = 1e-3,
    # and rounding adds only 1e-16 |f| / eps ~ 1e-12: atol=1e-9 tells it from a one-sided difference (off
    # by 3 x eps), from an exact derivative (off by eps**2) and from a step other than the eps given.
    x = torch.linspace(1.0, 2.0, 5, dtype=F64)
    eps = 1e-3
    with forbid(*AUTOGRAD, reason="estimate the gradient by central differences, with f alone (no autograd)"):
        gradient = impl.numerical_gradient(lambda z: (z**3).sum(), x, eps)
    assert_close(
        gradient,
        3 * x**2 + eps**2,
        what=f"the central difference of sum(x**3) with eps = {eps}",
        hint="(f(x + eps) - f(x - eps)) / (2 eps) with the eps given (a forward difference (f(x + eps) - f(x)) / eps "
        "is only first-order accurate)",
        atol=1e-9,
        rtol=0,
    )


@pytest.mark.kata("numerical_gradient")
def test_numerical_gradient_leaves_x_unchanged(impl):
    x = torch.randn(5, dtype=F64)
    before = x.clone()
    impl.numerical_gradient(bumpy, x, 1e-5)
    assert torch.equal(x, before), "numerical_gradient changed its input x: nudge a copy (x + step), not x in place"


CHAINS = {
    "sin of a cubic": (torch.sin, torch.cos, lambda x: x**3 + 2 * x, lambda x: 3 * x**2 + 2),
    "square of sin": (lambda x: x**2, lambda x: 2 * x, torch.sin, torch.cos),
    "exp of tanh": (torch.exp, torch.exp, torch.tanh, lambda x: 1 - torch.tanh(x) ** 2),
}


@pytest.mark.kata("chain_rule")
@pytest.mark.parametrize("chain", CHAINS, ids=str)
def test_chain_rule_matches_autograd(impl, chain):
    f, f_prime, g, g_prime = CHAINS[chain]
    x = torch.randn(6, dtype=F64)
    (expected,) = autograd_grads(lambda z: f(g(z)).sum(), x)
    with forbid(*AUTOGRAD, reason="use only f, f_prime, g and g_prime, no autograd"):
        derivative = impl.chain_rule(f, f_prime, g, g_prime, x)
    assert_close(
        derivative,
        expected,
        what=f"(f o g)'(x) for {chain}",
        hint="f' evaluated at x instead of at g(x), or the factor g'(x) forgotten?",
    )


# --- gradient descent on a quadratic -------------------------------------------------------------


def quadratic(A: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x @ A @ x - b @ x


@pytest.mark.kata("gradient_descent_step")
def test_gradient_descent_step_matches_autograd(impl):
    A, b, x = spd_matrix(5), torch.randn(5, dtype=F64), torch.randn(5, dtype=F64)
    (grad,) = autograd_grads(lambda z: quadratic(A, b, z), x)
    with forbid(*AUTOGRAD, reason="work the gradient of the quadratic out by hand"):
        new_x = impl.gradient_descent_step(A, b, x, 0.1)
    assert_close(
        new_x,
        x - 0.1 * grad,
        what="the point after one step",
        hint="the gradient of 1/2 x^T A x - b^T x is A x - b; a descent step subtracts lr times it",
    )


@pytest.mark.kata("gradient_descent_step")
def test_gradient_descent_step_goes_downhill(impl):
    A, b, x = spd_matrix(7), torch.randn(7, dtype=F64), torch.randn(7, dtype=F64)
    new_x = impl.gradient_descent_step(A, b, x, 0.05)
    before, after = quadratic(A, b, x).item(), quadratic(A, b, new_x).item()
    assert after < before, (
        f"a small step should lower the loss, but it went from {before:.4f} to {after:.4f}: wrong sign?"
    )


@pytest.mark.kata("minimise_quadratic")
def test_minimise_quadratic_reaches_the_solution_of_A_x_equals_b(impl):
    A, b = spd_matrix(7), torch.randn(7, dtype=F64)
    lr = 1 / torch.linalg.eigvalsh(A).max().item()  # error shrinks by at least 3/4 per step
    assert_close(
        impl.minimise_quadratic(A, b, lr, 200),
        torch.linalg.solve(A, b),
        what="the minimiser after 200 steps",
        hint="does each step use the current x, and is the gradient A x - b (not b - A x)?",
        atol=1e-10,
        rtol=1e-8,
    )


@pytest.mark.kata("minimise_quadratic")
@pytest.mark.parametrize("steps", [0, 1, 3])
def test_minimise_quadratic_takes_exactly_the_given_number_of_steps(impl, steps):
    # From x0 = 0, x_k = x* - (I - lr A)^k x* where x* solves A x = b.
    A, b, lr = spd_matrix(5), torch.randn(5, dtype=F64), 0.2
    solution = torch.linalg.solve(A, b)
    expected = solution - torch.linalg.matrix_power(torch.eye(5, dtype=F64) - lr * A, steps) @ solution
    assert_close(
        impl.minimise_quadratic(A, b, lr, steps),
        expected,
        what=f"the point after {steps} steps from zero",
        hint="start at zeros and take exactly `steps` steps (an off-by-one in the loop?)",
    )


# --- hand-written backward passes ----------------------------------------------------------------


@pytest.mark.kata("linear_backward")
def test_linear_backward_matches_autograd(impl):
    batch, d_in, d_out = 3, 5, 2
    x, W = torch.randn(batch, d_in, dtype=F64), torch.randn(d_out, d_in, dtype=F64)
    b, grad_out = torch.randn(d_out, dtype=F64), torch.randn(batch, d_out, dtype=F64)
    expected = autograd_grads(F.linear, x, W, b, upstream=grad_out)
    with forbid(*AUTOGRAD, reason="write the backward pass by hand, without autograd"):
        actual = impl.linear_backward(x, W, b, grad_out)
    assert isinstance(actual, tuple) and len(actual) == 3, "return the tuple (grad_x, grad_W, grad_b)"
    hints = {
        "grad_x": "grad_out @ W, shaped like x: the upstream gradient times the local derivative W, not W alone",
        "grad_W": "grad_out.T @ x, shaped like W [d_out, d_in]: summed over the batch, not averaged",
        "grad_b": "the bias is added to every row: sum grad_out over the batch",
    }
    for (name, hint), got, want in zip(hints.items(), actual, expected, strict=True):
        assert_close(got, want, what=name, hint=hint)


@pytest.mark.kata("relu_backward")
def test_relu_backward_matches_autograd(impl):
    x = torch.randn(3, 4, dtype=F64)
    x[0, :2] = 0.0  # torch's convention: the derivative at exactly 0 is 0
    grad_out = torch.randn(3, 4, dtype=F64)
    (expected,) = autograd_grads(torch.relu, x, upstream=grad_out)
    with forbid(*AUTOGRAD, reason="write the backward pass by hand, without autograd"):
        grad_x = impl.relu_backward(x, grad_out)
    assert_close(
        grad_x,
        expected,
        what="dL/dx through a ReLU",
        hint="mask grad_out with (x > 0): strictly positive inputs (x >= 0 lets the gradient through at 0); "
        "multiply by the mask, not by relu(x), and build the mask from x, not from grad_out",
    )


@pytest.mark.kata("tanh_backward")
def test_tanh_backward_matches_autograd(impl):
    x = 2 * torch.randn(2, 5, dtype=F64)
    grad_out = torch.randn(2, 5, dtype=F64)
    (expected,) = autograd_grads(torch.tanh, x, upstream=grad_out)
    with forbid(*AUTOGRAD, reason="write the backward pass by hand, without autograd"):
        grad_x = impl.tanh_backward(x, grad_out)
    assert_close(
        grad_x,
        expected,
        what="dL/dx through a tanh",
        hint="tanh'(x) = 1 - tanh(x)**2, the square of the output; 1 - x**2 squares the input",
    )


@pytest.mark.kata("softmax_cross_entropy_backward")
def test_softmax_cross_entropy_backward_rows_sum_to_zero(impl):
    logits, targets = torch.randn(4, 7, dtype=F64), torch.tensor([0, 6, 3, 3])
    row_sums = impl.softmax_cross_entropy_backward(logits, targets).sum(dim=-1)
    assert_close(
        row_sums,
        torch.zeros(4, dtype=F64),
        what="the sum of each row of the gradient",
        hint="softmax along the classes axis (dim=-1), not the batch axis: softmax and the one-hot both sum to 1",
    )


@pytest.mark.kata("softmax_cross_entropy_backward")
@pytest.mark.parametrize("scale", [1.0, 1e4])  # F.cross_entropy's gradient is finite for logits of 1e4 too
def test_softmax_cross_entropy_backward_matches_autograd(impl, scale):
    batch, classes = 5, 3
    logits, targets = scale * torch.randn(batch, classes, dtype=F64), torch.randint(classes, (batch,))
    (expected,) = autograd_grads(lambda z: F.cross_entropy(z, targets), logits)
    with forbid(*AUTOGRAD, reason="work the gradient out by hand, without autograd"):
        grad_logits = impl.softmax_cross_entropy_backward(logits, targets)
    assert_close(
        grad_logits,
        expected,
        what=f"dL/dlogits of the mean cross-entropy, logits of size {scale:g}",
        hint="(softmax(logits) - one_hot(targets)) / batch: softmax over the classes axis, and the mean "
        "over the batch divides every row by batch"
        + ("; exp(1e4) overflows: a softmax written by hand must subtract each row's max" if scale > 1 else ""),
    )


@pytest.mark.kata("mlp_forward_backward")
def test_mlp_forward_backward_matches_autograd(impl):
    batch, d_in, d_hidden, classes = 4, 5, 7, 3
    x, targets = torch.randn(batch, d_in, dtype=F64), torch.randint(classes, (batch,))
    params = [
        torch.randn(d_hidden, d_in, dtype=F64),
        torch.randn(d_hidden, dtype=F64),
        torch.randn(classes, d_hidden, dtype=F64),
        torch.randn(classes, dtype=F64),
    ]

    def loss_fn(W1, b1, W2, b2):
        return F.cross_entropy(F.linear(F.linear(x, W1, b1).relu(), W2, b2), targets)

    expected_grads = autograd_grads(loss_fn, *params)
    with forbid(*AUTOGRAD, reason="compose the backward passes of the previous katas, without autograd"):
        loss, *grads = impl.mlp_forward_backward(x, targets, *params)
    assert_close(
        loss,
        loss_fn(*params),
        what="the loss",
        hint="mean over the batch of -log_softmax(logits)[target]; hidden = relu(x @ W1.T + b1)",
    )
    names = ["grad_W1", "grad_b1", "grad_W2", "grad_b2"]
    for name, got, want in zip(names, grads, expected_grads, strict=True):
        assert_close(
            got,
            want,
            what=name,
            hint="each linear layer's backward takes that layer's input (hidden = relu(pre-activation) for the second) "
            "and the gradient of its output: the first layer gets dL/dhidden masked by the ReLU, not dL/dhidden",
        )


# --- the scalar autograd engine ------------------------------------------------------------------


def torch_scalar_grads(fn, inputs: list[float], upstream: float = 1.0) -> tuple[float, list[float]]:
    """fn applied to float64 scalar tensors: the output and each input's gradient (0 where unused)."""
    leaves = [torch.tensor(v, dtype=F64, requires_grad=True) for v in inputs]
    out = fn(*leaves)
    out.backward(torch.tensor(upstream, dtype=F64))
    return out.item(), [0.0 if leaf.grad is None else leaf.grad.item() for leaf in leaves]


def assert_floats_close(actual: list, expected: list[float], *, what: str, hint: str) -> None:
    for value in actual:
        # Python floats, as promised: an int (backward's self.grad = 1) equals its float, so check the type
        # (numpy's float64 is a float too; bool and int are not)
        assert isinstance(value, float), (
            f"{what}: expected Python floats (1.0, not 1), got {type(value).__name__} {value!r}"
        )
    assert_close(torch.tensor(actual, dtype=F64), torch.tensor(expected, dtype=F64), what=what, hint=hint)


# One operation at a time: (the operation, its inputs, the likely mistake)
ONE_OPS = {
    "a + b": (lambda a, b: a + b, [2.0, -3.0], "both operands receive out.grad"),
    "a + 5": (lambda a: a + 5, [1.5], "wrap a plain number in a Value"),
    "a * b": (lambda a, b: a * b, [3.0, -2.0], "d(a*b)/da = b.data and d(a*b)/db = a.data"),
    "a * 5": (lambda a: a * 5, [-1.5], "wrap a plain number in a Value"),
    "a ** 3": (lambda a: a**3, [-1.5], "d(a**k)/da = k * a**(k-1)"),
    "a ** -1": (lambda a: a**-1, [0.8], "d(a**k)/da = k * a**(k-1)"),
    "a ** 0.5": (lambda a: a**0.5, [2.5], "d(a**k)/da = k * a**(k-1)"),
    "exp(a)": (lambda a: a.exp(), [0.7], "exp' = exp"),
    "tanh(a)": (lambda a: a.tanh(), [0.9], "tanh' = 1 - tanh**2 (of the output)"),
    "relu(a), a > 0": (lambda a: a.relu(), [1.3], "relu' = 1 for a positive input"),
    "relu(a), a < 0": (lambda a: a.relu(), [-1.3], "relu' = 0 for a negative input"),
    "relu(a), a = 0": (lambda a: a.relu(), [0.0], "relu' = 0 at exactly 0 (strictly positive inputs only)"),
}


def run_one_op(impl, op, inputs: list[float], upstream: float, preset: float = 0.0):
    """Apply op to Values, then call the output's own _backward once with out.grad = upstream."""
    leaves = [impl.Value(v) for v in inputs]
    for leaf in leaves:
        leaf.grad = preset
    out = op(*leaves)
    assert isinstance(out, impl.Value), f"an operation on Values should return a Value, got {type(out).__name__}"
    out.grad = upstream
    out._backward()
    return out, leaves


@pytest.mark.kata("Value")
@pytest.mark.parametrize("name", ONE_OPS, ids=str)
def test_value_operation_matches_torch(impl, name):
    op, inputs, hint = ONE_OPS[name]
    out, leaves = run_one_op(impl, op, inputs, upstream=0.7)
    expected_data, expected_grads = torch_scalar_grads(op, inputs, upstream=0.7)
    assert_floats_close([out.data], [expected_data], what=f"({name}).data", hint="the forward value")
    assert_floats_close(
        [leaf.grad for leaf in leaves],
        expected_grads,
        what=f"the operands' .grad after ({name})._backward() with out.grad = 0.7",
        hint=f"{hint}; multiply the local derivative by out.grad",
    )
    assert all(any(leaf is child for child in out._children) for leaf in leaves), (
        f"({name})._children should hold its operands, so that backward() can find them"
    )


@pytest.mark.kata("Value")
@pytest.mark.parametrize("name", ["a + b", "a * b", "a ** 3", "exp(a)", "tanh(a)", "relu(a), a > 0"])
def test_value_backward_closures_add_to_grad(impl, name):
    op, inputs, _ = ONE_OPS[name]
    _, leaves = run_one_op(impl, op, inputs, upstream=0.7, preset=0.25)
    _, expected_grads = torch_scalar_grads(op, inputs, upstream=0.7)
    assert_floats_close(
        [leaf.grad for leaf in leaves],
        [0.25 + g for g in expected_grads],
        what=f"the operands' .grad after ({name})._backward(), starting from .grad = 0.25",
        hint="a node can be used several times: add to .grad with +=, never overwrite it with =",
    )


@pytest.mark.kata("Value")
@pytest.mark.parametrize(("name", "op"), [("a * a", lambda a: a * a), ("a + a", lambda a: a + a)])
def test_value_used_twice_in_one_operation(impl, name, op):
    out, (a,) = run_one_op(impl, op, [1.5], upstream=1.0)
    _, (expected,) = torch_scalar_grads(op, [1.5])
    assert_floats_close(
        [a.grad],
        [expected],
        what=f"a.grad after ({name})._backward()",
        hint="both operands are the same Value: its grad gets both contributions, each added with +=; a tuple "
        "assignment (self.grad, other.grad = ...) or = keeps only the last",
    )


@pytest.mark.kata("Value")
def test_value_backward_seeds_the_output_gradient_with_one(impl):
    a, b = impl.Value(2.0), impl.Value(-3.0)
    out = a * b + a
    out.backward()
    assert_floats_close(
        [out.grad, a.grad, b.grad],
        [1.0, -2.0, 2.0],
        what="[out.grad, a.grad, b.grad] for out = a * b + a",
        hint="backward() starts with self.grad = 1 (d out/d out), and a feeds two operations whose "
        "contributions add up",
    )


def shared_intermediate(x, y):
    """h is computed once and used by three operations at different depths of the graph."""
    h = x * y
    return (h.tanh() * h + h) * x


@pytest.mark.kata("Value")
def test_value_backward_waits_for_every_use_of_an_intermediate(impl):
    inputs = [0.6, -1.4]
    x, y = (impl.Value(v) for v in inputs)
    shared_intermediate(x, y).backward()
    _, expected = torch_scalar_grads(shared_intermediate, inputs)
    assert_floats_close(
        [x.grad, y.grad],
        expected,
        what="[x.grad, y.grad]",
        hint="a node's _backward may run only after every node that uses it has run its own: call them in the "
        "reverse of a topological order (children before parents), each exactly once",
    )


REVERSED_OPS = {
    "-a": (lambda a, b: -a, "neg: self * -1; a new Value(-self.data) has no _backward, and a.grad stays 0"),
    "2 + a": (lambda a, b: 2 + a, "radd: self + other; a new Value(self.data + other) has no _backward"),
    "a - b": (lambda a, b: a - b, "sub: self + (-other), not other + (-self)"),
    "a - 2": (lambda a, b: a - 2, "sub: self + (-other), not other + (-self)"),
    "2 - a": (lambda a, b: 2 - a, "rsub: other - self, not self - other"),
    "3 * a": (lambda a, b: 3 * a, "rmul: self * other; a new Value(self.data * other) has no _backward"),
    "a / b": (lambda a, b: a / b, "truediv: self * other**-1, not self**-1 * other"),
    "a / 4": (lambda a, b: a / 4, "truediv: self * other**-1, not self**-1 * other"),
}


@pytest.mark.kata("Value")
@pytest.mark.parametrize("name", REVERSED_OPS, ids=str)
def test_value_derived_operations(impl, name):
    op, hint = REVERSED_OPS[name]
    inputs = [1.5, -0.8]
    a, b = (impl.Value(v) for v in inputs)
    out = op(a, b)
    assert isinstance(out, impl.Value), f"{name} should return a Value, got {type(out).__name__}"
    expected_data, expected_grads = torch_scalar_grads(op, inputs)
    assert_floats_close([out.data], [expected_data], what=f"({name}).data", hint=hint)
    out.backward()
    assert_floats_close([a.grad, b.grad], expected_grads, what=f"[a.grad, b.grad] after ({name}).backward()", hint=hint)


UNARY = {
    "neg": lambda a: -a,
    "radd": lambda a: 1.5 + a,
    "rsub": lambda a: 2.0 - a,
    "rmul": lambda a: -0.5 * a,
    "square": lambda a: a**2,
    "cube": lambda a: a**3,
    "sqrt": lambda a: (a * a + 1) ** 0.5,
    "exp": lambda a: a.exp(),
    "tanh": lambda a: a.tanh(),
    "relu": lambda a: a.relu() + 0.5 * a,  # a leak, so that a negative input does not stop every gradient
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1),
}
OPS = {**UNARY, **BINARY}


def run_program(program: list[tuple[str, int, int]], leaves: list) -> list:
    """Apply each (op, i, j) of program to nodes i (and j): every result is a new node."""
    nodes = list(leaves)
    for name, i, j in program:
        nodes.append(UNARY[name](nodes[i]) if name in UNARY else BINARY[name](nodes[i], nodes[j]))
    return nodes


def last_node(program: list[tuple[str, int, int]]):
    """The function leaves -> output of program."""
    return lambda *leaves: run_program(program, leaves)[-1]


def random_expression(n_leaves: int, n_steps: int) -> tuple[list[tuple[str, int, int]], list[float]]:
    """A random program and leaf values for which every intermediate value stays moderate.

    Step k applies an operation to the previous node and (if binary) to a random node before it,
    so that every node feeds the output and earlier nodes are reused at different depths. Draws
    whose values grow large, or whose leaves all get a zero gradient, are drawn again.
    """
    names = list(OPS)
    for _ in range(1000):
        program = []
        for step in range(n_steps):
            op, j = torch.randint(len(names), ()).item(), torch.randint(n_leaves + step - 1, ()).item()
            program.append((names[op], n_leaves + step - 1, j))
        inputs = torch.randn(n_leaves, dtype=F64).tolist()
        values = run_program(program, [torch.tensor(v, dtype=F64) for v in inputs])
        if all(v.abs() < 20 for v in values):
            _, grads = torch_scalar_grads(last_node(program), inputs)
            if max(abs(g) for g in grads) > 0.01:
                return program, inputs
    raise AssertionError("could not draw a moderate random expression")


@pytest.mark.kata("Value")
@pytest.mark.parametrize("draw", range(20))
def test_value_backward_matches_torch_on_random_expressions(impl, draw):
    torch.manual_seed(torch.initial_seed() + draw)  # a different expression for each draw, for any KATAS_SEED
    n_leaves = 3
    program, inputs = random_expression(n_leaves, n_steps=10)
    leaves = [impl.Value(v) for v in inputs]
    out = run_program(program, leaves)[-1]
    out.backward()
    expected_data, expected_grads = torch_scalar_grads(last_node(program), inputs)
    expression = ", ".join(
        f"v{n_leaves + k} = {name}(v{i}{'' if name in UNARY else f', v{j}'})" for k, (name, i, j) in enumerate(program)
    )
    assert_floats_close([out.data], [expected_data], what=f"the output of {expression}", hint="the forward value")
    assert_floats_close(
        [leaf.grad for leaf in leaves],
        expected_grads,
        what=f"the leaves' .grad after backward() of {expression}",
        hint="a local derivative, += in every _backward, or the order of the backward pass (reverse topological)",
    )


def diamond_stack(impl, layers: int):
    """layers diamonds on top of each other: 2**layers paths from the top to the bottom."""
    bottom = node = impl.Value(1.0)
    nodes = [bottom]
    for _ in range(layers):
        left, right = impl.Value(0.0, (node,)), impl.Value(0.0, (node,))
        node = impl.Value(0.0, (left, right))
        nodes += [left, right, node]
    return node, nodes


@pytest.mark.kata("topological_order")
def test_topological_order_lists_children_before_parents(impl):
    V = impl.Value
    a, b = V(1.0), V(2.0)
    c = V(0.0, (a, b))
    d = V(0.0, (c, a))
    e = V(0.0, (d, c))
    root = V(0.0, (e, b, d))
    order = impl.topological_order(root)
    assert isinstance(order, list), f"return a list, got {type(order).__name__}"
    position = {id(node): k for k, node in enumerate(order)}
    assert set(position) == {id(n) for n in (a, b, c, d, e, root)}, "list every node reachable from root, root included"
    for node in order:
        for child in node._children:
            assert position[id(child)] < position[id(node)], (
                f"{child} comes after {node}, which was computed from it: append a node after visiting its "
                "children (post-order), not before"
            )
    assert order[-1] is root, "root depends on every other node, so it comes last"


@pytest.mark.kata("topological_order")
def test_topological_order_lists_each_node_once(impl):
    root, nodes = diamond_stack(impl, layers=10)
    order = impl.topological_order(root)
    assert len(order) == len(nodes), (
        f"{len(nodes)} distinct nodes, {len(order)} listed: keep a set of visited nodes so that a node reached "
        "along several paths is listed (and later back-propagated) once"
    )
    assert {id(n) for n in order} == {id(n) for n in nodes}, "list every node reachable from root"


# --- Jacobians and Jacobian-vector products ------------------------------------------------------


def squash(x: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """A nonlinear map from [n] to [m] whose outputs depend on every input."""
    return torch.tanh(M @ x) * (x**2).sum() + M @ torch.sin(x)


@pytest.mark.kata("jacobian")
def test_jacobian_matches_torch(impl):
    M, x = torch.randn(3, 5, dtype=F64), torch.randn(5, dtype=F64)
    expected = torch.autograd.functional.jacobian(lambda z: squash(z, M), x)
    with forbid(torch.func.jacrev, torch.func.jacfwd, reason="build the rows with torch.autograd.grad"):
        J = impl.jacobian(lambda z: squash(z, M), x)
    assert_close(
        J,
        expected,
        what="the Jacobian [m, n]",
        hint="row i is the gradient of output i alone (y[i]), not of y.sum(), with respect to x",
    )


@pytest.mark.kata("jacobian")
def test_jacobian_is_built_with_torch_autograd_grad(impl):
    M, x = torch.randn(3, 5, dtype=F64), torch.randn(5, dtype=F64)
    impl.jacobian(lambda z: squash(z, M), x)  # a stub fails here, with NotImplementedError
    shortcuts = sorted(name for name in calls(impl.jacobian) if name.split(".")[-1] == "jacobian")
    assert not shortcuts, f"jacobian calls {shortcuts}: the docstring asks for the rows from torch.autograd.grad"
    try:
        with forbid(torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward, reason="(a probe)"):
            impl.jacobian(lambda z: squash(z, M), x)
    except ForbiddenCall:
        return  # it asked reverse-mode autograd, as the docstring says
    raise AssertionError(
        "jacobian never called torch.autograd.grad: the docstring asks for each row as the gradient of one output, "
        "from reverse-mode autograd (finite differences are neither exact nor what is asked)"
    )


@pytest.mark.kata("jacobian")
def test_jacobian_of_a_linear_map_is_its_matrix(impl):
    M = torch.randn(2, 7)
    assert_close(
        impl.jacobian(lambda z: M @ z, torch.randn(7)),
        M,
        what="the Jacobian of x -> M @ x",
    )


@pytest.mark.kata("jvp")
def test_jvp_of_a_linear_map(impl):
    M, x, v = torch.randn(7, 2, dtype=F64), torch.randn(2, dtype=F64), torch.randn(2, dtype=F64)
    # Exact for a linear map up to rounding, 1e-16 |f| / eps ~ 1e-11; dividing by eps instead of 2 eps doubles it.
    assert_close(
        impl.jvp(lambda z: M @ z + 1.0, x, v, 1e-4),
        M @ v,
        what="J(x) @ v for f(x) = M x + 1",
        hint="divide by the distance between the two points, 2 eps; and step along v (x + eps v), not by eps on every "
        "coordinate",
        atol=1e-8,
        rtol=1e-7,
    )


@pytest.mark.kata("jvp")
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")  # inside torch.func.jvp
def test_jvp_matches_torch_func(impl):
    M, x, v = torch.randn(3, 5, dtype=F64), torch.randn(5, dtype=F64), torch.randn(5, dtype=F64)
    _, expected = torch.func.jvp(lambda z: squash(z, M), (x,), (v,))
    # At the default eps = 1e-6 a central difference is off by eps**2 f''' / 6 + 1e-16 |f| / eps, about 1e-10;
    # a one-sided difference is off by eps f'' / 2, about 1e-6.
    assert_close(
        impl.jvp(lambda z: squash(z, M), x, v),
        expected,
        what="J(x) @ v",
        hint="(f(x + eps v) - f(x - eps v)) / (2 eps): a one-sided difference is not precise enough",
        atol=1e-8,
        rtol=1e-7,
    )


@pytest.mark.kata("jvp")
def test_jvp_is_a_central_difference_with_step_eps_along_v(impl):
    # f(z) = M z**3: the central difference along v is exactly M (3 x**2 v + eps**2 v**3), 1e-6 away from
    # J v at eps = 1e-3, and rounding adds only 1e-16 |f| / eps ~ 1e-12. atol=1e-9 tells it from an exact
    # J v (autograd), a one-sided difference, a step other than the eps given, or a normalised v.
    M, x, v = torch.randn(3, 5, dtype=F64), torch.randn(5, dtype=F64), torch.randn(5, dtype=F64)
    eps, evaluations = 1e-3, []

    def f(z: torch.Tensor) -> torch.Tensor:
        evaluations.append(z)
        return M @ z**3

    with forbid(*AUTOGRAD, reason="estimate J v by a central finite difference, with f alone (no autograd)"):
        jv = impl.jvp(f, x, v, eps)
    assert len(evaluations) <= 2, (
        f"jvp evaluated f {len(evaluations)} times: J v costs two evaluations, at x + eps v and x - eps v, whatever "
        "n is (one per axis would build the whole Jacobian)"
    )
    assert_close(
        jv,
        M @ (3 * x**2 * v + eps**2 * v**3),
        what=f"the central difference of f(x) = M x**3 along v with eps = {eps}",
        hint="(f(x + eps v) - f(x - eps v)) / (2 eps), with the eps given and v as it is",
        atol=1e-9,
        rtol=0,
    )
