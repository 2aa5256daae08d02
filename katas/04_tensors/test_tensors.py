"""Tests for katas/04_tensors/tensors.py: numpy-100 #3-#43 in torch, with numpy as the oracle."""

import datetime
import decimal
import itertools

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from katakit.randomness import check_rng_contract
from katakit.testing import assert_close


def from_numpy(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def dtype_id(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class TemporaryTensors(TorchFunctionMode):
    """Inside the block, notes every torch call that returns a tensor with memory of its own: one whose storage
    is none of `tensors`' (a view or an in-place result shares theirs)."""

    def __init__(self, *tensors: torch.Tensor):
        super().__init__()
        self.storages = {tensor.untyped_storage().data_ptr() for tensor in tensors}
        self.made: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for output in result if isinstance(result, tuple | list) else (result,):
            if isinstance(output, torch.Tensor) and output.untyped_storage().data_ptr() not in self.storages:
                self.made.append(getattr(func, "__name__", repr(func)))
        return result


# numpy-100 #3
@pytest.mark.kata("null_vector")
def test_null_vector_is_float_zeros(impl):
    vector = impl.null_vector(7)
    assert_close(vector, torch.zeros(7), what="null_vector(7)")
    assert vector.dtype == torch.float32, f"expected torch's default float32, got {vector.dtype}"


# numpy-100 #4
@pytest.mark.kata("memory_size_in_bytes")
@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((10,), torch.float32),
        ((3, 5), torch.float64),
        ((2, 3, 7), torch.int8),
        ((5,), torch.bool),
        ((4, 3), torch.int64),
        ((), torch.complex64),
    ],
)
def test_memory_size_matches_numpy_nbytes(impl, shape, dtype):
    x = torch.zeros(shape, dtype=dtype)
    size = impl.memory_size_in_bytes(x)
    assert size == x.numpy().nbytes, (
        f"a {dtype} tensor of shape {list(shape)} takes {x.numpy().nbytes} bytes, you said {size}. "
        "Count the elements and multiply by the bytes per element (element_size)."
    )


@pytest.mark.kata("memory_size_in_bytes")
def test_memory_size_of_a_view_counts_only_its_own_elements(impl):
    parent = torch.zeros(10, 10, dtype=torch.float64)
    view = parent[2:5, :4]
    size = impl.memory_size_in_bytes(view)
    assert size == parent.numpy()[2:5, :4].nbytes == 96, (
        f"a [3, 4] float64 view takes 3 * 4 * 8 = 96 bytes, you said {size}. "
        "The storage is shared with the [10, 10] parent: don't measure the storage, count the view's elements."
    )


# numpy-100 #6
@pytest.mark.kata("null_vector_with_one")
@pytest.mark.parametrize(("n", "index"), [(10, 4), (7, 0), (5, -1), (6, -2)])
def test_null_vector_with_one_matches_numpy(impl, n, index):
    expected = np.zeros(n, dtype=np.float32)
    expected[index] = 1
    assert_close(
        impl.null_vector_with_one(n, index),
        from_numpy(expected),
        what=f"null_vector_with_one({n}, {index})",
        hint="counting from 1 instead of 0 (the fifth value is index 4), or mishandling a negative index?",
    )


# numpy-100 #7
@pytest.mark.kata("range_inclusive")
@pytest.mark.parametrize(("start", "stop"), [(10, 49), (-3, 4), (5, 5)])
def test_range_inclusive_matches_numpy(impl, start, stop):
    values = impl.range_inclusive(start, stop)
    assert_close(
        values,
        from_numpy(np.arange(start, stop + 1, dtype=np.int64)),
        what=f"range_inclusive({start}, {stop})",
        hint="torch.arange leaves out its end: the last value is missing?",
    )


# numpy-100 #8
@pytest.mark.kata("reverse")
def test_reverse_matches_numpy_and_keeps_the_input(impl):
    x = torch.randn(7, dtype=torch.float64)
    original = x.clone()
    reversed_x = impl.reverse(x)
    assert_close(reversed_x, from_numpy(x.numpy()[::-1]), what="reverse(x)", hint="sorted instead of reversed?")
    assert torch.equal(x, original), "reverse must not change its input: return a new tensor"


