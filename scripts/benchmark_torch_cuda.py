"""The PyTorch reference's networks and step on a CUDA device, for the GPU table of docs/results/benchmark.md.

`../shared/bench/torch_reference.py` times its step on the CPU. This script imports its
networks, Adam settings and batch sizes and times the same step (one D update, one G update
on the D update's fakes, non-saturating loss) on a GPU, eager, with TF32 allowed for matmuls
and convolutions (what JAX does with float32 on such GPUs by default) and cuDNN autotuning on,
synchronising only around the timed loop. Prints one JSON line per (arch, batch).

    python scripts/benchmark_torch_cuda.py --arch seed_mlp,dcgan_mnist,toy_pacgan --batch 512
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = ROOT.parent / "shared" / "bench" / "torch_reference.py"


def load_reference(path: pathlib.Path):
    if not path.is_file():
        raise SystemExit(f"No PyTorch reference at {path}; pass its path with --reference PATH.")
    spec = importlib.util.spec_from_file_location("torch_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench(ref, arch: str, batch: int, seconds: float, warmup: int, device: str) -> dict:
    import torch
    from torch import nn

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    g, d = (m.to(dev) for m in ref.build(arch))
    lr, b1 = ref.ADAM[arch]
    g_opt = torch.optim.Adam(g.parameters(), lr, betas=(b1, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), lr, betas=(b1, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real = torch.rand(batch, *ref.DATA_SHAPE[arch], device=dev) * 2 - 1
    ones, zeros = torch.ones(batch, 1, device=dev), torch.zeros(batch, 1, device=dev)

    def step():
        fake = g(torch.randn(batch, ref.Z_DIM[arch], device=dev))
        d_opt.zero_grad(set_to_none=True)
        (bce(d(real), ones) + bce(d(fake.detach()), zeros)).backward()
        d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        bce(d(fake), ones).backward()
        g_opt.step()

    for _ in range(warmup):
        step()
    sync()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    sync()
    elapsed = time.perf_counter() - start
    row = {"arch": arch, "batch": batch, "steps": count, "seconds": round(elapsed, 3),
           "steps_per_s": round(count / elapsed, 2), "samples_per_s": round(count * batch / elapsed, 1),
           "torch": torch.__version__, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}
    if dev.type == "cuda":
        row["device_peak_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        torch.cuda.reset_peak_memory_stats(dev)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=pathlib.Path, default=DEFAULT_REFERENCE, help="torch_reference.py")
    parser.add_argument("--arch", default="seed_mlp,dcgan_mnist,toy_pacgan", help="comma-separated")
    parser.add_argument("--batch", type=int, nargs="*", default=[],
                        help="batch sizes to time besides each arch's own (BENCHMARKS.md section 2)")
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per measurement")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--device", default="cuda", help="torch device (cpu to try the script without a GPU)")
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("No CUDA device is visible to PyTorch; use --device cpu to run on the CPU.")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    ref = load_reference(args.reference)
    for arch in args.arch.split(","):
        if arch not in ref.BATCH:
            raise SystemExit(f"The reference has no arch {arch!r}; it has {', '.join(ref.BATCH)}.")
        for batch in [ref.BATCH[arch], *args.batch]:
            print(json.dumps(bench(ref, arch, batch, args.seconds, args.warmup, args.device)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
