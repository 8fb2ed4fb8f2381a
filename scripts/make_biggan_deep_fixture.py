"""Runs PyTorch-StudioGAN's BigGAN-deep networks (src/models/big_resnet_deep_legacy.py, the backbone of its
CIFAR-10 BigGAN-Deep.yaml) with our parameters copied in, and saves the parameters, the inputs and the
reference's outputs as tests/fixtures/biggan_deep_reference.npz.

    python scripts/make_biggan_deep_fixture.py --reference /path/to/PyTorch-StudioGAN/src

Needs torch and numpy beside gan_jax; the reference is read, never copied. It is imported, and our
variables copied into it, as scripts/make_biggan_fixture.py does for BigGAN (same stubbed
`utils.misc`, same control of spectral norm, batch norm and attention; see its docstring).

Two small class-conditional configurations, two blocks per resolution as in BigGAN-Deep.yaml:
- "s32": 32x32 (the CIFAR-10 layout: every block keeps its channels), z of 20 concatenated whole
  with a shared embedding of 12, g_conv_dim = d_conv_dim = 2 (8 channels, bottlenecks of 2),
  self-attention at 16x16 in both networks, batch 4;
- "s64": 64x64, where G's blocks drop channels and D's add them (the two shortcuts the 32x32 layout
  never uses), g_conv_dim = d_conv_dim = 2, self-attention at 16x16 in both, batch 2; to keep the
  fixture small only every 4th row and column of its G output is kept.
D's input images are k / 127.5 - 1 for stored uint8 k, so they are exact on both sides and small.
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.models.biggan_deep import BigGANDeepDiscriminator, BigGANDeepGenerator
import studiogan_reference
from make_biggan_fixture import Copier, flatten, perturb

OUT = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "biggan_deep_reference.npz"
CLASSES, DEPTH = 10, 2
# name: (side, z, shared, g_conv_dim, d_conv_dim, attention side, batch, G output stride)
CONFIGS = {"s32": (32, 20, 12, 2, 2, 16, 4, 1), "s64": (64, 16, 8, 2, 2, 16, 2, 4)}
G_SIGMA, D_SIGMA = 0.6, -0.5


def reference_networks(ops, deep, side, z_dim, shared, g_conv, d_conv, attention):
    modules, model = studiogan_reference.modules(ops)
    # attention after the resolution that ends at `attention` pixels: G's resolutions end at 8, 16, ...
    g_loc = int(np.log2(attention // 4))
    d_sides = {32: [16, 8, 8], 64: [32, 16, 8, 4]}[side]
    d_loc = d_sides.index(attention) + 1
    g = deep.Generator(z_dim=z_dim, g_shared_dim=shared, img_size=side, g_conv_dim=g_conv, apply_attn=True,
                       attn_g_loc=[g_loc], g_cond_mtd="cBN", num_classes=CLASSES, g_init="ortho", g_depth=DEPTH,
                       mixed_precision=False, MODULES=modules, MODEL=model)
    d = deep.Discriminator(img_size=side, d_conv_dim=d_conv, apply_d_sn=True, apply_attn=True, attn_d_loc=[d_loc],
                           d_cond_mtd="PD", aux_cls_type="W/O", d_embed_dim="N/A", normalize_d_embed=False,
                           num_classes=CLASSES, d_init="ortho", d_depth=DEPTH, mixed_precision=False, MODULES=modules,
                           MODEL=model)
    return g, d


def copy_generator(g, variables, deep, ops):
    import torch
    c = Copier(flatten(variables))
    c.linear(g.linear0, "linear0")
    with torch.no_grad():
        g.shared.weight.copy_(torch.from_numpy(c.get("params/shared/embedding")))
    k = 0
    for blocklist in g.blocks:
        for block in blocklist:
            if isinstance(block, deep.GenBlock):
                for i in range(1, 5):
                    bn = getattr(block, f"bn{i}")
                    c.linear(bn.gain, f"block{k}/bn{i}/gain")
                    c.linear(bn.bias, f"block{k}/bn{i}/bias")
                    c.batch_norm(bn.bn, f"block{k}/bn{i}/bn", affine=False)
                    c.conv(getattr(block, f"conv2d{i}"), f"block{k}/conv{i}")
                k += 1
            else:
                assert isinstance(block, ops.SelfAttention)
                c.attention(block, "attention")
    c.batch_norm(g.bn4, "bn", affine=True)
    c.conv(g.conv2d5, "conv_out")
    c.check_all_used()


def copy_discriminator(d, variables, deep, ops):
    c = Copier(flatten(variables))
    c.conv(d.input_conv, "conv_in")
    k = 0
    for blocklist in d.blocks:
        for block in blocklist:
            if isinstance(block, deep.DiscBlock):
                for i in range(5):
                    if hasattr(block, f"conv2d{i}"):
                        c.conv(getattr(block, f"conv2d{i}"), f"block{k}/conv{i}")
                k += 1
            else:
                assert isinstance(block, ops.SelfAttention)
                c.attention(block, "attention")
    c.linear(d.linear1, "linear")
    c.spectral(d.embedding, "embed", kernel_name="embedding")
    c.check_all_used()


def images(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 images in [-1, 1], computed the same way by the script and the tests."""
    return pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def run_config(name, ops, deep, seed):
    import torch
    side, z_dim, shared, g_conv, d_conv, attention, batch, stride = CONFIGS[name]
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((batch, z_dim)).astype(np.float32)
    y = rng.permutation(CLASSES)[:batch].astype(np.int32)
    pixels = rng.integers(0, 256, (batch, side, side, 3)).astype(np.uint8)
    x = images(pixels)

    ours_g = BigGANDeepGenerator((side, side, 3), g_conv, shared, attention, CLASSES, DEPTH)
    ours_d = BigGANDeepDiscriminator(d_conv, attention, CLASSES, DEPTH)
    g_vars = ours_g.init(jax.random.key(seed + 1), jnp.asarray(z), jnp.asarray(y), train=False)
    d_vars = ours_d.init(jax.random.key(seed + 2), jnp.asarray(x), jnp.asarray(y), train=False)
    g_vars = perturb(g_vars, jax.random.key(seed + 3), G_SIGMA)
    d_vars = perturb(d_vars, jax.random.key(seed + 4), D_SIGMA)

    arrays = {"z": z, "y": y, "pixels": pixels}
    for mode in ("train", "eval"):
        g, d = reference_networks(ops, deep, side, z_dim, shared, g_conv, d_conv, attention)
        copy_generator(g, g_vars, deep, ops)
        copy_discriminator(d, d_vars, deep, ops)
        g.train(mode == "train")
        d.train(mode == "train")
        with torch.no_grad():
            image = g(torch.from_numpy(z), torch.from_numpy(y).long()).numpy().transpose(0, 2, 3, 1)
            logits = d(torch.from_numpy(x.transpose(0, 3, 1, 2)), torch.from_numpy(y).long())["adv_output"]
        arrays[f"out/g_{mode}"] = image[:, ::stride, ::stride]
        arrays[f"out/d_{mode}"] = logits.numpy()
    arrays.update({f"g/{k}": v for k, v in flatten(g_vars).items()})
    arrays.update({f"d/{k}": v for k, v in flatten(d_vars).items()})
    arrays["config"] = np.array([side, CLASSES, z_dim, g_conv, d_conv, shared, attention, DEPTH, stride], np.int32)
    return {f"{name}/{k}": v for k, v in arrays.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", required=True, type=pathlib.Path,
                        help="PyTorch-StudioGAN's src/ directory (holding models/big_resnet_deep_legacy.py)")
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    import torch
    torch.manual_seed(0)
    ops, _ = studiogan_reference.load(args.reference)
    from models import big_resnet_deep_legacy as deep  # the reference's

    arrays = {}
    for seed, name in enumerate(CONFIGS):
        arrays.update(run_config(name, ops, deep, 10 * seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): " +
          ", ".join(f"{k} {v.shape}" for k, v in arrays.items() if "/out/" in k))


if __name__ == "__main__":
    main()