# numpy-100 #9
@pytest.mark.kata("arange_matrix")
@pytest.mark.parametrize(("rows", "cols"), [(3, 3), (2, 5), (5, 2)])
def test_arange_matrix_is_row_major(impl, rows, cols):
    assert_close(
        impl.arange_matrix(rows, cols),
        from_numpy(np.arange(rows * cols).reshape(rows, cols)),
        what=f"arange_matrix({rows}, {cols})",
        hint="filled column by column (transposed) instead of row by row?",
    )


# numpy-100 #10
@pytest.mark.kata("nonzero_indices")
def test_nonzero_indices_of_the_exercise(impl):
    assert_close(
        impl.nonzero_indices(torch.tensor([1, 2, 0, 0, 4, 0])),
        torch.tensor([0, 1, 4]),
        what="nonzero_indices([1, 2, 0, 0, 4, 0])",
        hint="returned the non-zero values instead of their positions?",
    )


@pytest.mark.kata("nonzero_indices")
def test_nonzero_indices_match_numpy(impl):
    # negative values pinned at the front, whatever the seed draws after them
    x = torch.cat([torch.tensor([-1.5, 0.0, -2.0]), torch.randint(-2, 3, (11,)).double()])
    assert_close(
        impl.nonzero_indices(x),
        from_numpy(np.nonzero(x.numpy())[0].astype(np.int64)),
        what="nonzero_indices(x)",
        hint="negative values are non-zero too: test x != 0, not x > 0",
    )


@pytest.mark.kata("nonzero_indices")
def test_nonzero_indices_of_zeros_is_empty_int64(impl):
    result = impl.nonzero_indices(torch.zeros(4))
    assert result.shape == (0,) and result.dtype == torch.int64, (
        f"a vector of zeros has no non-zero index: expected an empty int64 tensor of shape [0], got {result.dtype} "
        f"of shape {list(result.shape)}. torch.tensor([]) from an empty list is float32."
    )


# numpy-100 #11
@pytest.mark.kata("identity")
def test_identity_matches_numpy(impl):
    assert_close(impl.identity(5), from_numpy(np.eye(5, dtype=np.float32)), what="identity(5)")


# numpy-100 #12
@pytest.mark.kata("random_cube")
def test_random_cube_is_reproducible_from_its_generator(impl):
    seed = int(torch.randint(0, 2**31, ()))
    first = impl.random_cube(3, torch.Generator().manual_seed(seed))
    again = impl.random_cube(3, torch.Generator().manual_seed(seed))
    other = impl.random_cube(3, torch.Generator().manual_seed(seed + 1))
    assert first.shape == (3, 3, 3), f"expected shape [3, 3, 3], got {list(first.shape)}"
    assert first.dtype == torch.float32, f"expected float32 (torch's default), got {first.dtype}"
    assert torch.equal(first, again), "the same seed should give the same cube: draw from `generator=`"
    assert not torch.equal(first, other), "different seeds gave the same cube: did you ignore the generator?"


@pytest.mark.kata("random_cube")
def test_random_cube_draws_from_its_generator_only(impl):
    generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    generator_before, global_before = generator.get_state(), torch.get_rng_state()
    impl.random_cube(3, generator)
    assert not torch.equal(generator.get_state(), generator_before), (
        "the generator's state did not move: the cube was not drawn from it (pass generator=generator)"
    )
    assert torch.equal(torch.get_rng_state(), global_before), (
        "torch's global random state changed: draw from `generator`, and don't reseed or use the global state"
    )


@pytest.mark.kata("random_cube")
def test_random_cube_is_uniform_on_zero_one(impl):
    cube = impl.random_cube(7, torch.Generator().manual_seed(int(torch.randint(0, 2**31, ()))))
    assert cube.min() >= 0 and cube.max() < 1, "values should lie in [0, 1): torch.rand, not torch.randn"
    n = cube.numel()
    tolerance = 5 * (1 / 12) ** 0.5 / n**0.5  # five standard errors of the mean of n uniforms
    assert abs(cube.mean().item() - 0.5) < tolerance, f"mean {cube.mean():.3f} is too far from 0.5 for U[0, 1)"


