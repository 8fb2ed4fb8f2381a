"""The benchmark command: its configs build BENCHMARKS.md's networks, and it measures and reports."""

import jax
import jax.numpy as jnp
import pytest

from gan_jax.core.state import count_params
from gan_jax.models import build_models
from gan_jax.tools import benchmark

# BENCHMARKS.md section 2 (PyTorch counts, BatchNorm affine parameters included).
TORCH_COUNTS = {"seed_mlp": (130_576, 117_121), "dcgan_mnist": (778_305, 138_561), "toy_pacgan": (486_402, 405_201)}
BATCH_AND_ADAM = {"seed_mlp": (64, 2e-4, 0.5), "dcgan_mnist": (64, 2e-4, 0.5), "toy_pacgan": (100, 1e-4, 0.8)}


@pytest.mark.slow
@pytest.mark.parametrize("arch", benchmark.TORCH_ARCHS)
def test_benchmark_configs_are_the_reference_setups(arch):
    config = benchmark._config(arch, {})
    shape = benchmark.ARCHS[arch][2]
    g, d = build_models(config.model, shape)
    z = jnp.zeros((2, config.model.latent_dim))
    gv = g.init(jax.random.key(0), z, train=False)
    dv = d.init(jax.random.key(1), g.apply(gv, z, train=False), train=False)
    assert (count_params(gv["params"]), count_params(dv["params"])) == TORCH_COUNTS[arch]
    assert (config.batch_size, config.optim.g_lr, config.optim.b1) == BATCH_AND_ADAM[arch]
    assert config.optim.d_lr == config.optim.g_lr and config.optim.name == "adam"
    assert config.loss == "non_saturating" and config.n_critic == 1 and config.pack == 1


@pytest.mark.slow
def test_measure_reports_a_consistent_row():
    row = benchmark.measure("seed_mlp", 0.3, 2, {"steps_per_dispatch": "4"})
    assert row["steps_per_dispatch"] == 4 and row["steps"] % 4 == 0 and row["steps"] >= 4
    # FLOPs of one step, by hand (multiply-adds x 2, batch 64): at least the forward matmuls (G twice,
    # D on real, fake and G's fake), at most forward + both backward matmuls of every pass.
    g_macs, d_macs = 100 * 128 + 128 * 128 + 128 * 784, 784 * 128 + 128 * 128 + 128
    low, high = 2 * 64 * (2 * g_macs + 3 * d_macs), 2 * 64 * (4 * g_macs + 9 * d_macs)
    assert low <= row["flops_per_step"] <= high  # counted per step, not per 4-step scan loop
    assert row["gflops_per_s"] == pytest.approx(row["flops_per_step"] * row["steps_per_s"] / 1e9, rel=0.01)
    assert row["steps_per_s"] == pytest.approx(row["steps"] / row["seconds"], rel=0.01)
    assert row["samples_per_s"] == pytest.approx(row["steps_per_s"] * 64, rel=0.01)
    assert row["peak_host_mb"] > 0 and row["compile_s"] > 0
    # The state's own bytes by hand: parameters (float32) and Adam's two moments of each, for G and D.
    n_params = sum(TORCH_COUNTS["seed_mlp"])
    assert row["state_mb"] >= 3 * 4 * n_params / 2**20 - 0.05  # rounded to 0.1 MB
    assert row["step_memory_mb"] >= row["state_mb"]  # the step reads the whole state
    assert (row["g_params"], row["d_params"]) == TORCH_COUNTS["seed_mlp"]


def test_ratio_statistics_and_table():
    assert benchmark._ratio_stats([2.0, 0.5, 1.0]) == {"min": 0.5, "median": 1.0, "max": 2.0}
    row = {"arch": "seed_mlp", "g_params": 130_576, "d_params": 117_121, "batch": 64, "steps_per_dispatch": 50,
           "steps_per_s": 300.0, "samples_per_s": 19200.0, "compile_cold_s": 3.0, "compile_warm_s": 1.0,
           "peak_host_mb": 500.0, "torch_steps_per_s": 100.0, "ratio": {"min": 2.5, "median": 3.0, "max": 3.5}}
    table = benchmark.format_table([row])
    assert "| seed_mlp | 130,576 / 117,121 | 64 | 50 | 300.0 | 19200 |" in table
    assert "2.50 / 3.00 / 3.50" in table


def test_bad_arguments_are_refused(capsys, tmp_path):
    assert benchmark.main(["--arch", "dcgan"]) == 2
    assert "seed_mlp" in capsys.readouterr().err
    assert benchmark.main(["--arch", "seed_mlp", "--compare-torch", str(tmp_path / "none.py")]) == 2
    assert "--compare-torch PATH" in capsys.readouterr().err
    assert benchmark.main(["--arch", "seed_mlp", "--config.optim.lrr=1"]) == 2


