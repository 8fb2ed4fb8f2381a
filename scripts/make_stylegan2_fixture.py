"""Writes tests/fixtures/stylegan2_reference.npz: our StyleGAN2 networks' parameters run through the
reference PyTorch code (NVlabs/stylegan2-ada-pytorch), with its outputs for fixed inputs.

    python scripts/make_stylegan2_fixture.py --reference PATH/TO/stylegan2-ada-pytorch
    python scripts/make_stylegan2_fixture.py --compare   # our largest differences from the fixture

Needs torch and numpy beside gan_jax (not a test dependency). For each small configuration it initialises
our generator and discriminator (gan_jax/models/stylegan2.py), gives every zero-initialised parameter
(biases, noise strengths) and the w average random values so that none is a no-op, copies them into the
reference's Generator and Discriminator (raw weights: both apply the equalized-lr gains at run time; HWIO
kernels become OIHW, [in, out] matrices [out, in]), and runs the reference on the CPU in float32
(`force_fp32`, its plain-PyTorch paths) in evaluation mode: G with noise_mode='const' on the copied noise
maps and truncation toward the copied w_avg, D on one fixed batch (the minibatch stddev depends on the
whole batch), R1 (the squared gradient norm of D's logits' sum at the real images, per sample, as the
reference's loss computes it), the path lengths (the gradient of the images times fixed noise with
respect to the ws, as its path-length regularizer measures them) and w_avg after one training-mode
mapping forward. The fixture holds our parameters, the inputs and those outputs; tests/test_stylegan2.py
holds our networks to them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

ROOT = Path(__file__).resolve().parents[1]
BATCH = 4

# Small networks: one conditional with a resnet D (mbstd of 2 channels, truncation of the first ws
# only), one unconditional with an orig D and a clamp that bites.
CONFIGS = {
    "cond_resnet": dict(resolution=16, channels=3, z_dim=16, w_dim=16, num_classes=4, mapping_layers=2,
                        channel_base=128, channel_max=16, conv_clamp=256.0, architecture="resnet", mbstd_group=2,
                        mbstd_channels=2, d_mapping_layers=8, truncation_psi=0.7, truncation_cutoff=3),
    "uncond_orig": dict(resolution=32, channels=3, z_dim=16, w_dim=16, num_classes=0, mapping_layers=2,
                        channel_base=128, channel_max=16, conv_clamp=1.0, architecture="orig", mbstd_group=4,
                        mbstd_channels=1, d_mapping_layers=8, truncation_psi=0.5, truncation_cutoff=0),
}


def build_ours(cfg: dict):
    r, ch = cfg["resolution"], cfg["channels"]
    g = StyleGAN2Generator((r, r, ch), r, w_dim=cfg["w_dim"], mapping_layers=cfg["mapping_layers"],
                           num_classes=cfg["num_classes"], channel_base=cfg["channel_base"],
                           channel_max=cfg["channel_max"], conv_clamp=cfg["conv_clamp"], noise_mode="const",
                           truncation_psi=cfg["truncation_psi"], truncation_cutoff=cfg["truncation_cutoff"])
    d = StyleGAN2Discriminator(r, cfg["architecture"], cfg["num_classes"], cfg["channel_base"], cfg["channel_max"],
                               cfg["conv_clamp"], cfg["mbstd_group"], cfg["mbstd_channels"], cfg["d_mapping_layers"])
    return g, d


def flatten(tree, prefix=(), dtype=np.float32):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, prefix + (key,), dtype))
        else:
            out[prefix + (key,)] = np.asarray(value, dtype)
    return out


def unflatten(flat):
    tree = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def reference_name(path: tuple) -> str:
    """Our path ("synthesis", "b8_conv0", "affine", "weight") -> the reference's "synthesis.b8.conv0.affine.weight"."""
    parts = []
    for p in path:
        if p[0] == "b" and "_" in p and p[1:p.index("_")].isdigit():
            parts.extend(p.split("_", 1))
        else:
            parts.append(p)
    if parts[:2] == ["synthesis", "const"]:
        parts = ["synthesis", "b4", "const"]
    return ".".join(parts)


def reference_value(path: tuple, value: np.ndarray) -> np.ndarray:
    if value.ndim == 4:  # HWIO -> OIHW
        return value.transpose(3, 2, 0, 1)
    if value.ndim == 3:  # the constant [4, 4, C] -> [C, 4, 4]
        return value.transpose(2, 0, 1)
    if value.ndim == 2 and path[-1] == "weight":  # dense [in, out] -> [out, in]
        return value.T
    return value