# numpy-100 #13
@pytest.mark.kata("min_and_max")
def test_min_and_max_of_the_whole_matrix(impl):
    x = torch.randn(5, 7, dtype=torch.float64)
    smallest, largest = impl.min_and_max(x)
    assert_close(smallest, torch.tensor(x.numpy().min(), dtype=torch.float64), what="the minimum")
    assert_close(largest, torch.tensor(x.numpy().max(), dtype=torch.float64), what="the maximum")


# numpy-100 #14
@pytest.mark.kata("mean_value")
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64], ids=dtype_id)
def test_mean_value_of_floats_matches_numpy_in_their_dtype(impl, dtype):
    x = torch.rand(30, dtype=dtype)
    assert_close(
        impl.mean_value(x),
        torch.tensor(np.mean(x.numpy().astype(np.float64))).to(dtype),  # the exact mean, rounded to x's dtype
        what=f"mean_value(x) of {dtype} values",  # x.float() on float input: assert_close names the dtype mistake
    )


@pytest.mark.kata("mean_value")
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8], ids=dtype_id)
def test_mean_value_of_integers_is_a_float32_and_not_rounded(impl, dtype):
    x = torch.tensor([1, 2, 4, 4], dtype=dtype)
    assert_close(
        impl.mean_value(x),
        torch.tensor(np.mean(x.numpy()), dtype=torch.float32),
        what=f"mean_value([1, 2, 4, 4]) of {dtype} values",
        hint="integers become float32 (x.float()) before averaging; integer division (// or a cast back to int) "
        "throws away the .75",
    )


# numpy-100 #15
@pytest.mark.kata("border_of_ones")
@pytest.mark.parametrize(("rows", "cols"), [(5, 7), (4, 3), (2, 5), (1, 1)])
def test_border_of_ones_matches_numpy(impl, rows, cols):
    expected = np.ones((rows, cols), dtype=np.float32)
    expected[1:-1, 1:-1] = 0
    assert_close(
        impl.border_of_ones(rows, cols),
        from_numpy(expected),
        what=f"border_of_ones({rows}, {cols})",
        hint="the inside starts at index 1 and stops before the last index: slice 1:-1 on both axes",
    )


# numpy-100 #16
@pytest.mark.kata("pad_with_zeros")
@pytest.mark.parametrize("width", [1, 2])
def test_pad_with_zeros_matches_numpy(impl, width):
    x = torch.randn(3, 5, dtype=torch.float64)
    assert_close(
        impl.pad_with_zeros(x, width),
        from_numpy(np.pad(x.numpy(), width)),
        what=f"pad_with_zeros(x, {width})",
        hint="F.pad's tuple (left, right, top, bottom) pads only the last dimension if you give two numbers",
    )


# numpy-100 #17
@pytest.mark.kata("nan_aware_equal")
def test_nan_aware_equal_matches_numpy_equal_nan(impl):
    nan, inf = float("nan"), float("inf")
    # the last two pairs are close but not equal: torch.isclose(a, b, equal_nan=True) calls them equal
    a = torch.tensor([1.0, nan, nan, 2.0, inf, -inf, 0.0, inf, 1.0, 1e-9])
    b = torch.tensor([1.0, nan, 3.0, nan, inf, inf, -0.0, nan, 1.0000001, 0.0])
    expected = np.isclose(a.numpy(), b.numpy(), rtol=0, atol=0, equal_nan=True)
    result = impl.nan_aware_equal(a, b)
    assert torch.equal(result, from_numpy(expected)), (
        f"for a = {a.tolist()}\n and b = {b.tolist()}\nexpected {expected.tolist()}\ngot      {result.tolist()}. "
        "NaN matches only NaN: `a == b` says False for NaN == NaN, and a NaN is never equal to a number. "
        "Numbers must be exactly equal: torch.isclose has tolerances."
    )