def test_matmul_and_scan_flops_by_hand():
    x, w = jnp.zeros((8, 100)), jnp.zeros((100, 128))
    assert benchmark.jaxpr_flops(jax.make_jaxpr(lambda x, w: x @ w)(x, w)) == 2 * 8 * 100 * 128

    def scanned(x, w):
        return jax.lax.scan(lambda c, _: (jnp.tanh(c @ w[:, :100]), None), x, length=7)[0]

    assert benchmark.jaxpr_flops(jax.make_jaxpr(scanned)(x, w)) == 7 * 2 * 8 * 100 * 100


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("stride,padding", [(1, "VALID"), (2, "SAME"), (2, ((1, 1), (1, 1)))])
def test_convolution_flops_count_only_taps_on_real_inputs(transpose, stride, padding):
    # Reference: convolving all-ones single-channel data with an all-ones kernel gives, at each
    # output position, the number of window taps that land on a real input element (padding and
    # the zeros a transposed convolution inserts contribute nothing), so the sum is the tap count.
    conv = jax.lax.conv_transpose if transpose else jax.lax.conv_general_dilated
    dims = ("NHWC", "HWIO", "NHWC")
    ones = conv(jnp.ones((1, 9, 7, 1)), jnp.ones((4, 3, 1, 1)), (stride, stride), padding, dimension_numbers=dims)
    taps = float(ones.sum())
    n, c_in, c_out = 5, 6, 8
    x, w = jnp.zeros((n, 9, 7, c_in)), jnp.zeros((4, 3, c_in, c_out))
    jaxpr = jax.make_jaxpr(lambda x, w: conv(x, w, (stride, stride), padding, dimension_numbers=dims))(x, w)
    assert benchmark.jaxpr_flops(jaxpr) == 2 * n * c_in * c_out * taps
    # Forward and both gradients each multiply every (input, weight) pair that meets once: 3x in all.
    grads = jax.make_jaxpr(jax.grad(lambda x, w: conv(x, w, (stride, stride), padding,
                                                      dimension_numbers=dims).sum(), argnums=(0, 1)))(x, w)
    assert benchmark.jaxpr_flops(grads) == pytest.approx(3 * 2 * n * c_in * c_out * taps)


def test_suite_table_by_hand():
    def row(label, runs, steps, mfu=None):
        r = {"label": label, "g_params": 10, "d_params": 20, "batch": 64, "runs": runs, "steps_per_s": steps,
             "samples_per_s": steps * 64 * runs, "gflops_per_s": 1500.0, "compile_cold_s": 12.34}
        return r if mfu is None else {**r, "mfu": mfu}

    table = benchmark.suite_table([row("r3gan_cifar_bf16", 1, 2.5, 0.31), row("dcgan_mnist", 1, 100.0),
                                   row("dcgan_mnist_vmap16", 16, 25.0)])
    assert "| r3gan_cifar_bf16 | 10 / 20 | 64 | 1 | 2.50 | 160 | 31.0 % | 1.50 | - | - | 12.3 |" in table
    # 16 runs x 25 steps/s = 400 run-steps/s against 100 steps/s alone: 4x.
    assert "400.0 run-steps/s, against 100.0 steps/s for one run alone" in table and "4.00x" in table


@pytest.mark.slow
def test_gpu_suite_runs_tiny_on_cpu(tmp_path):
    """The GPU suite end to end at CPU size: every measurement in its own process, one JSON, one table."""
    import json
    import subprocess
    import sys

    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "-m", "gan_jax", "benchmark", "--suite", "gpu", "--tiny", "--json", str(out)],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    labels = [r["label"] for r in record["rows"]]
    assert labels == [label for label, *_ in benchmark.SUITES["gpu"]]
    rows = {r["label"]: r for r in record["rows"]}
    assert rows["r3gan_cifar_f32"]["overrides"]["model.r3gan.bf16_stages"] == "0"
    assert "model.r3gan.bf16_stages" not in rows["r3gan_cifar_bf16"]["overrides"]  # the recipe's 3 stages
    assert rows["dcgan_mnist_vmap16"]["runs"] == 2 and rows["dcgan_mnist"]["runs"] == 1
    for r in record["rows"]:
        assert r["steps_per_s"] > 0 and r["flops_per_step"] > 0 and r["backend"] == "cpu" and "mfu" not in r
    # A vmapped step counts every run's FLOPs: the same per-run FLOPs at 2 runs.
    assert rows["dcgan_mnist_vmap16"]["flops_per_step"] == rows["dcgan_mnist"]["flops_per_step"]
    table = out.with_suffix(".md").read_text()
    assert table.count("\n| ") == len(labels) and "2 DCGAN-MNIST runs in one vmapped program" in table
