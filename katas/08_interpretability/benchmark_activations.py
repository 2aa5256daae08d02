"""Timings for katas/08_interpretability/activations.py: what reading and changing activations costs, against a
plain forward pass.

    pytest -m benchmark --benchmark-only --impl=reference katas/08_interpretability -s

run_with_cache records every activation of your GPT-2 (topic 06) through hooks; run_with_hooks replaces some
of them. Both run the same forward pass plus the hooks' work, so their cost is reported as a ratio to the
plain forward pass on the same model and tokens. The models hold random weights (06's initialisation).
Never asserts on speed.
"""

from collections.abc import Callable

import pytest
import torch

from katakit.benchmarking import Ratio, best_times, device_label, record, synchronised

# A GPT-2 small forward pass takes seconds on a CPU: lift the 15 s limit that pyproject.toml sets for kata tests.
pytestmark = pytest.mark.timeout(600)

CPU_SIZES = {
    "tiny (2 layers, d_model 64)": {"d_model": 64, "n_heads": 4, "d_head": 16, "d_mlp": 256, "n_layers": 2},
    "small (4 layers, d_model 128)": {"d_model": 128, "n_heads": 4, "d_head": 32, "d_mlp": 512, "n_layers": 4},
    "medium (6 layers, d_model 256)": {"d_model": 256, "n_heads": 8, "d_head": 32, "d_mlp": 1024, "n_layers": 6},
}


def gpt2(impl, device: str, **sizes) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = impl.transformer.Config(**sizes, n_ctx=1024, d_vocab=1000) if sizes else impl.transformer.Config()
    return impl.transformer.GPT2(cfg).to(device).eval()


def cache_overhead(benchmark, size: str, forward: Callable, run_with_cache: Callable, who: str, against: str) -> None:
    """Time run_with_cache() against forward() on the CPU, keep the ratio for `katas bench`, and print it."""
    with torch.inference_mode():
        cache_size = len(run_with_cache()[1])
        times = best_times({"forward": forward, "run_with_cache": run_with_cache})
        benchmark.pedantic(run_with_cache, rounds=3, iterations=1, warmup_rounds=1)
    ratio = times["run_with_cache"] / times["forward"]
    benchmark.extra_info.update({"size": size, "cached_tensors": cache_size, **times, "ratio": ratio})
    what = f"{who}, {size}, batch 4 x seq 128"
    record(benchmark, Ratio(what, device_label("cpu"), "float32", times["run_with_cache"], against, times["forward"]))
    print(
        f"\n{what}, cpu: forward {times['forward'] * 1e3:.1f} ms, run_with_cache "
        f"{times['run_with_cache'] * 1e3:.1f} ms ({cache_size} tensors): {ratio:.2f} x {against}"
    )


@pytest.mark.benchmark
@pytest.mark.kata("run_with_cache")
@pytest.mark.parametrize("size", list(CPU_SIZES))
def test_run_with_cache_overhead_cpu(impl, benchmark, size):
    model = gpt2(impl, "cpu", **CPU_SIZES[size])
    tokens = torch.randint(0, model.cfg.d_vocab, (4, 128))
    forward, cached = (lambda: model(tokens)), (lambda: impl.run_with_cache(model, tokens))
    cache_overhead(benchmark, size, forward, cached, "run_with_cache", "your plain forward pass")


@pytest.mark.benchmark
@pytest.mark.parametrize("size", list(CPU_SIZES))
def test_transformer_lens_cache_overhead_cpu(benchmark, size, tmp_path):
    """A yardstick, not your code: TransformerLens' own run_with_cache against its own forward pass, on a
    Hugging Face GPT-2 of the same size (random weights), the same tokens and threads."""
    pytest.importorskip("transformer_lens", reason="pip install -e '.[interp]' installs TransformerLens")
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import GPT2Config, GPT2LMHeadModel

    sizes = CPU_SIZES[size]
    torch.manual_seed(0)
    config = GPT2Config(
        n_embd=sizes["d_model"],
        n_head=sizes["n_heads"],
        n_inner=sizes["d_mlp"],
        n_layer=sizes["n_layers"],
        n_positions=1024,
        vocab_size=1000,
    )
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    bridge = TransformerBridge.boot_transformers(str(tmp_path), device="cpu").eval()
    tokens = torch.randint(0, config.vocab_size, (4, 128))
    who = "TransformerLens' run_with_cache (a yardstick, not yours)"
    cache_overhead(
        benchmark, size, lambda: bridge(tokens), lambda: bridge.run_with_cache(tokens), who, "its plain forward pass"
    )


@pytest.mark.benchmark
@pytest.mark.gpu
@pytest.mark.kata("run_with_hooks")
def test_cache_and_patch_gpt2_small_cuda(impl, benchmark):
    """GPT-2 small's size (Config's defaults), random weights, on CUDA: a plain forward pass, run_with_cache,
    and an activation patch (layer 6's residual stream replaced by the cached one of other tokens)."""
    device = "cuda"
    model = gpt2(impl, device)
    clean = torch.randint(0, model.cfg.d_vocab, (8, 512), device=device)
    corrupted = torch.randint(0, model.cfg.d_vocab, (8, 512), device=device)
    with torch.inference_mode():
        _, cache = impl.run_with_cache(model, clean)
        patched = cache["blocks.6.hook_resid_pre"]
        hooks = {"blocks.6.hook_resid_pre": lambda resid: patched}
        runs = {
            "forward": synchronised(lambda: model(corrupted), device),
            "run_with_cache": synchronised(lambda: impl.run_with_cache(model, corrupted), device),
            "run_with_hooks (patch)": synchronised(lambda: impl.run_with_hooks(model, corrupted, hooks), device),
        }
        times = best_times(runs)
        benchmark.pedantic(runs["run_with_hooks (patch)"], rounds=10, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(times)
    what = "GPT-2 small size, batch 8 x seq 512"
    record(
        benchmark,
        *(
            Ratio(
                f"{name}, {what}",
                device_label(device),
                "float32",
                times[name],
                "your plain forward pass",
                times["forward"],
            )
            for name in ("run_with_cache", "run_with_hooks (patch)")
        ),
    )
    print(
        "\nGPT-2 small size, cuda, batch 8 x seq 512: "
        + ", ".join(f"{name} {s * 1e3:.1f} ms ({s / times['forward']:.2f} x)" for name, s in times.items())
    )