# numpy-100 #18
@pytest.mark.kata("below_diagonal")
def test_below_diagonal_matches_numpy(impl):
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert_close(
        impl.below_diagonal(values),
        from_numpy(np.diag(values.numpy(), k=-1)),
        what="below_diagonal([1, 2, 3, 4])",
        hint="values above the diagonal? The offset of the sub-diagonal is negative",
    )


# numpy-100 #19
@pytest.mark.kata("checkerboard")
@pytest.mark.parametrize(("rows", "cols"), [(8, 8), (3, 4), (5, 6)])
def test_checkerboard_matches_numpy(impl, rows, cols):
    expected = np.zeros((rows, cols), dtype=np.int64)
    expected[1::2, ::2] = 1
    expected[::2, 1::2] = 1
    assert_close(
        impl.checkerboard(rows, cols),
        from_numpy(expected),
        what=f"checkerboard({rows}, {cols})",
        hint="top-left must be 0; with an even number of columns, arange % 2 gives stripes, not a checkerboard",
    )


# numpy-100 #20
@pytest.mark.kata("unravel_index")
def test_unravel_index_of_the_hundredth_element(impl):
    coordinates = impl.unravel_index(torch.tensor([99]), (6, 7, 8))
    assert coordinates.tolist() == [[1, 5, 3]], (
        f"the 100th element (flat index 99) of shape (6, 7, 8) is at (1, 5, 3), got {coordinates.tolist()}. "
        "Row-major: the last axis moves fastest."
    )


@pytest.mark.kata("unravel_index")
@pytest.mark.parametrize("shape", [(6, 7, 8), (2, 3, 5, 7), (5, 3)])
def test_unravel_index_matches_numpy(impl, shape):
    flat = torch.randint(0, int(np.prod(shape)), (9,))
    expected = np.stack(np.unravel_index(flat.numpy(), shape), axis=-1).astype(np.int64)
    assert_close(
        impl.unravel_index(flat, shape),
        from_numpy(expected),
        what=f"unravel_index(flat, {shape})",
        hint="column-major order (first axis fastest) instead of row-major, or coordinates stacked on the wrong axis?",
    )


# numpy-100 #21
@pytest.mark.kata("tile_pattern")
def test_tile_pattern_makes_the_checkerboard(impl):
    board = impl.tile_pattern(torch.tensor([[0, 1], [1, 0]]), 4, 4)
    assert_close(board, from_numpy(np.tile(np.array([[0, 1], [1, 0]]), (4, 4))), what="tiling [[0, 1], [1, 0]]")


@pytest.mark.kata("tile_pattern")
def test_tile_pattern_matches_numpy_tile(impl):
    pattern = torch.arange(6).reshape(2, 3)
    assert_close(
        impl.tile_pattern(pattern, 3, 2),
        from_numpy(np.tile(pattern.numpy(), (3, 2))),
        what="tile_pattern(pattern, times_down=3, times_across=2)",
        hint="times_down multiplies the rows and times_across the columns (here [2*3, 3*2]), and the whole pattern "
        "is repeated as a block, not each element in place (repeat_interleave, einops '(p down)')",
    )


# numpy-100 #22
@pytest.mark.kata("normalize")
def test_normalize_matches_numpy(impl):
    x = 3 * torch.randn(5, 7, dtype=torch.float64) + 2
    z = x.numpy()
    assert_close(
        impl.normalize(x),
        from_numpy((z - z.mean()) / z.std()),
        what="normalize(x)",
        hint="torch.std divides by N - 1 by default, np.std by N (correction=0); and normalise the whole "
        "matrix, not each row or column",
    )


