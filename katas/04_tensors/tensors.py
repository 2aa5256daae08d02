"""Tensors: the first exercises of rougier's "100 numpy exercises", redone with torch tensors.

Each kata cites its exercise ("numpy-100 #7"), so you can compare with the numpy original at
https://github.com/rougier/numpy-100. The exercises about importing, printing versions, reading the
documentation, silencing warnings and timing a sum (#1, #2, #5, #31, #41) have no kata. Where torch
and numpy disagree (rounding, standard deviation, nonzero, integer division...), the tests expect
numpy's answer, so these katas are also a tour of the places where a numpy habit misleads you.

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

import datetime
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from jaxtyping import Bool, Complex, Float, Int, Real, Shaped, UInt8
from torch import Tensor

from katakit import detached, in_place, kata


@kata
def null_vector(n: int) -> Float[Tensor, "n"]:
    """Return a vector of `n` zeros in torch's default float dtype (numpy-100 #3).

    Shapes:
        returns: [n], float32

    Hints (the next one: katas hint null_vector 2):
        1. torch has a constructor for each common fill value.
    """
    raise NotImplementedError


@kata
def memory_size_in_bytes(x: Shaped[Tensor, "..."]) -> int:
    """Return how many bytes the elements of `x` take, as numpy's `nbytes` does (numpy-100 #4).

    Count the elements `x` shows, whatever its shape and dtype; for a view (a slice of a larger
    tensor) that is fewer bytes than the storage it shares with its parent.

    Shapes:
        x: any shape, any dtype
        returns: a Python int

    Hints (the next one: katas hint memory_size_in_bytes 2):
        1. Bytes = how many elements times how many bytes one element takes.
    """
    raise NotImplementedError


@kata
def null_vector_with_one(n: int, index: int) -> Float[Tensor, "n"]:
    """Return `n` zeros except a 1 at position `index` (numpy-100 #6).

    The exercise asks for the fifth value set to 1, that is `index=4`: indices start at 0.
    `index` is a Python index, so a negative one counts from the end.

    Shapes:
        returns: [n], float32

    Hints (the next one: katas hint null_vector_with_one 2):
        1. Start from zeros and change one element.
    """
    raise NotImplementedError


@kata
def range_inclusive(start: int, stop: int) -> Int[Tensor, "n"]:
    """Return the integers from `start` to `stop`, both included, in increasing order (numpy-100 #7).

    The exercise's "values ranging from 10 to 49" is `range_inclusive(10, 49)`: 40 values.

    Shapes:
        returns: [stop - start + 1], int64

    Hints (the next one: katas hint range_inclusive 2):
        1. Like Python's range, torch's counterpart leaves out its end: which end must you pass to get `stop`
           included?
    """
    raise NotImplementedError


@kata
def reverse(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    """Return `x` in reverse order, first element last, without changing `x` (numpy-100 #8).

    Shapes:
        x: [n]
        returns: [n]

    Hints (the next one: katas hint reverse 2):
        1. numpy's `x[::-1]` does not work in torch: tensors refuse negative slice steps.
    """
    raise NotImplementedError


@kata
def arange_matrix(rows: int, cols: int) -> Int[Tensor, "rows cols"]:
    """Return a `rows` x `cols` matrix holding 0, 1, ..., rows*cols - 1, filled row by row (numpy-100 #9).

    For 2 x 3 that is [[0, 1, 2], [3, 4, 5]].

    Shapes:
        returns: [rows, cols], int64

    Hints (the next one: katas hint arange_matrix 2):
        1. Make the flat sequence first, then give it a shape.
    """
    raise NotImplementedError


@kata
def nonzero_indices(x: Real[Tensor, "n"]) -> Int[Tensor, "k"]:
    """Return the indices, in increasing order, of the non-zero elements of `x` (numpy-100 #10).

    For [1, 2, 0, 0, 4, 0] that is [0, 1, 4]: positions, not values.

    Shapes:
        x: [n]
        returns: [k], int64, k = number of non-zero elements

    Hints (the next one: katas hint nonzero_indices 2):
        1. torch.nonzero exists, but look at the shape it returns: one row per hit, one column per dimension.
    """
    raise NotImplementedError


@kata
def identity(n: int) -> Float[Tensor, "n n"]:
    """Return the `n` x `n` identity matrix (numpy-100 #11).

    Shapes:
        returns: [n, n], float32

    Hints (the next one: katas hint identity 2):
        1. Ones on the diagonal, zeros elsewhere.
    """
    raise NotImplementedError


@kata
def random_cube(size: int, generator: torch.Generator) -> Float[Tensor, "size size size"]:
    """Return a `size` x `size` x `size` tensor of values drawn uniformly from [0, 1) (numpy-100 #12).

    Draw them from `generator`, not from torch's global random state, so that the same seed gives
    the same cube.

    Shapes:
        returns: [size, size, size], float32

    Hints (the next one: katas hint random_cube 2):
        1. Uniform on [0, 1) or standard normal? torch has a sampling function for each, in the 'Random
           sampling' list of its docs.
    """
    raise NotImplementedError


@kata
def min_and_max(x: Float[Tensor, "rows cols"]) -> tuple[Float[Tensor, ""], Float[Tensor, ""]]:
    """Return the smallest and the largest element of the whole matrix `x`, in that order (numpy-100 #13).

    Shapes:
        x: [rows, cols]
        returns: two 0-d tensors, (min, max)

    Hints (the next one: katas hint min_and_max 2):
        1. With a `dim` argument, min and max reduce one axis and return values and indices; without, the whole tensor.
    """
    raise NotImplementedError


@kata
def mean_value(x: Real[Tensor, "n"]) -> Float[Tensor, ""]:
    """Return the mean of `x` as a float, whether `x` holds floats or integers (numpy-100 #14).

    numpy averages integers happily; torch.mean refuses integer tensors. The mean of [1, 2] is 1.5, not 1.

    Shapes:
        x: [n], any integer or float dtype
        returns: 0-d float tensor (float32 for integer input, x's dtype for float input)

    Hints (the next one: katas hint mean_value 2):
        1. Try torch.mean on torch.arange(4) and read the error.
    """
    raise NotImplementedError


@kata
def border_of_ones(rows: int, cols: int) -> Float[Tensor, "rows cols"]:
    """Return a `rows` x `cols` matrix with 1 on its border and 0 inside (numpy-100 #15).

    Shapes:
        returns: [rows, cols], float32

    Hints (the next one: katas hint border_of_ones 2):
        1. Start from all ones and clear the inside, or from zeros and set the four edges.
    """
    raise NotImplementedError


@kata
def pad_with_zeros(x: Float[Tensor, "rows cols"], width: int) -> Float[Tensor, "padded_rows padded_cols"]:
    """Return `x` surrounded by a border of zeros `width` elements thick on all four sides (numpy-100 #16).

    Shapes:
        x: [rows, cols]
        returns: [rows + 2*width, cols + 2*width]

    Hints (the next one: katas hint pad_with_zeros 2):
        1. Rather than building a bigger zero matrix and copying x into it, look for the padding function
           among torch.nn.functional's operations.
    """
    raise NotImplementedError


@kata
def nan_aware_equal(a: Float[Tensor, "n"], b: Float[Tensor, "n"]) -> Bool[Tensor, "n"]:
    """Compare `a` and `b` element by element, counting two NaNs as equal (numpy-100 #17).

    numpy-100 #17 asks what `nan == nan`, `0 * nan` and `inf > nan` give: every comparison with
    NaN is False, even NaN with itself, and arithmetic with NaN gives NaN. Here a NaN should match
    a NaN, never a number; numbers (infinities included) compare as usual.

    Shapes:
        a, b: [n]
        returns: [n], bool

    Hints (the next one: katas hint nan_aware_equal 2):
        1. `==` already handles every pair except NaN with NaN: treat that case separately.
    """
    raise NotImplementedError


@kata
def below_diagonal(values: Float[Tensor, "k"]) -> Float[Tensor, "k+1 k+1"]:
    """Return a square matrix of zeros with `values` just below the main diagonal (numpy-100 #18).

    For values [1, 2, 3, 4] that is the 5 x 5 matrix with M[1, 0] = 1, M[2, 1] = 2, M[3, 2] = 3, M[4, 3] = 4.

    Shapes:
        values: [k]
        returns: [k + 1, k + 1]

    Hints (the next one: katas hint below_diagonal 2):
        1. This is a diagonal matrix whose diagonal is shifted one step down, off the main diagonal.
    """
    raise NotImplementedError


@kata
def checkerboard(rows: int, cols: int) -> Int[Tensor, "rows cols"]:
    """Return a `rows` x `cols` checkerboard of 0s and 1s with 0 in the top-left corner (numpy-100 #19).

    Element (i, j) is 0 when i + j is even, 1 when it is odd, so neighbours always differ.

    Shapes:
        returns: [rows, cols], int64

    Hints (the next one: katas hint checkerboard 2):
        1. The colour of a square depends only on the parity of row index + column index.
    """
    raise NotImplementedError


@kata
def unravel_index(flat_indices: Int[Tensor, "n"], shape: tuple[int, ...]) -> Int[Tensor, "n dims"]:
    """Turn flat indices into coordinates in a tensor of shape `shape`, counting row-major (numpy-100 #20).

    Row-major (C) order means the last coordinate moves fastest: in shape (6, 7, 8) the 100th
    element, flat index 99, sits at (1, 5, 3), because 99 = 1*(7*8) + 5*8 + 3.

    Shapes:
        flat_indices: [n], each in [0, prod(shape))
        returns: [n, len(shape)], row i holds the coordinates of flat_indices[i]

    Hints (the next one: katas hint unravel_index 2):
        1. Peel coordinates off from the last axis: the remainder by its size is the last coordinate,
           the quotient is the flat index in the remaining axes.
    """
    raise NotImplementedError


@kata
def tile_pattern(pattern: Shaped[Tensor, "p q"], times_down: int, times_across: int) -> Shaped[Tensor, "rows cols"]:
    """Repeat the whole `pattern` `times_down` times vertically and `times_across` times horizontally (numpy-100 #21).

    Like numpy's tile: tiling [[0, 1], [1, 0]] four times each way gives the 8 x 8 checkerboard.
    Each copy is the whole pattern; repeating each element in place would be a different operation.

    Shapes:
        pattern: [p, q]
        returns: [times_down * p, times_across * q]

    Hints (the next one: katas hint tile_pattern 2):
        1. torch.repeat_interleave is numpy's repeat (each element k times), not numpy's tile.
    """
    raise NotImplementedError


@kata
def normalize(x: Float[Tensor, "rows cols"]) -> Float[Tensor, "rows cols"]:
    """Shift and scale the whole matrix `x` to mean 0 and standard deviation 1, as numpy would (numpy-100 #22).

    Use one mean and one standard deviation for all the elements, and numpy's standard deviation,
    which divides by the number of elements N (np.std's default, ddof=0).

    Shapes:
        x: [rows, cols]
        returns: [rows, cols]

    Hints (the next one: katas hint normalize 2):
        1. Subtract the mean, divide by the standard deviation; both over every element.
    """
    raise NotImplementedError


@kata
def average_colors(a: UInt8[Tensor, "n 4"], b: UInt8[Tensor, "n 4"]) -> UInt8[Tensor, "n 4"]:
    """Average two batches of RGBA colours channel by channel, rounding down, as uint8 (numpy-100 #23).

    numpy-100 #23 describes a colour as four unsigned bytes. torch has no custom dtypes, so a
    colour is a row of a uint8 tensor, and uint8 arithmetic wraps around: 200 + 100 is 44 in uint8.

    Shapes:
        a, b: [n, 4], uint8, channels in [0, 255]
        returns: [n, 4], uint8, (a + b) // 2 computed without overflow

    Hints (the next one: katas hint average_colors 2):
        1. What is the largest value a + b can take, and does it fit in a byte?
    """
    raise NotImplementedError


@kata
def matrix_product(a: Float[Tensor, "rows inner"], b: Float[Tensor, "inner cols"]) -> Float[Tensor, "rows cols"]:
    """Return the matrix product of `a` and `b`, e.g. a 5x3 matrix times a 3x2 matrix (numpy-100 #24).

    Shapes:
        a: [rows, inner]
        b: [inner, cols]
        returns: [rows, cols]

    Hints (the next one: katas hint matrix_product 2):
        1. `*` multiplies element by element; the matrix product has its own operator.
    """
    raise NotImplementedError


@kata
@in_place("x")
def negate_between_in_place(x: Float[Tensor, "n"], low: float, high: float) -> Float[Tensor, "n"]:
    """Negate, in place, the elements of `x` strictly between `low` and `high`; return `x` itself (numpy-100 #25).

    "In place" means `x` itself changes: return the very tensor you were given, not a new one.
    Elements equal to `low` or `high` stay as they are.

    Shapes:
        x: [n]
        returns: [n], the same tensor object as x

    Hints (the next one: katas hint negate_between_in_place 2):
        1. Build a boolean mask of the elements to change; `low < x < high` does not work on tensors.
    """
    raise NotImplementedError


@kata
def sum_with_start(x: Real[Tensor, "n"], start: float) -> Real[Tensor, ""]:
    """Return `start` plus the sum of the elements of `x`, like Python's `sum(x, start)` (numpy-100 #26).

    numpy-100 #26 shows that `sum(range(5), -1)` is 9 with Python's sum but 10 once numpy's sum
    replaces it: there the second argument is the axis. torch.sum's second argument is a
    dimension too, so torch.sum(x, -1) sums over the last axis and ignores your start.

    Shapes:
        x: [n]
        returns: 0-d tensor

    Hints (the next one: katas hint sum_with_start 2):
        1. Which parameter of torch.sum does a second positional argument fill?
    """
    raise NotImplementedError


@kata
def chained_comparison(a: Real[Tensor, "n"], b: Real[Tensor, "n"], c: Real[Tensor, "n"]) -> Bool[Tensor, "n"]:
    """Evaluate Python's chained comparison `a < b > c` element by element (numpy-100 #27).

    numpy-100 #27 asks which expressions on an integer vector Z are legal; `Z < Z > Z` is not:
    Python rewrites `a < b > c` as `(a < b) and (b > c)`, and `and` needs a single truth value,
    which a tensor of several elements does not have.

    Shapes:
        a, b, c: [n]
        returns: [n], bool, element i is True when a[i] < b[i] and b[i] > c[i]

    Hints (the next one: katas hint chained_comparison 2):
        1. Compute each comparison separately: each gives a boolean tensor.
    """
    raise NotImplementedError


@kata
def divide_integers(numerator: Int[Tensor, "n"], denominator: Int[Tensor, "n"]) -> Float[Tensor, "n"]:
    """Divide two integer tensors element by element into floats, as numpy's `/` does (numpy-100 #28).

    7 / 2 is 3.5, not 3; 1 / 0 is inf, -1 / 0 is -inf, and 0 / 0 is NaN (numpy-100 #28's
    `np.array(0) / np.array(0)`). Do not turn those into errors or zeros.

    Shapes:
        numerator, denominator: [n], integers
        returns: [n], floating point

    Hints (the next one: katas hint divide_integers 2):
        1. `//` floors, keeps integers, and in torch raises an error on division by zero.
    """
    raise NotImplementedError


@kata
def round_away_from_zero(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    """Round each element to the next whole number away from zero (numpy-100 #29).

    Positive numbers go up, negative numbers go down: 1.2 -> 2, -1.2 -> -2, 3.0 stays 3.0.

    Shapes:
        x: [n]
        returns: [n], whole numbers in x's dtype

    Hints (the next one: katas hint round_away_from_zero 2):
        1. torch.ceil goes up and torch.floor goes down, whatever the sign: round the magnitude instead.
    """
    raise NotImplementedError


@kata
def round_half_away_from_zero(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    """Round each element to the nearest whole number, ties away from zero (numpy-100 #29, school rounding).

    1.2 -> 1, 2.5 -> 3, -2.5 -> -3, 0.5 -> 1. torch.round (like np.round and Python's round)
    sends ties to the nearest even number instead: 2.5 -> 2, 0.5 -> 0. Every float counts, the
    awkward ones too: the float just below 0.5 (0.49999997 in float32) rounds to 0, and a whole
    number such as float32's 8388609.0 (2**23 + 1) stays as it is.

    Shapes:
        x: [n]
        returns: [n], whole numbers in x's dtype

    Hints (the next one: katas hint round_half_away_from_zero 2):
        1. Try torch.round on torch.tensor([0.5, 1.5, 2.5]) and compare with what you want.
    """
    raise NotImplementedError


@kata
def common_values(a: Int[Tensor, "n"], b: Int[Tensor, "m"]) -> Int[Tensor, "k"]:
    """Return the values that appear in both `a` and `b`, each once, in increasing order (numpy-100 #30).

    This is numpy's intersect1d: for a = [5, 1, 5, 3] and b = [3, 5, 7] it is [3, 5].

    Shapes:
        a: [n]
        b: [m]
        returns: [k], k = number of distinct common values (possibly 0)

    Hints (the next one: katas hint common_values 2):
        1. torch has no intersect1d: first keep the elements of `a` that occur in `b`.
    """
    raise NotImplementedError


@kata
def complex_sqrt(x: Float[Tensor, "n"]) -> Complex[Tensor, "n"]:
    """Return the complex square roots of the real numbers `x`, so sqrt(-4) is 2j (numpy-100 #32).

    numpy-100 #32 contrasts np.sqrt(-1), which is NaN, with np.emath.sqrt(-1), which is 1j. torch.sqrt
    of a real tensor gives NaN too; the square root of a complex tensor gives the principal root.

    Shapes:
        x: [n], real
        returns: [n], complex (complex64 for float32 input, complex128 for float64)

    Hints (the next one: katas hint complex_sqrt 2):
        1. The answer depends on the dtype you take the root in, not on the function.
    """
    raise NotImplementedError


@kata
def neighbouring_days(days: Int[Tensor, "n"]) -> Int[Tensor, "n 3"]:
    """For each date, return the dates of yesterday, today and tomorrow (numpy-100 #33).

    A date is a day number: days since 1970-01-01, numpy's datetime64[D] (1970-01-02 is 1). Row i
    of the answer is [days[i] - 1, days[i], days[i] + 1].

    Shapes:
        days: [n], int64
        returns: [n, 3], int64

    Hints (the next one: katas hint neighbouring_days 2):
        1. Each row is days[i] plus the offsets [-1, 0, 1].
    """
    raise NotImplementedError


@kata
def days_of_month(year: int, month: int) -> Int[Tensor, "days"]:
    """Return the day numbers (days since 1970-01-01) of every day of `month` in `year` (numpy-100 #34).

    The exercise asks for July 2016: `days_of_month(2016, 7)` has 31 entries, from 16983 (2016-07-01)
    to 17013 (2016-07-31). February has 28 or 29 days, and the month after December is January.

    Shapes:
        returns: [days in that month], int64

    Hints (the next one: katas hint days_of_month 2):
        1. Find the day numbers of the first day of this month and of the next one; the answer is the
           range in between (end excluded).
    """
    raise NotImplementedError


@kata
@in_place("a", "b")
def in_place_expression(a: Float[Tensor, "n"], b: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    """Compute ((a + b) * (-a / 2)) into `a` itself, without a temporary tensor; return `a` (numpy-100 #35).

    `b` is yours to overwrite as scratch space. Return the tensor object `a`, holding the result.

    Shapes:
        a, b: [n]
        returns: [n], the same tensor object as a

    Hints (the next one: katas hint in_place_expression 2):
        1. In-place methods end with an underscore: add_, mul_, div_, neg_. Plan the order: once
           `a` is overwritten, its old value is gone.
    """
    raise NotImplementedError


@kata
def integer_part(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    """Return the integer part of each element, dropping the fraction toward zero: -2.7 -> -2 (numpy-100 #36).

    Keep the float dtype. numpy-100 #36 lists several ways; they disagree on negative numbers.

    Shapes:
        x: [n]
        returns: [n], x's dtype

    Hints (the next one: katas hint integer_part 2):
        1. floor(-2.7) is -3, and torch's `%` follows the sign of the divisor, so x - x % 1 floors too.
    """
    raise NotImplementedError


@kata
def row_ramp(rows: int, cols: int) -> Float[Tensor, "rows cols"]:
    """Return a `rows` x `cols` float matrix whose every row is 0, 1, ..., cols - 1 (numpy-100 #37).

    Shapes:
        returns: [rows, cols], float32

    Hints (the next one: katas hint row_ramp 2):
        1. One row is an arange; the matrix is that row stacked `rows` times.
    """
    raise NotImplementedError


@kata
def tensor_from_generator(values: Iterator[int]) -> Int[Tensor, "n"]:
    """Build an int64 tensor from the integers a generator yields, in order (numpy-100 #38).

    An empty generator gives an empty int64 tensor.

    Shapes:
        values: an iterator of ints, consumed once
        returns: [number of values], int64

    Hints (the next one: katas hint tensor_from_generator 2):
        1. torch.tensor cannot read a generator, and an empty list becomes a float tensor.
    """
    raise NotImplementedError


@kata
def open_unit_interval(n: int) -> Float[Tensor, "n"]:
    """Return `n` equally spaced values strictly between 0 and 1, both ends excluded (numpy-100 #39).

    For n = 3: [0.25, 0.5, 0.75]. The gaps to 0 and to 1 are the same as the gaps between values.

    Shapes:
        returns: [n], float32

    Hints (the next one: katas hint open_unit_interval 2):
        1. torch.linspace includes both of its ends: how many points do you need so that dropping the two ends leaves n?
    """
    raise NotImplementedError


@kata
def sort_ascending(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    """Return the elements of `x` sorted from smallest to largest (numpy-100 #40).

    Shapes:
        x: [n]
        returns: [n]

    Hints (the next one: katas hint sort_ascending 2):
        1. torch's sorting function returns two tensors, not one: the sorted values and where each came from.
    """
    raise NotImplementedError


@kata
def exactly_equal(a: Shaped[Tensor, "..."], b: Shaped[Tensor, "..."]) -> bool:
    """Return whether `a` and `b` have the same shape and the same elements, as np.array_equal (numpy-100 #42).

    Shapes that merely broadcast together are not the same: [3] and [2, 3] are never equal.

    Shapes:
        a, b: any shapes
        returns: a Python bool

    Hints (the next one: katas hint exactly_equal 2):
        1. `(a == b).all()` broadcasts, and returns a tensor rather than a bool.
    """
    raise NotImplementedError


@kata
@detached
def frozen_snapshot(x: Float[Tensor, "..."]) -> Float[Tensor, "..."]:
    """Return a copy of `x` that no later change to `x` can reach: own memory, outside autograd (numpy-100 #43).

    numpy-100 #43 makes an array read-only; torch tensors have no such flag. What torch code does
    instead, e.g. to keep an activation from a hook, is take a snapshot: a tensor with the same values
    that shares no storage with `x` and has no autograd history (requires_grad False).

    Shapes:
        x: any shape
        returns: x's shape

    Hints (the next one: katas hint frozen_snapshot 2):
        1. A snapshot must cut two links with x: the shared memory and the autograd history. Which Tensor
           method cuts which?
    """
    raise NotImplementedError
