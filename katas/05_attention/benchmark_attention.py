"""Timings for katas/05_attention/attention.py: your causal scaled_dot_product_attention against
torch.nn.functional.scaled_dot_product_attention on the same [batch, heads, seq, d_head] inputs.

    pytest -m benchmark --benchmark-only katas/05_attention -s       (-s shows the summary lines)
    pytest -m benchmark --benchmark-only katas/05_attention --impl=reference

Nothing here asserts on speed. Each test prints, and stores in benchmark.extra_info, the achieved
GFLOP/s (counting 4 * batch * heads * seq^2 * d_head FLOPs: the two matrix products, causal
masking not discounted), the backend torch picked for its own attention, and the ratio of your
time to torch's, twice: against torch's default backend (a fused flash-attention kernel on recent
CPUs and GPUs, which also skips the masked half of the work) and against its MATH backend (the
same unfused softmax(q k^T / sqrt(d)) v you write: the fair comparison).
"""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from katakit.benchmarking import Ratio, best_times, device_label, record, synchronised

CPU_SIZES = {"batch": 8, "heads": 12, "seq": 256, "d_head": 64}
GPU_SIZES = {"batch": 8, "heads": 16, "seq": 1024, "d_head": 64}
TOLERANCES = {torch.float32: {"atol": 1e-4, "rtol": 1e-4}, torch.bfloat16: {"atol": 5e-2, "rtol": 5e-2}}

# A timing runs for seconds by design: lift the 15 s limit that pyproject.toml sets for kata tests.
pytestmark = pytest.mark.timeout(600)


def attention_flops(batch: int, heads: int, seq: int, d_head: int) -> int:
    """q k^T and pattern @ v: two products of 2 * seq^2 * d_head FLOPs for each batch and head."""
    return 4 * batch * heads * seq**2 * d_head


def sdpa_backend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> str:
    """The backend torch's scaled_dot_product_attention picks for these inputs (causal, no mask)."""
    try:
        choice = torch._fused_sdp_choice(q, k, v, None, 0.0, True)  # private, but what the dispatcher calls
    except (AttributeError, RuntimeError, TypeError):
        return "unknown"
    names = {backend.value: name for name, backend in SDPBackend.__members__.items()}
    return names.get(int(choice), str(choice))


def compare_with_torch(impl, benchmark, device: torch.device, dtype: torch.dtype, sizes: dict[str, int]) -> None:
    q, k, v = (torch.randn(*sizes.values(), device=device, dtype=dtype) for _ in range(3))

    def torch_math() -> torch.Tensor:
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    ours = synchronised(lambda: impl.scaled_dot_product_attention(q, k, v, causal=True), device)
    candidates = {
        "ours": ours,
        "torch_default": synchronised(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), device),
        "torch_math": synchronised(torch_math, device),
    }
    # Same answer, or the timing means nothing.
    torch.testing.assert_close(ours(), candidates["torch_default"](), **TOLERANCES[dtype])

    benchmark(ours)  # pytest-benchmark's table: your attention alone
    best = best_times(candidates)  # the comparison: all three taking turns
    flops = attention_flops(**sizes)
    threads = f"cpu, {torch.get_num_threads()} threads"
    info = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else threads,
        "dtype": str(dtype).removeprefix("torch."),
        "sizes": sizes,
        "torch_default_backend": sdpa_backend(q, k, v),
        **{f"{name}_ms": 1e3 * seconds for name, seconds in best.items()},
        **{f"{name}_gflops": flops / seconds / 1e9 for name, seconds in best.items()},
        "ours_over_torch_default": best["ours"] / best["torch_default"],
        "ours_over_torch_math": best["ours"] / best["torch_math"],
    }
    benchmark.extra_info.update(info)
    what = "causal attention, " + ", ".join(f"{name} {size}" for name, size in sizes.items())
    dtype_name = str(dtype).removeprefix("torch.")
    record(
        benchmark,
        *(
            Ratio(what, device_label(device), dtype_name, best["ours"], label, best[name], flops, "GFLOP/s")
            for name, label in (
                ("torch_math", "torch SDPA, MATH backend (the same maths)"),
                ("torch_default", f"torch SDPA, default ({info['torch_default_backend']})"),
            )
        ),
    )
    print(
        f"\n[{info['device']}, {info['dtype']}, {sizes}] causal attention, best of several interleaved runs:\n"
        f"  yours              {info['ours_ms']:8.2f} ms  {info['ours_gflops']:8.1f} GFLOP/s\n"
        f"  torch (default)    {info['torch_default_ms']:8.2f} ms  {info['torch_default_gflops']:8.1f} GFLOP/s"
        f"  backend: {info['torch_default_backend']}\n"
        f"  torch (MATH)       {info['torch_math_ms']:8.2f} ms  {info['torch_math_gflops']:8.1f} GFLOP/s\n"
        f"  yours / torch: {info['ours_over_torch_default']:.2f}x (default), {info['ours_over_torch_math']:.2f}x (MATH)"
    )


@pytest.mark.benchmark
@pytest.mark.kata("scaled_dot_product_attention")
def test_causal_attention_speed_on_cpu(impl, benchmark):
    compare_with_torch(impl, benchmark, torch.device("cpu"), torch.float32, CPU_SIZES)


@pytest.mark.benchmark
@pytest.mark.gpu
@pytest.mark.kata("scaled_dot_product_attention")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_causal_attention_speed_on_gpu(impl, benchmark, dtype):
    compare_with_torch(impl, benchmark, torch.device("cuda"), dtype, GPU_SIZES)
