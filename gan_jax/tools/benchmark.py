"""Throughput of the train step for the architectures of docs/results/benchmark.md, optionally against PyTorch.

Each measurement runs in its own process, so compile times are those of a fresh start
(cold: an empty persistent compilation cache; warm: the cache the cold run filled) and
peak host memory is that of one architecture. With `--compare-torch`, every repeat runs
gan_jax and then `torch_reference.py` on the same architecture, one after the other, so
both see the same load on a shared machine; ratios gan_jax / PyTorch are reported as
min / median / max over the repeats.

    gan-jax benchmark --arch all --seconds 10 --repeats 3 --compare-torch
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# Beside a source checkout, the shared folder holds the PyTorch reference (`--compare-torch PATH` otherwise).
DEFAULT_TORCH_REFERENCE = pathlib.Path(__file__).resolve().parents[3] / "shared" / "bench" / "torch_reference.py"

# The PyTorch reference's step: its G update reuses the D update's fakes (one G forward pass); no EMA, no R1.
SAME_STEP = {"g_noise": "reuse", "ema.decay": 0.0, "reg.r1.weight": 0.0}
# arch -> (experiment file, overrides that give the benchmark's networks and that step, one example's shape)
ARCHS = {
    "seed_mlp": ("seed_mlp_mnist.py", SAME_STEP, (28, 28, 1)),
    "dcgan_mnist": ("mnist_dcgan.py", SAME_STEP, (28, 28, 1)),
    "toy_pacgan": ("grid25.py:pacgan", {**SAME_STEP, "pack": 1}, (2,)),  # the reference D judges one point at a time
    # The CIFAR-10 ResNet SNGAN step as trained (n_critic 5, batch 64): about 2.7 TFLOP, sized for an accelerator.
    "sngan_cifar": ("cifar10_sngan.py", {}, (32, 32, 3)),
    # The main job's step as trained (experiments/grid25.py: Fourier features, WGAN-GP, n_critic 2, batch 200).
    "grid25": ("grid25.py", {}, (2,)),
    # R3GAN's CIFAR-10 preset step as trained (experiments/cifar10_r3gan.py: class-conditional, batch 512,
    # RpGAN + R1 + R2, ADA); sized for an accelerator.
    "r3gan_cifar": ("cifar10_r3gan.py", {}, (32, 32, 3)),
    # StyleGAN2-ADA's `cifar` configuration (class-conditional, batch 64, lazy R1, ADA) and StudioGAN's CIFAR-10
    # BigGAN (class-conditional, batch 64, 5 D updates a step) as trained; sized for an accelerator.
    "stylegan2_cifar": ("cifar10_stylegan2_ada.py", {}, (32, 32, 3)),
    "biggan_cifar": ("cifar10_biggan.py", {}, (32, 32, 3)),
}
# Class counts of the arches whose experiment is class-conditional: their random batches get random labels.
ARCH_CLASSES = {"r3gan_cifar": 10, "stylegan2_cifar": 10, "biggan_cifar": 10}
# `--arch all`: the architectures, the ones the PyTorch reference implements.
TORCH_ARCHS = ("seed_mlp", "dcgan_mnist", "toy_pacgan")

# Dense peak throughput (FLOP/s) per device kind, for the MFU estimate: (float32, tensorfloat32). The
# SXM parts' datasheet figures without sparsity. JAX computes float32 matmuls and convolutions in TF32
# on these GPUs by default, so `mfu` is against the TF32 peak and `mfu_f32` against plain float32.
PEAK_FLOPS = {"H100": (67e12, 494.7e12), "H200": (67e12, 494.7e12), "A100": (19.5e12, 156e12)}


def _config(arch: str, overrides: dict):
    from gan_jax import config as config_lib

    file, arch_overrides, _ = ARCHS[arch]
    config = config_lib.load_config(file)
    config.unlock()
    config_lib.apply_overrides(config, {**arch_overrides, **overrides})
    config.lock()
    return config


def _real_taps(size: int, window: int, out: int, stride: int, pad_lo: int, lhs_dilation: int,
               rhs_dilation: int) -> int:
    """Along one spatial dimension: (output position, window tap) pairs that land on an input element.

    Taps on padding, or on the zeros a dilated input (a transposed convolution, the gradient of a
    strided one) has between its elements, multiply zeros and are not counted.
    """
    count = 0
    for o in range(out):
        for t in range(window):
            pos = o * stride + t * rhs_dilation - pad_lo
            count += pos >= 0 and pos % lhs_dilation == 0 and pos // lhs_dilation < size
    return count


def _eqn_flops(eqn) -> float:
    """FLOPs (2 per multiply-add with a real operand) of one matmul or convolution; 0 for anything else."""
    if eqn.primitive.name == "dot_general":
        (contract, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval.shape
        return 2.0 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[c] for c in contract)
    if eqn.primitive.name == "conv_general_dilated":
        p = eqn.params
        lhs, rhs, out = (v.aval.shape for v in (*eqn.invars[:2], eqn.outvars[0]))
        lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
        taps = 1  # (output position, kernel tap) pairs that read a real input element, over all spatial dims
        for i in range(len(rhs_spec) - 2):
            taps *= _real_taps(lhs[lhs_spec[2 + i]], rhs[rhs_spec[2 + i]], out[out_spec[2 + i]],
                               p["window_strides"][i], p["padding"][i][0], p["lhs_dilation"][i], p["rhs_dilation"][i])
        return 2.0 * out[out_spec[0]] * out[out_spec[1]] * rhs[rhs_spec[1]] * taps
    return 0.0


def jaxpr_flops(jaxpr) -> float:
    """FLOPs of the matmuls and convolutions in a (closed) jaxpr, loops counted once per iteration.

    Elementwise work is left out, as in the usual model-FLOPs-utilisation count; a `scan` body
    counts `length` times, a `cond` its most expensive branch, a `while` body once.
    """
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "cond":
            total += max(jaxpr_flops(branch) for branch in eqn.params["branches"])
            continue
        inner = sum(jaxpr_flops(v) for v in eqn.params.values() if hasattr(v, "eqns") or hasattr(v, "jaxpr"))
        total += inner * (eqn.params["length"] if name == "scan" else 1) + _eqn_flops(eqn)
    return total


def step_flops(step_fn, state, batch) -> float:
    """FLOPs of one train step: the matmuls and convolutions of the k-step program, divided by k.

    Counted from the program's jaxpr, so the count is the same on every backend and needs no
    compilation (XLA's own cost analysis differs between versions and backends: a GPU's compiled
    program hides its convolutions in library calls).
    """
    import jax

    k = jax.tree.leaves(batch)[0].shape[0]
    abstract = jax.tree.map(lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype), (state, batch))
    return jaxpr_flops(jax.make_jaxpr(step_fn)(*abstract)) / k


def matmul_size() -> int:
    """The ceiling matmul's size: 1024 on a CPU, 8192 on an accelerator (large enough to fill it)."""
    import jax

    return 1024 if jax.default_backend() == "cpu" else 8192