# numpy-100 #23
@pytest.mark.kata("average_colors")
def test_average_colors_does_not_overflow(impl):
    a = torch.tensor([[200, 255, 1, 0], [100, 3, 254, 17]], dtype=torch.uint8)
    b = torch.tensor([[100, 255, 2, 0], [100, 4, 255, 18]], dtype=torch.uint8)
    expected = ((a.numpy().astype(np.int64) + b.numpy()) // 2).astype(np.uint8)
    assert_close(
        impl.average_colors(a, b),
        from_numpy(expected),
        what="average_colors(a, b)",
        hint="a + b in uint8 wraps around past 255 (200 + 100 -> 44); a // 2 + b // 2 loses the halves; "
        "and round down, don't round to even",
    )


@pytest.mark.kata("average_colors")
def test_average_colors_matches_numpy_on_random_colors(impl):
    a = torch.randint(0, 256, (6, 4), dtype=torch.uint8)
    b = torch.randint(0, 256, (6, 4), dtype=torch.uint8)
    expected = ((a.numpy().astype(np.int64) + b.numpy()) // 2).astype(np.uint8)
    assert_close(impl.average_colors(a, b), from_numpy(expected), what="average_colors(a, b)")


# numpy-100 #24
@pytest.mark.kata("matrix_product")
def test_matrix_product_matches_numpy(impl):
    a, b = torch.randn(5, 3, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    assert_close(impl.matrix_product(a, b), from_numpy(a.numpy() @ b.numpy()), what="matrix_product(a, b)")


# numpy-100 #25
@pytest.mark.kata("negate_between_in_place")
def test_negate_between_in_place(impl):
    x = torch.tensor([0.0, 3.0, 3.5, 5.0, 7.9, 8.0, 9.0, -4.0, 6.0])
    expected = x.numpy().copy()
    expected[(expected > 3) & (expected < 8)] *= -1
    result = impl.negate_between_in_place(x, 3.0, 8.0)
    assert result is x, "return the tensor you were given, changed in place, not a new tensor"
    assert_close(
        x,
        from_numpy(expected),
        what="x after negate_between_in_place(x, 3, 8)",
        hint="strictly between: 3 and 8 themselves stay positive; and change x itself (x[mask] *= -1)",
    )


# numpy-100 #26
@pytest.mark.kata("sum_with_start")
@pytest.mark.parametrize("start", [-1, 2.5])
def test_sum_with_start_is_pythons_sum(impl, start):
    x = torch.arange(5)
    total = impl.sum_with_start(x, start)
    expected = sum(range(5), start)
    assert total.item() == expected, (
        f"sum(range(5), {start}) is {expected} in Python, got {total.item()}. "
        "torch.sum(x, -1) reads -1 as the dimension to sum over, not as a start value."
    )


# numpy-100 #27
@pytest.mark.kata("chained_comparison")
def test_chained_comparison_matches_python_on_each_element(impl):
    # every ordering of three values, ties included
    a, b, c = torch.tensor(list(itertools.product(range(3), repeat=3))).T
    expected = [ai < bi > ci for ai, bi, ci in zip(a.tolist(), b.tolist(), c.tolist(), strict=True)]
    result = impl.chained_comparison(a, b, c)
    assert result.tolist() == expected, (
        f"a < b > c means (a < b) and (b > c) element by element:\nexpected {expected}\ngot      {result.tolist()}"
    )


# numpy-100 #28
@pytest.mark.kata("divide_integers")
def test_divide_integers_matches_numpy_true_division(impl):
    numerator = torch.tensor([7, -7, 1, -1, 0, 6, 5])
    denominator = torch.tensor([2, 2, 0, 0, 0, 3, -4])
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = numerator.numpy() / denominator.numpy()
    result = impl.divide_integers(numerator, denominator)
    assert result.is_floating_point(), f"the quotients should be floating point, got {result.dtype}: use /, not //"
    assert_close(
        result,
        from_numpy(expected),
        what="divide_integers([7, -7, 1, -1, 0, 6, 5], [2, 2, 0, 0, 0, 3, -4])",
        hint="floor or truncating division? Division by zero gives inf, -inf or NaN, not 0 or an error",
        check_dtype=False,  # the docstring promises "floating point", not a dtype: numpy's float64 or torch's float32
        equal_nan=True,
    )


# numpy-100 #29
@pytest.mark.kata("round_away_from_zero")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dtype_id)
def test_round_away_from_zero_matches_numpy(impl, dtype):
    x = torch.cat([torch.tensor([1.2, -1.2, 2.5, -2.5, 3.0, -3.0, 0.1, -0.1]), 10 * torch.randn(12)]).to(dtype)
    assert_close(
        impl.round_away_from_zero(x),
        from_numpy(np.copysign(np.ceil(np.abs(x.numpy())), x.numpy())),
        what=f"round_away_from_zero(x) in {dtype}",
        hint="ceil sends -1.2 to -1 (toward zero) and round sends 1.2 to 1: go up for positives, down for negatives",
    )


def round_half_up(value: float) -> float:
    """School rounding of one float, exactly: decimal's ROUND_HALF_UP rounds ties away from zero."""
    return float(decimal.Decimal(value).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))


@pytest.mark.kata("round_half_away_from_zero")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dtype_id)
def test_round_half_away_from_zero_on_ties(impl, dtype):
    x = torch.tensor([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 4.5], dtype=dtype)
    assert_close(
        impl.round_half_away_from_zero(x),
        torch.tensor([round_half_up(v) for v in x.tolist()], dtype=dtype),
        what=f"round_half_away_from_zero on ties (x.5) in {dtype}",
        hint="torch.round rounds ties to even (2.5 -> 2); floor(x + 0.5) is wrong for negatives (-2.5 -> -2)",
    )


