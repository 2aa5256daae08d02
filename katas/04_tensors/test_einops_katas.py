"""Tests for katas/04_tensors/einops_katas.py: each pattern against the plain torch ops it replaces."""

import inspect

import pytest
import torch
import torch.nn.functional as F

from katakit.testing import assert_close, calls

# Distinct sizes everywhere, so that a swapped pair of axes changes the shape or the values.
BATCH, C, H, W = 2, 3, 4, 5


def images(batch: int = BATCH, c: int = C, h: int = H, w: int = W) -> torch.Tensor:
    return torch.randn(batch, c, h, w)


# The einops function each kata's task names ("Use einops.reduce."), and one valid call of the kata.
WRITTEN_WITH = {
    "flatten_images": ("rearrange", lambda: (images(),)),
    "unflatten_images": ("rearrange", lambda: (torch.randn(BATCH, C * H * W), C, H, W)),
    "image_grid": ("rearrange", lambda: (images(batch=6), 2)),
    "swap_last_two_axes": ("rearrange", lambda: (torch.randn(2, 3, 5),)),
    "channels_last": ("rearrange", lambda: (images(),)),
    "channels_first": ("rearrange", lambda: (torch.randn(BATCH, H, W, C),)),
    "max_pool": ("reduce", lambda: (images(h=4, w=6),)),
    "mean_pool": ("reduce", lambda: (images(h=4, w=6),)),
    "split_heads": ("rearrange", lambda: (torch.randn(2, 5, 12), 3)),
    "merge_heads": ("rearrange", lambda: (torch.randn(2, 3, 5, 4),)),
    "repeat_over_batch": ("repeat", lambda: (torch.randn(5, 7), 3)),
    "repeat_kv_heads": ("repeat", lambda: (torch.randn(2, 3, 5, 4), 2)),
    "upsample_nearest": ("repeat", lambda: (images(), 2)),
    "pack_features": ("pack", lambda: (torch.randn(2), torch.randn(2, 3), torch.randn(2, 5, 7))),
    "unpack_features": ("unpack", lambda: (torch.randn(2, 1 + 3 + 5 * 7), 3, 5, 7)),
}


def einops_functions_called(kata) -> set[str]:
    """The einops functions the kata's source calls, by whatever name it reaches them: einops.reduce,
    or reduce after `from einops import reduce` (x.repeat, torch's Tensor.repeat, is not einops')."""
    namespace = inspect.unwrap(kata).__globals__
    found = set()
    for name in calls(kata):
        head, *attributes = name.split(".")
        if head == "einops" and len(attributes) == 1:  # also when einops is imported inside the kata
            found.add(attributes[0])
            continue
        target = namespace.get(head)
        for attribute in attributes:
            target = getattr(target, attribute, None)
        if getattr(target, "__module__", "").split(".")[0] == "einops":
            found.add(getattr(target, "__name__", name))
    return found


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.kata(name)) for name in WRITTEN_WITH])
def test_the_kata_is_written_with_einops(impl, name):
    function, example = WRITTEN_WITH[name]
    kata = getattr(impl, name)
    kata(*example())  # first make it work: an unwritten kata fails here, with NotImplementedError
    called = einops_functions_called(kata)
    assert function in called, (
        f"{name} does not call einops.{function} (einops functions it calls: {', '.join(sorted(called)) or 'none'}). "
        f"This kata is about einops: write it with einops.{function}, as its task says, rather than with "
        "reshape, permute, expand or cat."
    )


@pytest.mark.kata("flatten_images")
def test_flatten_images_matches_reshape(impl):
    x = images()
    assert_close(
        impl.flatten_images(x),
        x.reshape(BATCH, C * H * W),
        what="the flattened images",
        hint="the group must list the axes in memory order, (c h w); (h w c) makes channels-last rows",
    )


@pytest.mark.kata("unflatten_images")
def test_unflatten_images_matches_view(impl):
    flat = torch.randn(BATCH, C * H * W)
    assert_close(
        impl.unflatten_images(flat, C, H, W),
        flat.view(BATCH, C, H, W),
        what="the unflattened images",
        hint="split the features as (c h w), the order flatten_images merged them in",
    )


@pytest.mark.kata("unflatten_images")
def test_unflatten_images_undoes_flatten(impl):
    x = images()
    assert_close(impl.unflatten_images(x.flatten(1), C, H, W), x, what="unflatten(flatten(x))")


@pytest.mark.kata("image_grid")
def test_image_grid_matches_concatenated_rows(impl):
    rows, cols = 2, 3
    x = images(batch=rows * cols)
    expected = torch.cat([torch.cat([x[r * cols + col] for col in range(cols)], dim=-1) for r in range(rows)], dim=-2)
    assert_close(
        impl.image_grid(x, rows),
        expected,
        what="the image grid",
        hint="images fill the grid row by row: the batch splits as (rows cols), then rows merges in front of h "
        "as (rows h) and cols in front of w as (cols w)",
    )


@pytest.mark.kata("image_grid")
def test_image_grid_top_left_is_the_first_image_and_top_right_the_last_of_row_one(impl):
    rows, cols = 3, 2
    x = images(batch=rows * cols)
    grid = impl.image_grid(x, rows)
    assert_close(grid[:, :H, :W], x[0], what="the top-left tile")
    assert_close(grid[:, :H, W : 2 * W], x[1], what="the second tile of the first row")


@pytest.mark.kata("swap_last_two_axes")
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 5), (2, 7, 3, 5)], ids=["no-batch", "one-batch-axis", "two"])
def test_swap_last_two_axes_matches_transpose(impl, shape):
    x = torch.randn(shape)
    assert_close(
        impl.swap_last_two_axes(x),
        x.transpose(-1, -2),
        what="the transposed tensor",
    )


