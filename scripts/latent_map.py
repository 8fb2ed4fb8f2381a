"""Where in its latent square a 2-D mixture run's generator misses the modes: a map and the numbers.

    python scripts/latent_map.py runs/grid25 --out docs/results/grid25_latent_map.png

For a run of a `synthetic:` mixture with a 2-D uniform latent (grid25's recipe), G (the online
generator, inference mode, as evaluation samples it) is applied to an N x N grid of z over
[-1, 1]^2. Each z is coloured by the mode nearest to G(z), black where G(z) is not of high quality
(more than 3 standard deviations from every mode, PacGAN's definition). Printed: the share of high
quality on the grid, and the share of the misses that lie within `--border` grid cells of a z that
maps to another mode (misses on the borders between the modes' latent cells, where a continuous G
crosses from one mode to the next).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))


def latent_map(workdir: pathlib.Path, n: int, border: int):
    import jax.numpy as jnp

    from gan_jax.core.nets import apply_model
    from gan_jax.data import synthetic
    from gan_jax.tools.sample import load_run

    config, plan, state, step = load_run(workdir)
    if config.model.latent_dist != "uniform" or config.model.latent_dim != 2:
        raise SystemExit(f"{workdir}: needs a 2-D uniform latent (model.latent_dist='uniform', latent_dim=2).")
    name = config.data.source.split(":", 1)[1]
    means, std = synthetic.mixture(name)
    means = np.asarray(means)
    u = np.linspace(-1, 1, n, dtype=np.float32)
    z = np.stack(np.meshgrid(u, u), -1).reshape(-1, 2)
    out = np.asarray(apply_model(plan.g_model, state.g.params, state.g.model_state, jnp.asarray(z), False)[0])
    dist = np.sqrt(((out[:, None, :] - means[None]) ** 2).sum(-1))
    nearest = dist.argmin(1).reshape(n, n)
    good = (dist.min(1) < 3 * std).reshape(n, n)
    other = np.zeros_like(good)
    for dy in range(-border, border + 1):
        for dx in range(-border, border + 1):
            shifted = np.full_like(nearest, -1)
            ys, yd = (slice(dy, None), slice(None, -dy or None)) if dy >= 0 else (slice(None, dy), slice(-dy, None))
            xs, xd = (slice(dx, None), slice(None, -dx or None)) if dx >= 0 else (slice(None, dx), slice(-dx, None))
            shifted[ys, xs] = nearest[yd, xd]
            other |= (shifted >= 0) & (shifted != nearest)
    misses = ~good
    on_border = float((misses & other).sum() / max(misses.sum(), 1))
    return step, name, nearest, good, out, float(good.mean()), on_border


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, default=None, help="the PNG (default WORKDIR/latent_map.png)")
    parser.add_argument("--grid", type=int, default=400, help="z grid points per side")
    parser.add_argument("--border", type=int, default=2, help="grid cells counted as a cell border")
    args = parser.parse_args(argv)
    step, name, nearest, good, out, share, on_border = latent_map(args.workdir, args.grid, args.border)
    cell = 2 / (args.grid - 1)
    print(f"{args.workdir} (step {step}): high quality on the {args.grid}x{args.grid} z grid {100 * share:.1f} %; "
          f"{100 * on_border:.1f} % of the misses lie within {args.border * cell:.3f} (in z) of another mode's cell")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    shown = np.where(good, nearest, np.nan)
    axes[0].imshow(shown, cmap="tab20", origin="lower", extent=(-1, 1, -1, 1), interpolation="nearest")
    axes[0].set_facecolor("black")
    axes[0].set_title(f"z -> nearest mode (black: not high quality)\n{100 * share:.1f} % high quality, "
                      f"{100 * on_border:.0f} % of misses on cell borders", fontsize=10)
    axes[0].set_xlabel("z[0]")
    axes[0].set_ylabel("z[1]")
    flat = good.reshape(-1)
    keep = np.arange(flat.size) % 7 == 0
    axes[1].scatter(out[keep & flat, 0], out[keep & flat, 1], s=1, c="tab:blue", label="high quality")
    axes[1].scatter(out[keep & ~flat, 0], out[keep & ~flat, 1], s=1, c="tab:red", label="miss")
    axes[1].set_title(f"G(z) on the grid, {name}, step {step}", fontsize=10)
    axes[1].set_aspect("equal")
    axes[1].legend(loc="upper right", fontsize=8, markerscale=6)
    fig.tight_layout()
    path = args.out or args.workdir / "latent_map.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    print(f"Map: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
