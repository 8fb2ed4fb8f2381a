"""Runs PyTorch-StudioGAN's BigGAN networks (src/models/big_resnet.py) with our parameters copied in,
and saves the parameters, the inputs and the reference's outputs as tests/fixtures/biggan_reference.npz.

    python scripts/make_biggan_fixture.py --reference /path/to/PyTorch-StudioGAN/src

Needs torch and numpy beside gan_jax; the reference is read, never copied. Its `utils.misc` (which
imports torchvision, seaborn and the rest of its training code) is replaced by a module holding the
one thing big_resnet.py uses from it, a null context manager.

The configuration is small (32x32, z of 80 split into four chunks of 20, class-conditional, a
projection D, self-attention at 16x16 in both networks) so that the fixture stays small. What the
comparison controls:
- spectral norm: every u (our "spectral" collection) is copied into the reference, and its v is
  set to normalize(W^T u), the v our layers compute from u (the reference keeps v as a buffer;
  train mode recomputes it from u before use, eval mode uses it as stored);
- batch norm: running means and variances are set to random values (eval mode reads them) and
  the affine parameters of G's last BN to random values; eps 1e-4 on both sides;
- attention: sigma, which starts at 0, is set non-zero in G and D;
- each mode starts from the same copied state (a train-mode forward moves u and the running
  statistics).
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import studiogan_reference

from gan_jax.models.biggan import BigGANDiscriminator, BigGANGenerator

OUT = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "biggan_reference.npz"
SIDE, CLASSES, Z_DIM, BATCH = 32, 10, 80, 4
G_CONV_DIM, D_CONV_DIM, SHARED_DIM, ATTENTION = 6, 8, 16, 16
G_SIGMA, D_SIGMA = 0.7, -0.4


def flatten(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = np.array(value, np.float32)  # a writable copy (torch.from_numpy)
    return out


class Copier:
    """Writes our variables (flat "collection/module/.../name" arrays) into the reference's modules."""

    def __init__(self, ours: dict[str, np.ndarray]):
        self.ours = ours
        self.used: set[str] = set()

    def get(self, name):
        self.used.add(name)
        return self.ours[name]

    def spectral(self, module, path, kernel_name="kernel", to_torch=None):
        import torch
        kernel = self.get(f"params/{path}/{kernel_name}")
        weight = to_torch(kernel) if to_torch else kernel
        u = self.get(f"spectral/{path}/{kernel_name}_u")
        with torch.no_grad():
            module.weight_orig.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            module.weight_u.copy_(torch.from_numpy(u))
            matrix = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
            v = matrix.T @ module.weight_u
            module.weight_v.copy_(v / v.norm())
            if getattr(module, "bias", None) is not None:
                module.bias.copy_(torch.from_numpy(self.get(f"params/{path}/bias")))

    def conv(self, module, path):
        self.spectral(module, path, to_torch=lambda k: k.transpose(3, 2, 0, 1))

    def linear(self, module, path):
        self.spectral(module, path, to_torch=lambda k: k.T)

    def batch_norm(self, module, path, affine):
        import torch
        with torch.no_grad():
            module.running_mean.copy_(torch.from_numpy(self.get(f"batch_stats/{path}/mean")))
            module.running_var.copy_(torch.from_numpy(self.get(f"batch_stats/{path}/var")))
            if affine:
                module.weight.copy_(torch.from_numpy(self.get(f"params/{path}/scale")))
                module.bias.copy_(torch.from_numpy(self.get(f"params/{path}/bias")))

    def attention(self, module, path):
        import torch
        for torch_name, ours in (("theta", "theta"), ("phi", "phi"), ("g", "g"), ("attn", "out")):
            self.conv(getattr(module, f"conv1x1_{torch_name}"), f"{path}/{ours}")
        with torch.no_grad():
            module.sigma.fill_(float(self.get(f"params/{path}/sigma")))

    def check_all_used(self):
        missing = sorted(set(self.ours) - self.used)
        if missing:
            raise RuntimeError(f"variables not copied into the reference: {missing}")


def copy_generator(g, variables):
    import torch
    from models.big_resnet import GenBlock  # the reference's
    c = Copier(flatten(variables))
    c.linear(g.linear0, "linear0")
    with torch.no_grad():
        g.shared.weight.copy_(torch.from_numpy(c.get("params/shared/embedding")))
    counter = 0
    for blocklist in g.blocks:
        for block in blocklist:
            if isinstance(block, GenBlock):
                path = f"block{counter}"
                for bn in ("bn1", "bn2"):
                    torch_bn = getattr(block, bn)
                    c.linear(torch_bn.gain, f"{path}/{bn}/gain")
                    c.linear(torch_bn.bias, f"{path}/{bn}/bias")
                    c.batch_norm(torch_bn.bn, f"{path}/{bn}/bn", affine=False)
                for conv in ("conv0", "conv1", "conv2"):
                    c.conv(getattr(block, f"conv2d{conv[-1]}"), f"{path}/{conv}")
                counter += 1
            else:
                c.attention(block, "attention")
    c.batch_norm(g.bn4, "bn", affine=True)
    c.conv(g.conv2d5, "conv_out")
    c.check_all_used()