@pytest.mark.kata("round_half_away_from_zero")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dtype_id)
def test_round_half_away_from_zero_of_the_awkward_floats(impl, dtype):
    half, zero = torch.tensor(0.5, dtype=dtype), torch.tensor(0.0, dtype=dtype)
    just_below_half = torch.nextafter(half, zero).item()  # 0.49999997 in float32
    odd_whole = 1 / torch.finfo(dtype).eps + 1  # 2**23 + 1 in float32: floats 1 apart there, so x + 0.5 is rounded
    x = torch.tensor([just_below_half, -just_below_half, odd_whole, -odd_whole, 0.0], dtype=dtype)
    assert_close(
        impl.round_half_away_from_zero(x),
        torch.tensor([round_half_up(v) for v in x.tolist()], dtype=dtype),
        what=f"round_half_away_from_zero({x.tolist()}) in {dtype}",
        hint="floor(|x| + 0.5) rounds twice: |x| + 0.5 is itself rounded to the dtype (0.49999997 + 0.5 is 1.0 in "
        "float32). Compare the fraction |x| - floor(|x|), which is exact, with 0.5 instead",
    )


@pytest.mark.kata("round_half_away_from_zero")
def test_round_half_away_from_zero_on_random_values(impl):
    x = 10 * torch.randn(20, dtype=torch.float64)
    assert_close(
        impl.round_half_away_from_zero(x),
        torch.tensor([round_half_up(v) for v in x.tolist()], dtype=torch.float64),
        what="round_half_away_from_zero(x)",
    )


# numpy-100 #30
@pytest.mark.kata("common_values")
def test_common_values_matches_intersect1d(impl):
    a = torch.randint(0, 10, (12,))
    b = torch.randint(0, 10, (7,))
    assert_close(
        impl.common_values(a, b),
        from_numpy(np.intersect1d(a.numpy(), b.numpy())),
        what="common_values(a, b)",
        hint="each common value once (drop repeats) and sorted",
    )


@pytest.mark.kata("common_values")
def test_common_values_of_the_docstring_and_of_disjoint_tensors(impl):
    assert impl.common_values(torch.tensor([5, 1, 5, 3]), torch.tensor([3, 5, 7])).tolist() == [3, 5], (
        "common values of [5, 1, 5, 3] and [3, 5, 7] are [3, 5]: once each, in increasing order"
    )
    assert impl.common_values(torch.tensor([1, 2]), torch.tensor([3, 4, 5])).shape == (0,), (
        "no common value: return an empty tensor of shape [0]"
    )


# numpy-100 #32
@pytest.mark.kata("complex_sqrt")
@pytest.mark.parametrize(
    ("dtype", "complex_dtype"), [(torch.float32, torch.complex64), (torch.float64, torch.complex128)], ids=dtype_id
)
def test_complex_sqrt_matches_numpy_emath(impl, dtype, complex_dtype):
    x = torch.tensor([-4.0, -1.0, 0.0, 2.25, 9.0, -0.25, -2.0], dtype=dtype)
    assert_close(
        impl.complex_sqrt(x),
        from_numpy(np.emath.sqrt(x.double().numpy())).to(complex_dtype),
        what=f"complex_sqrt(x) of {dtype} values, which should be {complex_dtype}",
        hint="sqrt of a real negative is NaN: take the root of a complex tensor; positives must stay real (no 1j)",
    )