def matmul_flops_per_s(n: int | None = None, seconds: float = 1.0) -> float:
    """Achieved FLOP/s of a float32 n x n matmul (default `matmul_size()`) on the default device:
    the ceiling for dense nets."""
    import jax

    n = n or matmul_size()
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda x: x @ a)
    x = f(a).block_until_ready()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x = f(x / n)
        count += 1
    x.block_until_ready()
    return 2 * n**3 * count / (time.perf_counter() - start)


def measure(arch: str, seconds: float, warmup: int, overrides: dict, num_runs: int = 1) -> dict:
    """Compiles and times `arch`'s fused step in this process; returns one result row. With `num_runs` > 1,
    the step of that many runs vmapped into one program (`gan-jax sweep --mode vmap`'s), on one device."""
    compile_start = time.perf_counter()
    import jax
    import numpy as np

    from gan_jax.core.state import count_params
    from gan_jax.core.step import due_at, fuse_steps, host_scheduled, lazy_terms
    from gan_jax.data import DataSpec
    from gan_jax.loop.blueprint import make_blueprint
    from gan_jax.tools import startup

    startup.enable_compilation_cache()
    config = _config(arch, overrides)
    shape = ARCHS[arch][2]
    num_classes = ARCH_CLASSES.get(arch) if config.model.conditioning != "none" else None
    plan = make_blueprint(config, DataSpec(f"random:{arch}", shape, "image" if len(shape) == 3 else "points",
                                           config.batch_size, num_classes))
    initial = plan.init_state()
    g_params, d_params = count_params(initial.g.params), count_params(initial.d.params)
    k, batch_size = config.steps_per_dispatch, config.batch_size
    # Random real data, fixed on the device, like the PyTorch reference: the step alone is timed.
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (k, config.n_critic, batch_size) + shape).astype(np.float32)
    real = {"x": x}
    if num_classes:
        real["label"] = rng.integers(0, num_classes, (k, config.n_critic, batch_size)).astype(np.int32)
    device = jax.devices()[0]
    # The programs training dispatches, built by the run's blueprint (lazy terms: one per set of due terms).
    one_run = (initial, real)  # FLOPs are counted on one run's step
    if num_runs > 1:
        program_at = plan.runners([device], num_runs=num_runs)
        real = {key: np.broadcast_to(v, (num_runs,) + v.shape) for key, v in real.items()}
        initial = program_at(0).stack([initial] * num_runs)
    else:
        program_at = plan.runners([device])
    batch = program_at(0).put_batch(real)
    state = program_at(0).put_state(initial)
    lazy = lazy_terms(config)
    period = math.lcm(*lazy.values()) if lazy else 1
    # FLOPs of the step most dispatches run (without the lazy terms where the host schedules them).
    step_fn = fuse_steps(plan.train_step(None, 1, due_at(lazy, 1) if host_scheduled(config) else None))
    setup_sec = time.perf_counter() - compile_start

    start = time.perf_counter()
    runners = {id(program_at(i)): program_at(i) for i in range(period)}  # a lazy term's programs, each once
    compiled = {key: runner.compile(state, batch) for key, runner in runners.items()}
    compile_sec = time.perf_counter() - start
    flops_per_step = step_flops(step_fn, *one_run)
    state_mb = sum(v.nbytes for v in jax.tree.leaves(state)) / 2**20

    for i in range(max(1, -(-warmup // k))):
        state, metrics = program_at(i).step(state, batch)
    jax.block_until_ready(state)
    dispatches, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        state, metrics = program_at(dispatches).step(state, batch)  # no host sync in the timed loop
        dispatches += 1
    jax.block_until_ready((state, metrics))
    elapsed = time.perf_counter() - start
    if not all(np.all(np.isfinite(v)) for v in jax.device_get(metrics).values()):
        raise FloatingPointError(f"{arch}: non-finite metrics during the benchmark")

    steps_per_s = dispatches * k / elapsed
    flops_per_s = num_runs * flops_per_step * steps_per_s  # a vmapped step's FLOPs are one run's times num_runs
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None  # before the matmul below
    row = {
        "arch": arch, "batch": batch_size, "steps_per_dispatch": k, "steps": dispatches * k,
        "seconds": round(elapsed, 3), "steps_per_s": round(steps_per_s, 2), "runs": num_runs,
        "samples_per_s": round(steps_per_s * batch_size * num_runs, 1), "g_params": g_params, "d_params": d_params,
        "compile_s": round(compile_sec, 3), "setup_s": round(setup_sec, 3),
        "flops_per_step": flops_per_step, "gflops_per_s": round(flops_per_s / 1e9, 2),
        "matmul_gflops_per_s": round(matmul_flops_per_s() / 1e9, 1),
        "matmul_n": matmul_size(), "state_mb": round(state_mb, 1),
        "peak_host_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "device": device.device_kind, "backend": jax.default_backend(),
        "overrides": {k_: str(v) for k_, v in overrides.items()},
    }
    memory = compiled[id(program_at(1 % period))].memory_analysis()  # the program most dispatches run
    if memory is not None:  # what XLA plans for one call: inputs, outputs not aliased to them, scratch
        row["step_memory_mb"] = round((memory.argument_size_in_bytes + memory.output_size_in_bytes
                                       - memory.alias_size_in_bytes + memory.temp_size_in_bytes) / 2**20, 1)
    if stats and "peak_bytes_in_use" in stats:
        row["device_peak_mb"] = round(stats["peak_bytes_in_use"] / 2**20, 1)
    peak = next((v for name, v in PEAK_FLOPS.items() if name in device.device_kind), None)
    if peak and flops_per_step:
        row["mfu_f32"] = round(flops_per_s / peak[0], 4)
        row["mfu"] = round(flops_per_s / peak[1], 4)
    return row


def _worker(args) -> int:
    overrides = dict(json.loads(args.overrides))
    print(json.dumps(measure(args.worker, args.seconds, args.warmup, overrides, args.runs)), flush=True)
    return 0


def _last_json(text: str, what: str) -> list[dict]:
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    if not rows:
        raise RuntimeError(f"{what} printed no result:\n{text[-3000:]}")
    return rows


def _run(cmd: list[str], env: dict, what: str) -> list[dict]:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return _last_json(proc.stdout, what)


def _ratio_stats(values: list[float]) -> dict:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version(), "machine": platform.machine(), "cpu": _cpu_name(),
           "cpu_count": os.cpu_count()}
    for name in ("jax", "jaxlib", "flax", "optax", "numpy", "torch"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def format_table(rows: list[dict]) -> str:
    head = ["arch", "G / D params", "batch", "k", "steps/s", "samples/s", "GFLOP/s (matmul)",
            "compile cold s", "compile warm s", "peak host MB", "step MB", "device MB", "MFU (TF32)",
            "torch steps/s", "ratio min / med / max"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ratio = r.get("ratio")
        cells = [r["arch"], f"{r['g_params']:,} / {r['d_params']:,}", str(r["batch"]), str(r["steps_per_dispatch"]),
                 f"{r['steps_per_s']:.1f}", f"{r['samples_per_s']:.0f}",
                 f"{r['gflops_per_s']:.1f} ({r['matmul_gflops_per_s']:.0f})" if "gflops_per_s" in r else "-",
                 f"{r['compile_cold_s']:.2f}",
                 f"{r['compile_warm_s']:.2f}" if r.get("compile_warm_s") is not None else "-",
                 f"{r['peak_host_mb']:.0f}", f"{r['step_memory_mb']:.0f}" if "step_memory_mb" in r else "-",
                 f"{r['device_peak_mb']:.0f}" if "device_peak_mb" in r else "-",
                 f"{100 * r['mfu']:.1f} %" if "mfu" in r else "-",
                 f"{r['torch_steps_per_s']:.1f}" if "torch_steps_per_s" in r else "-",
                 f"{ratio['min']:.2f} / {ratio['median']:.2f} / {ratio['max']:.2f}" if ratio else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_benchmark(archs: list[str], seconds: float, repeats: int, warmup: int, overrides: dict,
                  torch_reference: pathlib.Path | None, xla_flags: str | None, torch_threads: int = 0,
                  log=print, num_runs: int = 1) -> list[dict]:
    """Measures every arch `repeats` times (alternating with PyTorch when given); one summary row each."""
    cache_dir = tempfile.mkdtemp(prefix="gan_jax_bench_cache_")  # empty: the first run compiles cold
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache_dir, GAN_JAX_COMPILATION_CACHE="1")
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    rows = []
    for arch in archs:
        runs, torch_runs = [], []
        for r in range(repeats):
            cmd = [sys.executable, "-m", "gan_jax.tools.benchmark", "--worker", arch, "--seconds", str(seconds),
                   "--warmup", str(warmup), "--overrides", json.dumps(overrides), "--runs", str(num_runs)]
            runs.append(_run(cmd, env, f"gan_jax benchmark of {arch}")[-1])
            log(f"  {arch} repeat {r + 1}/{repeats}: gan_jax {runs[-1]['steps_per_s']:.1f} steps/s "
                f"(compile {runs[-1]['compile_s']:.2f} s)")
            if torch_reference is not None and arch in TORCH_ARCHS:
                tcmd = [sys.executable, str(torch_reference), "--arch", arch, "--seconds", str(seconds),
                        "--warmup", str(warmup), "--threads", str(torch_threads)]
                torch_runs.append(_run(tcmd, dict(os.environ), f"PyTorch reference {torch_reference}")[-1])
                log(f"  {arch} repeat {r + 1}/{repeats}: torch   {torch_runs[-1]['steps_per_s']:.1f} steps/s")
        speeds = [x["steps_per_s"] for x in runs]
        median_run = sorted(runs, key=lambda x: x["steps_per_s"])[len(runs) // 2]
        row = {**median_run, "steps_per_s_all": speeds, "compile_cold_s": runs[0]["compile_s"],
               "compile_warm_s": statistics.median(x["compile_s"] for x in runs[1:]) if repeats > 1 else None,
               "peak_host_mb": max(x["peak_host_mb"] for x in runs)}
        row.pop("compile_s")
        if torch_runs:
            t = torch_runs
            row.update(torch_steps_per_s=statistics.median(x["steps_per_s"] for x in t),
                       torch_steps_per_s_all=[x["steps_per_s"] for x in t], torch_version=t[0]["torch"],
                       torch_threads=t[0]["threads"], torch_g_params=t[0]["g_params"],
                       torch_d_params=t[0]["d_params"],
                       ratio=_ratio_stats([a["steps_per_s"] / b["steps_per_s"] for a, b in zip(runs, t)]))
            if (row["g_params"], row["d_params"]) != (row["torch_g_params"], row["torch_d_params"]):
                log(f"  WARNING {arch}: parameter counts differ from PyTorch's "
                    f"({row['g_params']}/{row['d_params']} vs {row['torch_g_params']}/{row['torch_d_params']})")
        rows.append(row)
    shutil.rmtree(cache_dir, ignore_errors=True)
    return rows


def measure_startup(experiment: str, overrides: dict, log=print) -> dict:
    """Process start to first step done of `gan-jax train --config EXPERIMENT`, three ways.

    Each run is a fresh process training one dispatch (`num_steps = steps_per_dispatch`), so
    it compiles exactly the main job's step. Order: an uncounted run that prepares the data,
    no cache, cold cache (empty directory), warm cache (the directory the cold run filled).
    """
    from gan_jax import config as config_lib

    spec = config_lib.resolve_config_path(experiment)
    config = config_lib.load_config(spec)
    k = overrides.get("steps_per_dispatch", config.steps_per_dispatch)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="gan_jax_startup_"))
    flags = [f"--config.{key}={value}" for key, value in {**overrides, "num_steps": k}.items()]
    out = {"experiment": experiment, "steps": int(k)}
    for name, cache in [("prepare", "0"), ("no_cache", "0"), ("cold", "1"), ("warm", "1")]:
        env = dict(os.environ, GAN_JAX_COMPILATION_CACHE=cache, GAN_JAX_CACHE_DIR=str(tmp / "cache"))
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        workdir = tmp / name
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "gan_jax", "train", "--config", spec, "--workdir",
                               str(workdir), "--quiet", *flags], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"start-up run {name} of {experiment} failed:\n{proc.stderr[-3000:]}")
        summary = json.loads((workdir / "summary.json").read_text())
        if name != "prepare":
            out[f"first_step_s_{name}"] = round(summary["first_step_sec"], 2)
            out[f"process_wall_s_{name}"] = round(wall, 2)
            log(f"  {experiment} {name}: first step done {summary['first_step_sec']:.2f} s after process start "
                f"(whole process {wall:.2f} s)")
    shutil.rmtree(tmp, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------- suites

# name -> [(label, arch, overrides, runs)]: each a fresh process, timed once after a cold compile.
SUITES = {
    "gpu": [
        ("r3gan_cifar_f32", "r3gan_cifar", {"model.r3gan.bf16_stages": 0}, 1),
        ("r3gan_cifar_bf16", "r3gan_cifar", {}, 1),  # the recipe: its three highest-resolution stages in bfloat16
        ("dcgan_mnist", "dcgan_mnist", {}, 1),
        ("dcgan_mnist_vmap16", "dcgan_mnist", {}, 16),  # 16 runs in one program, as `gan-jax sweep --mode vmap`
        ("sngan_cifar", "sngan_cifar", {}, 1),
        ("stylegan2_cifar_f32", "stylegan2_cifar", {}, 1),
        ("stylegan2_cifar_bf16", "stylegan2_cifar", {"model.dtype": "bfloat16"}, 1),
        ("biggan_cifar_f32", "biggan_cifar", {}, 1),
        ("biggan_cifar_bf16", "biggan_cifar", {"model.dtype": "bfloat16"}, 1),
    ],
}
# --tiny: the same programs at CPU size (the suite's test), 2 runs for the vmapped row.
TINY = {
    "r3gan_cifar": {"model.r3gan.widths": "8,8,8,8", "model.r3gan.blocks": "1", "model.r3gan.cardinality": "2",
                    "batch_size": 4},
    "sngan_cifar": {"batch_size": 4, "n_critic": 1, "model.g_width": 8, "model.d_width": 8},
    "dcgan_mnist": {"batch_size": 4},
    "stylegan2_cifar": {"batch_size": 4, "model.stylegan2.channel_base": 256, "model.stylegan2.channel_max": 16,
                        "model.stylegan2.mbstd_group": 4},
    "biggan_cifar": {"batch_size": 4, "n_critic": 1, "model.biggan.g_conv_dim": 8, "model.biggan.d_conv_dim": 8},
}
SUITE_SECONDS, TINY_SECONDS = 15.0, 0.5


def suite_table(rows: list[dict]) -> str:
    """The suite's markdown table: one row per measurement, and the vmapped sweep against one run."""
    head = ["measurement", "G / D params", "batch", "runs", "steps/s", "images/s", "MFU (TF32)", "TFLOP/s",
            "step MB", "device peak MB", "compile s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["label"], f"{r['g_params']:,} / {r['d_params']:,}", str(r["batch"]), str(r.get("runs", 1)),
                 f"{r['steps_per_s']:.2f}", f"{r['samples_per_s']:.0f}",
                 f"{100 * r['mfu']:.1f} %" if "mfu" in r else "-", f"{r['gflops_per_s'] / 1e3:.2f}",
                 f"{r['step_memory_mb']:.0f}" if "step_memory_mb" in r else "-",
                 f"{r['device_peak_mb']:.0f}" if "device_peak_mb" in r else "-", f"{r['compile_cold_s']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    by_label = {r["label"]: r for r in rows}
    one, many = by_label.get("dcgan_mnist"), by_label.get("dcgan_mnist_vmap16")
    if one and many:
        speedup = many["runs"] * many["steps_per_s"] / one["steps_per_s"]
        lines.append("")
        lines.append(f"{many['runs']} DCGAN-MNIST runs in one vmapped program: {many['runs'] * many['steps_per_s']:.1f} "
                     f"run-steps/s, against {one['steps_per_s']:.1f} steps/s for one run alone (the same runs one "
                     f"after another): {speedup:.2f}x the throughput.")
    return "\n".join(lines)


def run_suite(name: str, tiny: bool, out: pathlib.Path, overrides: dict, xla_flags: str | None,
              log=lambda s: print(s, flush=True)) -> int:
    """Runs suite `name` (`--tiny`: at CPU size); writes `out` (JSON) and the markdown table beside it (.md)."""
    info = versions()
    entries = SUITES[name]
    log(f"gan-jax benchmark --suite {name}{' --tiny' if tiny else ''}: {len(entries)} measurements, "
        f"{info['cpu']}; jax {info.get('jax')}")
    started, rows = time.perf_counter(), []
    seconds = TINY_SECONDS if tiny else SUITE_SECONDS
    for label, arch, own, runs in entries:
        merged = {**own, **(TINY.get(arch, {}) if tiny else {}), **overrides}
        runs = min(runs, 2) if tiny else runs
        row = run_benchmark([arch], seconds, 1, 2, merged, None, xla_flags, log=lambda s: None, num_runs=runs)[0]
        row["label"] = label
        rows.append(row)
        log(f"  {label}: {row['steps_per_s']:.2f} steps/s x batch {row['batch']} x {runs} run(s), "
            f"{row['samples_per_s']:.0f} images/s" + (f", MFU {100 * row['mfu']:.1f} %" if "mfu" in row else "")
            + f" ({time.perf_counter() - started:.0f} s so far)")
    table = suite_table(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"suite": name, "tiny": tiny, "date": time.strftime("%Y-%m-%d", time.gmtime()),
                               "versions": info, "seconds": seconds, "overrides": overrides, "rows": rows,
                               "wall_s": round(time.perf_counter() - started, 1)}, indent=2) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"Results: {out} and {out.with_suffix('.md')} ({time.perf_counter() - started:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gan-jax benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="all", help=f"comma-separated, from {', '.join(ARCHS)}, or all "
                                                      f"({', '.join(TORCH_ARCHS)}: the PyTorch reference's)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per arch (the first compiles cold)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps after compiling")
    parser.add_argument("--compare-torch", nargs="?", const=str(DEFAULT_TORCH_REFERENCE), default=None,
                        metavar="PATH", help=f"also run the PyTorch reference (default {DEFAULT_TORCH_REFERENCE})")
    parser.add_argument("--json", default="runs/benchmark.json", help="where to write the results")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch.set_num_threads for the reference (0: torch's default, one per core)")
    parser.add_argument("--xla-flags", default=None, help="XLA_FLAGS for the gan_jax processes")
    parser.add_argument("--startup", default=None, metavar="EXPERIMENTS",
                        help="instead: time process start to first step done of these experiments "
                             "(comma-separated names), without, cold and warm compilation cache")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--suite", choices=sorted(SUITES), default=None,
                        help="instead: the named suite of measurements (gpu: the CIFAR-10 steps of R3GAN, "
                             "StyleGAN2-ADA and BigGAN in float32 and bfloat16, DCGAN, SNGAN, 16 vmapped DCGAN runs "
                             "against one), one JSON and a "
                             "markdown table")
    parser.add_argument("--tiny", action="store_true",
                        help="with --suite: shrunken networks and batches, about a minute on a CPU (a test)")
    args, rest = parser.parse_known_args(argv)
    if args.worker:
        return _worker(args)
    from gan_jax import config as config_lib
    from gan_jax.errors import GanJaxError

    try:
        rest, overrides = config_lib.split_overrides(rest)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        archs = list(TORCH_ARCHS) if args.arch == "all" else args.arch.split(",")
        unknown = [a for a in archs if a not in ARCHS]
        if unknown:
            raise config_lib.ConfigError(f"Unknown --arch {', '.join(unknown)}; use {', '.join(ARCHS)} or all.")
        if args.repeats < 1 or args.seconds <= 0:
            raise config_lib.ConfigError("--repeats must be >= 1 and --seconds > 0.")
        for arch in archs if not args.startup else []:  # refuse a bad --config.KEY before any measurement
            _config(arch, overrides)
    except GanJaxError as e:
        print(f"gan-jax benchmark: {e}", file=sys.stderr)
        return 2
    if args.suite:
        return run_suite(args.suite, args.tiny, pathlib.Path(args.json), overrides, args.xla_flags)
    if args.startup:
        results = [measure_startup(name, overrides, log=lambda s: print(s, flush=True))
                   for name in args.startup.split(",")]
        out = pathlib.Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                   "versions": versions(), "startup": results}, indent=2) + "\n")
        print(f"Results: {out}")
        return 0
    torch_reference = None
    if args.compare_torch is not None:
        torch_reference = pathlib.Path(args.compare_torch)
        if not torch_reference.is_file():
            print(f"gan-jax benchmark: no PyTorch reference at {torch_reference}; pass its path: "
                  "--compare-torch PATH/torch_reference.py", file=sys.stderr)
            return 2
    info = versions()
    print(f"gan-jax benchmark: {', '.join(archs)}; {args.repeats} x {args.seconds:g} s each; "
          f"{info['cpu']} ({info['cpu_count']} CPUs); jax {info.get('jax')}"
          + (f"; torch {info.get('torch')}" if torch_reference else ""), flush=True)
    rows = run_benchmark(archs, args.seconds, args.repeats, args.warmup, overrides, torch_reference,
                         args.xla_flags, args.torch_threads, log=lambda s: print(s, flush=True))
    print(format_table(rows))
    out = pathlib.Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "versions": info,
                               "seconds": args.seconds, "repeats": args.repeats, "overrides": overrides,
                               "xla_flags": args.xla_flags, "torch_threads": args.torch_threads, "rows": rows}, indent=2) + "\n")
    print(f"Results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
