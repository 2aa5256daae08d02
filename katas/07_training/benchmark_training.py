"""Timings for katas/07_training/training.py: your training step (train_step with your AdamW and your
clip_grad_norm) against the same step written with torch.optim.AdamW and torch.nn.utils.clip_grad_norm_.

    pytest -m benchmark --benchmark-only katas/07_training -s                  (-s shows the summary lines)
    pytest -m benchmark --benchmark-only katas/07_training --impl=reference

Both train a copy of the same GPT2 (topic 06) on the same batch, taking turns (katakit.benchmarking's
best_times). Each test prints, and stores in benchmark.extra_info, the tokens per second of each (batch *
n_ctx tokens per step: forward, backward, clipping and the optimiser's step) and the ratio of your time to
torch's. torch's AdamW runs its default implementation (foreach: one fused operation over all parameters,
where yours loops over them). Nothing here asserts on speed.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

from katakit.benchmarking import Ratio, best_times, device_label, record, synchronised

# A character-level vocabulary, as in train_gpt.
CPU_SIZES = {"d_model": 128, "n_heads": 4, "d_head": 32, "d_mlp": 512, "n_layers": 2, "n_ctx": 64, "d_vocab": 96}
GPU_SIZES = {"d_model": 256, "n_heads": 8, "d_head": 32, "d_mlp": 1024, "n_layers": 4, "n_ctx": 128, "d_vocab": 96}

# Several rounds of training steps run for seconds by design: lift the 15 s limit of the kata tests.
pytestmark = pytest.mark.timeout(600)


def torch_step(model, optimiser, inputs, targets, max_norm: float) -> float:
    """The reference step, all torch: the same loss, clipping and AdamW as train_step."""
    model.train()
    optimiser.zero_grad()
    logits = model(inputs)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimiser.step()
    return loss.item()


def compare_with_torch(impl, benchmark, device: torch.device, sizes: dict[str, int], batch: int) -> None:
    torch.manual_seed(0)
    cfg = impl.transformer.Config(**sizes)
    ours = impl.transformer.GPT2(cfg).to(device)
    theirs = copy.deepcopy(ours)
    our_optimiser = impl.optimisers.AdamW(ours.parameters(), lr=1e-3)
    their_optimiser = torch.optim.AdamW(theirs.parameters(), lr=1e-3)
    tokens = torch.randint(0, cfg.d_vocab, (batch * cfg.n_ctx * 4,), device=device)
    inputs, targets = impl.lm_windows(tokens, cfg.n_ctx, batch, torch.Generator().manual_seed(0))

    our_loss = impl.train_step(ours, our_optimiser, inputs, targets, 1.0)
    their_loss = torch_step(theirs, their_optimiser, inputs, targets, 1.0)
    # Same answer, or the timing means nothing.
    assert abs(our_loss - their_loss) < 1e-3 * max(1.0, abs(their_loss)), (our_loss, their_loss)

    ours_run = synchronised(lambda: impl.train_step(ours, our_optimiser, inputs, targets, 1.0), device)
    candidates = {
        "ours": ours_run,
        "torch": synchronised(lambda: torch_step(theirs, their_optimiser, inputs, targets, 1.0), device),
    }
    benchmark.pedantic(ours_run, rounds=5, iterations=1, warmup_rounds=1)  # pytest-benchmark's table: yours alone
    best = best_times(candidates)  # the comparison: both taking turns
    n_tokens = batch * cfg.n_ctx
    info = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu, {torch.get_num_threads()} threads",
        "sizes": sizes,
        "batch": batch,
        **{f"{name}_ms": 1e3 * seconds for name, seconds in best.items()},
        **{f"{name}_tokens_per_s": n_tokens / seconds for name, seconds in best.items()},
        "ours_over_torch": best["ours"] / best["torch"],
    }
    benchmark.extra_info.update(info)
    what = f"training step, batch {batch} x n_ctx {cfg.n_ctx}, d_model {cfg.d_model}, {cfg.n_layers} layers"
    baseline = "torch AdamW + clip_grad_norm_"
    ratio = Ratio(what, device_label(device), "float32", best["ours"], baseline, best["torch"], n_tokens, "tokens/s")
    record(benchmark, ratio)
    print(
        f"\n[{info['device']}, batch {batch} x n_ctx {cfg.n_ctx}, d_model {cfg.d_model}, {cfg.n_layers} layers] "
        "one training step, best of several interleaved runs:\n"
        f"  yours (train_step + your AdamW)  {info['ours_ms']:8.2f} ms  {info['ours_tokens_per_s']:10.0f} tokens/s\n"
        f"  torch (AdamW, clip_grad_norm_)   {info['torch_ms']:8.2f} ms  {info['torch_tokens_per_s']:10.0f} tokens/s\n"
        f"  yours / torch: {info['ours_over_torch']:.2f}x"
    )


@pytest.mark.benchmark
@pytest.mark.kata("train_step")
def test_training_step_speed_on_cpu(impl, benchmark):
    compare_with_torch(impl, benchmark, torch.device("cpu"), CPU_SIZES, batch=8)


@pytest.mark.benchmark
@pytest.mark.gpu
@pytest.mark.kata("train_step")
def test_training_step_speed_on_gpu(impl, benchmark):
    compare_with_torch(impl, benchmark, torch.device("cuda"), GPU_SIZES, batch=32)