# numpy-100 #33
@pytest.mark.kata("neighbouring_days")
def test_neighbouring_days_match_numpy_dates(impl):
    today = np.datetime64(datetime.date(2016, 7, 1), "D")
    dates = today + np.array([0, 59, -400, 365 * 60], dtype="timedelta64[D]")
    offsets = np.array([-1, 0, 1], dtype="timedelta64[D]")
    expected = (dates[:, None] + offsets).astype(np.int64)
    assert_close(
        impl.neighbouring_days(from_numpy(dates.astype(np.int64))),
        from_numpy(expected),
        what="neighbouring_days(days)",
        hint="each row is [yesterday, today, tomorrow]: the offsets -1, 0 and 1 (arange stops before its end)",
    )


# numpy-100 #34
@pytest.mark.kata("days_of_month")
@pytest.mark.parametrize(
    ("year", "month"), [(2016, 7), (2016, 2), (1900, 2), (2000, 2), (2023, 2), (1999, 12), (1969, 12), (2021, 4)]
)
def test_days_of_month_match_numpy_datetime64(impl, year, month):
    first_day = np.datetime64(f"{year:04d}-{month:02d}")
    expected = np.arange(first_day, first_day + np.timedelta64(1, "M"), dtype="datetime64[D]").astype(np.int64)
    assert_close(
        impl.days_of_month(year, month),
        from_numpy(expected),
        what=f"days_of_month({year}, {month})",
        hint="the range ends before the first day of the next month; mind leap years and December",
    )


# numpy-100 #35
@pytest.mark.kata("in_place_expression")
def test_in_place_expression_writes_into_a(impl):
    a = torch.randn(7, dtype=torch.float64)
    b = torch.randn(7, dtype=torch.float64)
    expected = (a.numpy() + b.numpy()) * (-a.numpy() / 2)
    storage = a.data_ptr()
    result = impl.in_place_expression(a, b)
    assert result is a and a.data_ptr() == storage, "return `a` itself, with the result written into its memory"
    assert_close(
        a,
        from_numpy(expected),
        what="a after in_place_expression(a, b)",
        hint="once a is overwritten its old value is gone: compute a + b (into b) before changing a",
    )


@pytest.mark.kata("in_place_expression")
def test_in_place_expression_makes_no_temporary_tensor(impl):
    a = torch.randn(7, dtype=torch.float64)
    b = torch.randn(7, dtype=torch.float64)
    with TemporaryTensors(a, b) as watch:
        impl.in_place_expression(a, b)
    assert not watch.made, (
        f"in_place_expression made temporary tensors, with {', '.join(watch.made)}: compute into a and b only, with "
        "in-place methods (b.add_(a), a.div_(-2), a.mul_(b)) or out=; `a + b`, `-a / 2` or `a.copy_(...)` of an "
        "expression each allocate a new tensor"
    )


# numpy-100 #36
@pytest.mark.kata("integer_part")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dtype_id)
def test_integer_part_truncates_toward_zero(impl, dtype):
    x = torch.cat([torch.tensor([-2.7, 2.7, -0.5, 3.0, -3.0]), 10 * torch.randn(10)]).to(dtype)
    assert_close(
        impl.integer_part(x),
        from_numpy(np.trunc(x.numpy())),
        what=f"integer_part(x) in {dtype}",
        hint="floor (and x - x % 1) sends -2.7 to -3; the integer part of -2.7 is -2",
    )


# numpy-100 #37
@pytest.mark.kata("row_ramp")
def test_row_ramp_matches_numpy(impl):
    expected = np.zeros((3, 5), dtype=np.float32) + np.arange(5)
    assert_close(
        impl.row_ramp(3, 5),
        from_numpy(expected.astype(np.float32)),
        what="row_ramp(3, 5)",
        hint="each row counts 0..cols-1, i.e. the values change along a row; a column ramp is the transpose",
    )


