"""einops: rearrange, reduce, repeat, pack and unpack, reshapes that say what they do.

An einops pattern names every axis, `"batch c h w -> batch h w c"`, and a parenthesised group is
one axis of the tensor made of several named ones: in `"(h d)"` the index runs over d fastest,
exactly as `reshape` lays it out. Getting the order inside a group right is most of the game.
Every kata here is about einops: write each one with the einops function its task names (the tests check).

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

import einops
from jaxtyping import Float
from torch import Tensor

from katakit import kata


@kata
def flatten_images(images: Float[Tensor, "batch c h w"]) -> Float[Tensor, "batch c*h*w"]:
    """Flatten each image of a batch into one vector, in the memory order of its axes (c, then h, then w).

    This is what a linear layer in front of a convolutional network needs: one row of features per image.
    Use einops.rearrange.

    Shapes:
        images: [batch, c, h, w]
        returns: [batch, c * h * w]

    Hints:
        1. The batch axis stays; the three others become a single axis.
        2. einops.rearrange: axes written inside parentheses on the right-hand side are merged into one axis,
           the first of them varying slowest.
    """
    return einops.rearrange(images, "batch c h w -> batch (c h w)")


@kata
def unflatten_images(flat: Float[Tensor, "batch features"], c: int, h: int, w: int) -> Float[Tensor, "batch c h w"]:
    """Undo `flatten_images`: turn each row of c*h*w features back into a [c, h, w] image.

    The features are laid out as flatten_images lays them out: c slowest, w fastest. Use einops.rearrange.

    Shapes:
        flat: [batch, c * h * w]
        returns: [batch, c, h, w]

    Hints:
        1. The group is now on the left-hand side; einops needs the sizes of all but one of its axes.
        2. einops.rearrange with the group on the left, its axes in the order they were flattened (c slowest),
           and their sizes passed as keyword arguments.
    """
    return einops.rearrange(flat, "batch (c h w) -> batch c h w", c=c, h=h, w=w)


@kata
def image_grid(images: Float[Tensor, "batch c h w"], rows: int) -> Float[Tensor, "c grid_h grid_w"]:
    """Tile a batch of rows * cols images into one big image, `rows` images down and cols across.

    The images fill the grid row by row: image 0 is top left, image 1 to its right, and image
    `cols` starts the second row. Use einops.rearrange.

    Shapes:
        images: [rows * cols, c, h, w]
        returns: [c, rows * h, cols * w]

    Hints:
        1. The batch axis is really two axes, the grid row and the grid column of each image: split it, then
           merge each with the matching pixel axis.
        2. A row of output pixels is indexed by (grid row, pixel row inside the image): in each merged group
           the grid index varies slowest, so it comes first.
        3. einops works out the number of grid columns from the batch size once you pass `rows` as a keyword
           argument.
    """
    return einops.rearrange(images, "(rows cols) c h w -> c (rows h) (cols w)", rows=rows)


@kata
def swap_last_two_axes(x: Float[Tensor, "*batch m n"]) -> Float[Tensor, "*batch n m"]:
    """Transpose the last two axes of a tensor with any number of leading (batch) axes. Use einops.rearrange.

    Shapes:
        x: [*batch, m, n], any number of leading axes (even none)
        returns: [*batch, n, m]

    Hints:
        1. You do not know how many leading axes there are, so you cannot name them one by one.
        2. einops patterns accept "..." for "all the other axes, left as they are".
    """
    return einops.rearrange(x, "... m n -> ... n m")


@kata
def channels_last(images: Float[Tensor, "batch c h w"]) -> Float[Tensor, "batch h w c"]:
    """Reorder a batch of images from channels-first (PyTorch's layout) to channels-last (PIL's, numpy's).

    Use einops.rearrange.

    Shapes:
        images: [batch, c, h, w]
        returns: [batch, h, w, c]

    Hints:
        1. No axis is split or merged: it is a pure permutation.
        2. einops.rearrange with the same four names on both sides, in the new order.
    """
    return einops.rearrange(images, "batch c h w -> batch h w c")


@kata
def channels_first(images: Float[Tensor, "batch h w c"]) -> Float[Tensor, "batch c h w"]:
    """Reorder a batch of channels-last images to channels-first, the layout torch.nn.Conv2d expects.

    Use einops.rearrange.

    Shapes:
        images: [batch, h, w, c]
        returns: [batch, c, h, w]

    Hints:
        1. The inverse permutation of channels_last.
        2. einops.rearrange; name the axes, and read the pattern aloud to check it.
    """
    return einops.rearrange(images, "batch h w c -> batch c h w")


@kata
def max_pool(images: Float[Tensor, "batch c h w"], size: int = 2) -> Float[Tensor, "batch c h_out w_out"]:
    """Max-pool: cut each image into size x size blocks and keep the largest value of each block.

    h and w are multiples of `size`; the blocks do not overlap. Use einops.reduce.

    Shapes:
        images: [batch, c, h, w]
        returns: [batch, c, h // size, w // size]

    Hints:
        1. Split h into (block row, row inside the block), the same for w, and reduce over the two inner axes.
        2. einops.reduce splits and reduces in one pattern: in each split group the block index comes first
           and the offset inside the block last. Name the reduction as a string and pass the block sizes as
           keywords.
    """
    return einops.reduce(images, "batch c (h dh) (w dw) -> batch c h w", "max", dh=size, dw=size)


@kata
def mean_pool(images: Float[Tensor, "batch c h w"], size: int = 2) -> Float[Tensor, "batch c h_out w_out"]:
    """Average-pool: cut each image into size x size blocks and keep the mean of each block.

    h and w are multiples of `size`; the blocks do not overlap. Use einops.reduce.

    Shapes:
        images: [batch, c, h, w]
        returns: [batch, c, h // size, w // size]

    Hints:
        1. The same split as max_pool; only the reduction changes.
        2. einops.reduce takes the reduction by name; a block is size consecutive rows by size consecutive
           columns.
    """
    return einops.reduce(images, "batch c (h dh) (w dw) -> batch c h w", "mean", dh=size, dw=size)


@kata
def split_heads(x: Float[Tensor, "batch seq d_model"], n_heads: int) -> Float[Tensor, "batch n_heads seq d_head"]:
    """Split the model dimension into attention heads: head i owns features i*d_head ... (i+1)*d_head - 1.

    This is how nn.MultiheadAttention and GPT-2 lay out the heads inside d_model. Use einops.rearrange.

    Shapes:
        x: [batch, seq, d_model], d_model = n_heads * d_head
        returns: [batch, n_heads, seq, d_head]

    Hints:
        1. Each head is a contiguous slice of d_model: which of (head, feature-in-head) varies slowest?
        2. einops.rearrange: split d_model into a group with the head index slowest, tell einops how many
           heads there are (it infers d_head), and move the head axis in front of seq.
    """
    return einops.rearrange(x, "batch seq (n_heads d_head) -> batch n_heads seq d_head", n_heads=n_heads)


@kata
def merge_heads(x: Float[Tensor, "batch n_heads seq d_head"]) -> Float[Tensor, "batch seq n_heads*d_head"]:
    """Undo split_heads: concatenate the heads' features back into d_model, head 0 first. Use einops.rearrange.

    Shapes:
        x: [batch, n_heads, seq, d_head]
        returns: [batch, seq, n_heads * d_head]

    Hints:
        1. The head axis goes back behind seq and merges with d_head.
        2. Merge in the order split_heads assumed, head index slowest and feature inside the head fastest; the
           reverse order would interleave the heads.
    """
    return einops.rearrange(x, "batch n_heads seq d_head -> batch seq (n_heads d_head)")


@kata
def repeat_over_batch(pos_embed: Float[Tensor, "seq d_model"], batch: int) -> Float[Tensor, "batch seq d_model"]:
    """Give every sequence of a batch the same positional embeddings, along a new leading batch axis.

    Use einops.repeat. (It may return a view that shares pos_embed's memory, as torch's expand does: fine here.)

    Shapes:
        pos_embed: [seq, d_model]
        batch: the number of copies
        returns: [batch, seq, d_model]

    Hints:
        1. A new axis appears on the right-hand side that the left-hand side does not have.
        2. einops.repeat with the new axis' size as a keyword argument.
    """
    return einops.repeat(pos_embed, "seq d_model -> batch seq d_model", batch=batch)


@kata
def repeat_kv_heads(
    keys: Float[Tensor, "batch kv_heads seq d_head"], n_rep: int
) -> Float[Tensor, "batch n_heads seq d_head"]:
    """Grouped-query attention: repeat each key head n_rep times so that n_rep query heads share it.

    With kv_heads key heads and n_heads = kv_heads * n_rep query heads, query head i reads key
    head i // n_rep: the copies of a key head sit next to each other (0, 0, 1, 1, ... for n_rep = 2).
    Use einops.repeat.

    Shapes:
        keys: [batch, kv_heads, seq, d_head]
        returns: [batch, kv_heads * n_rep, seq, d_head]

    Hints:
        1. Which of (key head, copy) must vary fastest along the new head axis?
        2. einops.repeat with a new copy axis merged into the head axis: the copy index goes last in the
           group, so that the copies are adjacent; first, it would tile the whole set of heads.
    """
    return einops.repeat(keys, "batch kv_heads seq d -> batch (kv_heads n_rep) seq d", n_rep=n_rep)


@kata
def upsample_nearest(images: Float[Tensor, "batch c h w"], factor: int) -> Float[Tensor, "batch c h_out w_out"]:
    """Nearest-neighbour upsampling: every pixel becomes a factor x factor block of copies of itself.

    Use einops.repeat.

    Shapes:
        images: [batch, c, h, w]
        returns: [batch, c, h * factor, w * factor]

    Hints:
        1. The reverse of pooling: each output row is (input row, copy), the copy varying fastest.
        2. einops.repeat: on the right-hand side merge each spatial axis with a new copy axis, the copy axis
           last in its group, and pass the number of copies as keyword arguments.
    """
    return einops.repeat(images, "batch c h w -> batch c (h fh) (w fw)", fh=factor, fw=factor)


@kata
def pack_features(
    scalars: Float[Tensor, "batch"],
    vectors: Float[Tensor, "batch n"],
    matrices: Float[Tensor, "batch m k"],
) -> Float[Tensor, "batch features"]:
    """Pack three per-example inputs of different shapes into one feature row per example.

    The row holds the scalar first, then the n vector entries, then the m * k matrix entries
    (row by row): 1 + n + m * k features. Use einops.pack.

    Shapes:
        scalars: [batch]
        vectors: [batch, n]
        matrices: [batch, m, k]
        returns: [batch, 1 + n + m * k]

    Hints:
        1. Each input keeps its batch axis and flattens everything else; then the pieces are concatenated.
        2. einops.pack does both at once: its pattern names the shared batch axis and puts a `*` for whatever
           each input has after it. It also returns the shapes needed to undo it (you only need the packed
           tensor).
    """
    packed, _ = einops.pack([scalars, vectors, matrices], "batch *")
    return packed


@kata
def unpack_features(
    packed: Float[Tensor, "batch features"], n: int, m: int, k: int
) -> tuple[Float[Tensor, "batch"], Float[Tensor, "batch n"], Float[Tensor, "batch m k"]]:
    """Undo pack_features: split each row back into the scalar, the n-vector and the m x k matrix.

    Use einops.unpack.

    Shapes:
        packed: [batch, 1 + n + m * k]
        returns: (scalars [batch], vectors [batch, n], matrices [batch, m, k])

    Hints:
        1. einops.unpack needs, for each piece, the shape of its "*" part.
        2. A piece's "*" part is the shape it had after its batch axis: a scalar had no axes left (the empty
           shape), a vector one, a matrix two.
    """
    scalars, vectors, matrices = einops.unpack(packed, [(), (n,), (m, k)], "batch *")
    return scalars, vectors, matrices