def perturb(flat: dict, rng: np.random.Generator, dtype=np.float32) -> dict:
    """Random values for the leaves our init leaves at a constant (biases 0 or 1, noise strengths, w_avg)."""
    out = {}
    for path, value in flat.items():
        if path[-1] in ("bias", "noise_strength", "w_avg"):
            value = (value + rng.normal(0.0, 0.5, value.shape)).astype(dtype)
        out[path] = value
    return out


def load_into(module, flat: dict):
    import torch

    state = {reference_name(p): torch.from_numpy(np.array(reference_value(p, v))) for p, v in flat.items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("resample_filter")]
    if missing or unexpected:
        raise SystemExit(f"parameter names do not match the reference: missing {missing}, unexpected {unexpected}")
    ours = sum(v.size for p, v in flat.items() if p[-1] not in ("w_avg", "noise_const"))
    theirs = sum(p.numel() for p in module.parameters())
    if ours != theirs:
        raise SystemExit(f"parameter counts differ: ours {ours}, the reference's {theirs}")


def run_config(name: str, cfg: dict, seed: int, networks, dtype=np.float32) -> dict:
    """The fixture's arrays for one configuration; `dtype` float64 runs both sides in float64 (see main)."""
    import torch

    rng = np.random.default_rng(seed)
    g, d = build_ours(cfg)
    r, ch, k = cfg["resolution"], cfg["channels"], cfg["num_classes"]
    z = rng.standard_normal((BATCH, cfg["z_dim"])).astype(dtype)
    y = rng.integers(0, max(k, 1), BATCH).astype(np.int32)
    x = rng.uniform(-1, 1, (BATCH, r, r, ch)).astype(dtype)
    yk = {"y": jnp.asarray(y)} if k else {}
    gv = g.init(jax.random.key(seed), jnp.asarray(z), train=False, **yk)
    dv = d.init(jax.random.key(seed + 1), jnp.asarray(x), train=False, **yk)
    g_flat = perturb(flatten(jax.tree.map(np.asarray, dict(gv)), dtype=dtype), rng, dtype)
    d_flat = perturb(flatten(jax.tree.map(np.asarray, dict(dv)), dtype=dtype), rng, dtype)
    pl_noise = (rng.standard_normal((BATCH, r, r, ch)) / np.sqrt(r * r)).astype(dtype)

    fp16 = dict(num_fp16_res=2)  # as in `cifar`'s networks; force_fp32 computes those blocks in float32
    G = networks.Generator(z_dim=cfg["z_dim"], c_dim=k, w_dim=cfg["w_dim"], img_resolution=r, img_channels=ch,
                           mapping_kwargs=dict(num_layers=cfg["mapping_layers"]),
                           synthesis_kwargs=dict(channel_base=cfg["channel_base"], channel_max=cfg["channel_max"],
                                                 conv_clamp=cfg["conv_clamp"], **fp16))
    D = networks.Discriminator(c_dim=k, img_resolution=r, img_channels=ch, architecture=cfg["architecture"],
                               channel_base=cfg["channel_base"], channel_max=cfg["channel_max"],
                               conv_clamp=cfg["conv_clamp"], mapping_kwargs=dict(num_layers=cfg["d_mapping_layers"]),
                               epilogue_kwargs=dict(mbstd_group_size=cfg["mbstd_group"],
                                                    mbstd_num_channels=cfg["mbstd_channels"]), **fp16)
    if dtype == np.float64:  # before loading: load_state_dict keeps each parameter's own dtype
        G.double()
        D.double()
    load_into(G, {p[1:]: v for p, v in g_flat.items()})
    load_into(D, {p[1:]: v for p, v in d_flat.items()})
    G.eval()
    D.eval()

    zt = torch.from_numpy(z)
    tdtype = zt.dtype
    ct = (torch.nn.functional.one_hot(torch.from_numpy(y).long(), k).to(tdtype) if k
          else torch.zeros([BATCH, 0], dtype=tdtype))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_(True)
    with torch.no_grad():
        img = G(zt, ct, truncation_psi=cfg["truncation_psi"], truncation_cutoff=cfg["truncation_cutoff"] or None,
                noise_mode="const", force_fp32=True)
    logits = D(xt, ct, force_fp32=True)
    (grad,) = torch.autograd.grad(logits.sum(), xt)
    r1 = grad.square().sum(dim=[1, 2, 3])
    # Path lengths: the gradient of sum(img * pl_noise) with respect to the (untruncated) ws.
    with torch.no_grad():
        ws = G.mapping(zt, ct)
    ws.requires_grad_(True)
    img_pl = G.synthesis(ws, noise_mode="const", force_fp32=True)
    (ws_grad,) = torch.autograd.grad((img_pl * torch.from_numpy(pl_noise.transpose(0, 3, 1, 2))).sum(), ws)
    pl_lengths = ws_grad.square().sum(dim=2).mean(dim=1).sqrt()
    G.mapping.train()  # one training-mode forward moves w_avg toward the batch's mean w
    with torch.no_grad():
        G.mapping(zt, ct)

    out = {f"{name}/config": np.array(json.dumps(cfg)), f"{name}/z": z, f"{name}/y": y, f"{name}/x": x,
           f"{name}/img": img.numpy().transpose(0, 2, 3, 1), f"{name}/logits": logits.detach().numpy()[:, 0],
           f"{name}/r1": r1.numpy(), f"{name}/pl_noise": pl_noise, f"{name}/pl_lengths": pl_lengths.numpy(),
           f"{name}/w_avg_after": G.mapping.w_avg.numpy()}
    for prefix, flat in (("g", g_flat), ("d", d_flat)):
        for path, value in flat.items():
            out[f"{name}/{prefix}/" + "/".join(path)] = value
    print(f"{name}: G {sum(p.numel() for p in G.parameters()):,} and D {sum(p.numel() for p in D.parameters()):,} "
          f"parameters; |img| max {float(img.abs().max()):.3f}, logits {logits.detach().numpy()[:, 0]}")
    return out