def copy_discriminator(d, variables):
    from models.big_resnet import DiscBlock, DiscOptBlock  # the reference's
    c = Copier(flatten(variables))
    counter = 0
    for blocklist in d.blocks:
        for block in blocklist:
            if isinstance(block, (DiscOptBlock, DiscBlock)):
                for conv in ("conv0", "conv1", "conv2"):
                    if hasattr(block, f"conv2d{conv[-1]}"):
                        c.conv(getattr(block, f"conv2d{conv[-1]}"), f"block{counter}/{conv}")
                counter += 1
            else:
                c.attention(block, "attention")
    c.linear(d.linear1, "linear")
    c.spectral(d.embedding, "embed", kernel_name="embedding")
    c.check_all_used()


def perturb(variables, key, sigma):
    """Random BN running statistics and affine parameters, and a non-zero attention gain."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(variables)
    out = []
    for i, (path, leaf) in enumerate(leaves):
        names = [getattr(p, "key", str(p)) for p in path]
        k = jax.random.fold_in(key, i)
        if names[0] == "batch_stats" and names[-1] == "mean":
            leaf = 0.3 * jax.random.normal(k, leaf.shape)
        elif names[0] == "batch_stats" and names[-1] == "var":
            leaf = jax.random.uniform(k, leaf.shape, minval=0.5, maxval=2.0)
        elif names[0] == "params" and names[-2:] == ["bn", "scale"]:
            leaf = 1.0 + 0.2 * jax.random.normal(k, leaf.shape)
        elif names[0] == "params" and names[-2:] == ["bn", "bias"]:
            leaf = 0.2 * jax.random.normal(k, leaf.shape)
        elif names[-1] == "sigma":
            leaf = jnp.full(leaf.shape, sigma)
        out.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", required=True, type=pathlib.Path,
                        help="PyTorch-StudioGAN's src/ directory (holding models/big_resnet.py)")
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    import torch
    torch.manual_seed(0)
    ops, big_resnet = studiogan_reference.load(args.reference)

    rng = np.random.default_rng(0)
    z = rng.standard_normal((BATCH, Z_DIM)).astype(np.float32)
    y = rng.integers(0, CLASSES, BATCH).astype(np.int32)
    x = rng.uniform(-1, 1, (BATCH, SIDE, SIDE, 3)).astype(np.float32)

    ours_g = BigGANGenerator((SIDE, SIDE, 3), G_CONV_DIM, SHARED_DIM, ATTENTION, CLASSES)
    ours_d = BigGANDiscriminator(D_CONV_DIM, ATTENTION, CLASSES)
    g_vars = ours_g.init(jax.random.key(1), jnp.asarray(z), jnp.asarray(y), train=False)
    d_vars = ours_d.init(jax.random.key(2), jnp.asarray(x), jnp.asarray(y), train=False)
    g_vars = perturb(g_vars, jax.random.key(3), G_SIGMA)
    d_vars = perturb(d_vars, jax.random.key(4), D_SIGMA)

    outputs = {}
    for mode in ("train", "eval"):
        g, d = studiogan_reference.biggan_networks(ops, big_resnet, SIDE, CLASSES, Z_DIM, SHARED_DIM, G_CONV_DIM,
                                                   D_CONV_DIM, attn_g_loc=[2], attn_d_loc=[1])
        copy_generator(g, g_vars)
        copy_discriminator(d, d_vars)
        g.train(mode == "train")
        d.train(mode == "train")
        with torch.no_grad():
            image = g(torch.from_numpy(z), torch.from_numpy(y).long())
            logits = d(torch.from_numpy(x.transpose(0, 3, 1, 2)), torch.from_numpy(y).long())["adv_output"]
        outputs[f"g_{mode}"] = image.numpy().transpose(0, 2, 3, 1)
        outputs[f"d_{mode}"] = logits.numpy()

    arrays = {"z": z, "y": y, "x": x, **{f"out/{k}": v for k, v in outputs.items()}}
    arrays.update({f"g/{k}": v for k, v in flatten(g_vars).items()})
    arrays.update({f"d/{k}": v for k, v in flatten(d_vars).items()})
    arrays["config"] = np.array([SIDE, CLASSES, Z_DIM, G_CONV_DIM, D_CONV_DIM, SHARED_DIM, ATTENTION], np.int32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): " +
          ", ".join(f"{k} {v.shape}" for k, v in outputs.items()))


if __name__ == "__main__":
    main()