@pytest.mark.kata("channels_last")
def test_channels_last_matches_permute(impl):
    x = images()
    assert_close(impl.channels_last(x), x.permute(0, 2, 3, 1), what="the channels-last images")


@pytest.mark.kata("channels_first")
def test_channels_first_matches_permute(impl):
    x = torch.randn(BATCH, H, W, C)
    assert_close(
        impl.channels_first(x),
        x.permute(0, 3, 1, 2),
        what="the channels-first images",
    )


@pytest.mark.kata("max_pool")
@pytest.mark.parametrize("size", [2, 3])
def test_max_pool_matches_max_pool2d(impl, size):
    x = images(h=2 * 3, w=3 * 4)
    assert_close(
        impl.max_pool(x, size),
        F.max_pool2d(x, size),
        what=f"the {size}x{size} max-pooled images",
        hint="'max', not 'mean'; blocks are (h size) (block index first): (size h) picks strided pixels, not blocks",
    )


@pytest.mark.kata("max_pool")
def test_max_pool_defaults_to_2x2(impl):
    x = images(h=4, w=6)
    assert_close(impl.max_pool(x), F.max_pool2d(x, 2), what="max_pool(images) with the default size")


@pytest.mark.kata("mean_pool")
@pytest.mark.parametrize("size", [2, 3])
def test_mean_pool_matches_avg_pool2d(impl, size):
    x = images(h=2 * 3, w=3 * 4)
    assert_close(
        impl.mean_pool(x, size),
        F.avg_pool2d(x, size),
        what=f"the {size}x{size} mean-pooled images",
        hint="'mean', not 'max' or 'sum'; blocks are (h size) (block index first), not (size h)",
    )


@pytest.mark.kata("split_heads")
def test_split_heads_matches_view_and_transpose(impl):
    batch, seq, n_heads, d_head = 2, 5, 3, 4
    x = torch.randn(batch, seq, n_heads * d_head)
    assert_close(
        impl.split_heads(x, n_heads),
        x.view(batch, seq, n_heads, d_head).transpose(1, 2),
        what="the split heads",
        hint="head i owns a contiguous slice of d_model: split it as (n_heads d_head), not (d_head n_heads)",
    )


@pytest.mark.kata("merge_heads")
def test_merge_heads_matches_transpose_and_reshape(impl):
    batch, n_heads, seq, d_head = 2, 3, 5, 4
    x = torch.randn(batch, n_heads, seq, d_head)
    assert_close(
        impl.merge_heads(x),
        x.transpose(1, 2).reshape(batch, seq, n_heads * d_head),
        what="the merged heads",
        hint="merge as (n_heads d_head), head 0's features first; (d_head n_heads) interleaves the heads",
    )


@pytest.mark.kata("merge_heads")
def test_merge_heads_first_features_are_head_zero(impl):
    x = torch.randn(2, 3, 5, 4)
    assert_close(
        impl.merge_heads(x)[..., :4],
        x[:, 0],
        what="the first d_head features of the merged heads",
    )


@pytest.mark.kata("repeat_over_batch")
def test_repeat_over_batch_matches_expand(impl):
    pos_embed = torch.randn(5, 7)
    out = impl.repeat_over_batch(pos_embed, 3)
    assert_close(out, pos_embed.expand(3, 5, 7), what="the repeated positional embeddings")


@pytest.mark.kata("repeat_kv_heads")
def test_repeat_kv_heads_matches_repeat_interleave(impl):
    keys = torch.randn(2, 3, 5, 4)
    assert_close(
        impl.repeat_kv_heads(keys, 2),
        keys.repeat_interleave(2, dim=1),
        what="the repeated key heads",
        hint="copies of a key head must be adjacent: group as (kv_heads n_rep); (n_rep kv_heads) tiles the heads",
    )


@pytest.mark.kata("upsample_nearest")
@pytest.mark.parametrize("factor", [2, 3])
def test_upsample_nearest_matches_interpolate(impl, factor):
    x = images()
    assert_close(
        impl.upsample_nearest(x, factor),
        F.interpolate(x, scale_factor=factor, mode="nearest"),
        what=f"the images upsampled by {factor}",
        hint="each pixel becomes a block: (h factor) with the copy varying fastest, not (factor h), which tiles the "
        "whole image",
    )


@pytest.mark.kata("pack_features")
def test_pack_features_matches_cat(impl):
    batch, n, m, k = 2, 3, 5, 7
    scalars, vectors, matrices = torch.randn(batch), torch.randn(batch, n), torch.randn(batch, m, k)
    assert_close(
        impl.pack_features(scalars, vectors, matrices),
        torch.cat([scalars[:, None], vectors, matrices.reshape(batch, m * k)], dim=1),
        what="the packed features",
        hint="scalars first, then vectors, then the matrices flattened row by row, all behind the batch axis",
    )


@pytest.mark.kata("unpack_features")
def test_unpack_features_matches_slicing(impl):
    batch, n, m, k = 2, 3, 5, 7
    packed = torch.randn(batch, 1 + n + m * k)
    scalars, vectors, matrices = impl.unpack_features(packed, n, m, k)
    hint = "the pieces are the scalar (shape ()), then the vector ((n,)), then the matrix ((m, k)), in that order"
    assert_close(scalars, packed[:, 0], what="the unpacked scalars", hint=hint)
    assert_close(vectors, packed[:, 1 : 1 + n], what="the unpacked vectors", hint=hint)
    assert_close(matrices, packed[:, 1 + n :].reshape(batch, m, k), what="the unpacked matrices", hint=hint)