@contextlib.contextmanager
def reference_in_float64():
    """The reference casts to `torch.float32` by name wherever it leaves float16 (and asserts its filters are
    float32); inside this context its modules see float64 under that name, so the same unmodified code
    computes in float64."""
    import torch

    class Float64Torch:
        float32 = torch.float64

        def __getattr__(self, name):
            return getattr(torch, name)

    modules = [sys.modules[m] for m in ("training.networks", "torch_utils.ops.upfirdn2d",
                                        "torch_utils.ops.conv2d_resample", "torch_utils.ops.bias_act")]
    for module in modules:
        module.torch = Float64Torch()
    try:
        yield
    finally:
        for module in modules:
            module.torch = torch


def compare(f) -> None:
    """Prints the largest differences between our networks and the reference's outputs in `f` (the fixture's
    arrays, a mapping), computed in the arrays' own precision."""
    from gan_jax.models.stylegan2 import BUFFERS, path_lengths

    for name in CONFIGS:
        cfg = json.loads(str(f[f"{name}/config"]))
        g, d = build_ours(cfg)

        def variables(prefix, name=name):
            flat = {tuple(k.split("/")[2:]): jnp.asarray(f[k]) for k in f.keys() if k.startswith(f"{name}/{prefix}/")}
            return unflatten(flat)

        gv, dv = variables("g"), variables("d")
        y = jnp.asarray(f[f"{name}/y"]) if cfg["num_classes"] else None
        labels = {} if y is None else {"y": y}
        z, x = jnp.asarray(f[f"{name}/z"]), jnp.asarray(f[f"{name}/x"])
        critic = lambda x: d.apply(dv, x, train=False, **labels)  # noqa: E731
        ours = {"img": g.apply(gv, z, train=False, **labels), "logits": critic(x),
                "r1": jnp.sum(jnp.square(jax.grad(lambda x: critic(x).sum())(x)), axis=(1, 2, 3)),
                "pl_lengths": path_lengths(g, gv, z, y, jnp.asarray(f[f"{name}/pl_noise"])),
                "w_avg_after": g.apply(gv, z, train=True, mutable=[BUFFERS], **labels)[1][BUFFERS]["mapping"]["w_avg"]}
        for key, value in ours.items():
            ref = f[f"{name}/{key}"]
            diff = np.abs(np.asarray(value, np.float64) - ref)
            print(f"{name:12s} {key:11s} max |diff| {diff.max():.2e}  relative to max |ref| "
                  f"{diff.max() / np.abs(ref).max():.2e}  (max |ref| {np.abs(ref).max():.3g})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "stylegan2_reference.npz")
    parser.add_argument("--compare", action="store_true",
                        help="print our networks' largest differences from the fixture at --out (no torch needed)")
    parser.add_argument("--float64", action="store_true",
                        help="with --reference: run both sides in float64 and print the differences (writes nothing)")
    args = parser.parse_args(argv)
    if args.compare:
        compare(np.load(args.out))
        return 0
    if args.reference is None:
        parser.error("--reference is required to write the fixture or to compare in float64")
    sys.path.insert(0, str(args.reference.resolve()))
    import torch
    from training import networks  # the reference's

    torch.manual_seed(0)
    if args.float64:
        jax.config.update("jax_enable_x64", True)
        with reference_in_float64():
            arrays = {}
            for seed, (name, cfg) in enumerate(CONFIGS.items()):
                arrays.update(run_config(name, cfg, seed, networks, np.float64))
        compare(arrays)
        return 0
    arrays = {}
    for seed, (name, cfg) in enumerate(CONFIGS.items()):
        arrays.update(run_config(name, cfg, seed, networks))
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