# numpy-100 #38
@pytest.mark.kata("tensor_from_generator")
def test_tensor_from_generator_matches_fromiter(impl):
    def squares():
        yield from (k * k for k in range(10))

    assert_close(
        impl.tensor_from_generator(squares()),
        from_numpy(np.fromiter(squares(), dtype=np.int64)),
        what="tensor_from_generator(squares())",
    )


@pytest.mark.kata("tensor_from_generator")
def test_tensor_from_generator_when_empty_gives_int64(impl):
    result = impl.tensor_from_generator(iter([]))
    assert result.shape == (0,) and result.dtype == torch.int64, (
        f"an empty generator should give an empty int64 tensor, got {result.dtype} of shape {list(result.shape)}. "
        "torch.tensor([]) is float32: give the dtype explicitly."
    )


# numpy-100 #39
@pytest.mark.kata("open_unit_interval")
@pytest.mark.parametrize("n", [10, 3, 1])
def test_open_unit_interval_matches_numpy(impl, n):
    values = impl.open_unit_interval(n)
    assert_close(
        values,
        from_numpy(np.linspace(0, 1, n + 1, endpoint=False)[1:].astype(np.float32)),
        what=f"open_unit_interval({n})",
        hint="0 and 1 are both excluded, and the gaps to 0 and 1 equal the gaps between values: n + 2 points",
    )
    assert values.min() > 0 and values.max() < 1, "both 0 and 1 must be excluded"


# numpy-100 #40
@pytest.mark.kata("sort_ascending")
def test_sort_ascending_matches_numpy(impl):
    x = torch.randint(-5, 5, (10,)).double()
    assert_close(impl.sort_ascending(x), from_numpy(np.sort(x.numpy())), what="sort_ascending(x)", hint="descending?")


# numpy-100 #42
@pytest.mark.kata("exactly_equal")
def test_exactly_equal_agrees_with_numpy(impl):
    a = torch.randn(2, 3)
    changed = a.clone()
    changed[1, 2] = 9.0
    cases = {
        "the same values": (a, a.clone()),
        "one element changed": (a, changed),
        "shapes [3] and [2, 3] that broadcast": (a[0], torch.stack([a[0], a[0]])),
        "shapes [1] and [4] that broadcast": (torch.ones(1), torch.ones(4)),
    }
    for name, (left, right) in cases.items():
        expected = bool(np.array_equal(left.numpy(), right.numpy()))
        result = impl.exactly_equal(left, right)
        assert result is expected, (
            f"{name}: expected {expected}, got {result!r}. Different shapes are never equal, even when they broadcast."
        )


# numpy-100 #43
@pytest.mark.kata("frozen_snapshot")
def test_frozen_snapshot_does_not_follow_later_changes(impl):
    x = torch.randn(3, 5, requires_grad=True)
    before = x.detach().numpy().copy()
    snapshot = impl.frozen_snapshot(x)
    with torch.no_grad():
        x.mul_(2).add_(1)
    assert_close(
        snapshot.detach(),
        from_numpy(before),
        what="the snapshot after x changed in place",
        hint="it shares memory with x: detach() and views don't copy, clone() does",
    )


@pytest.mark.kata("frozen_snapshot")
def test_frozen_snapshot_is_outside_autograd(impl):
    x = torch.randn(2, 3, requires_grad=True)
    snapshot = impl.frozen_snapshot(x * 3)
    assert not snapshot.requires_grad and snapshot.grad_fn is None, (
        f"the snapshot still belongs to autograd (grad_fn={snapshot.grad_fn}): "
        "clone() keeps the graph, detach() leaves it"
    )


@pytest.mark.kata("random_cube")
def test_random_cube_keeps_the_rng_contract(impl):
    check_rng_contract(
        lambda generator: impl.random_cube(3, generator),
        what="random_cube",
        independent={"values of the cube": lambda cube: cube.flatten()},
        sampler="torch.rand",
    )
