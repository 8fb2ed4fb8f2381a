"""Prints the trainable parameter counts of the reference networks that the tests hold our presets to.

    python scripts/count_reference_params.py --stylegan2 PATH/TO/stylegan2-ada-pytorch \
        --studiogan PATH/TO/PyTorch-StudioGAN

Needs torch (CPU is enough) and nothing of gan_jax; the references are read, never copied. It builds
- NVlabs/stylegan2-ada-pytorch's training.networks Generator and Discriminator with the keyword arguments
  its train.py gives them: the `cifar` configuration (10 classes and unconditional) and the `auto`
  configuration for a 64x64 dataset on one GPU, unconditional (the spec computed below from train.py's
  formulas; no --mirror, --cond or --cfg);
- PyTorch-StudioGAN's src/models/big_resnet.py Generator and Discriminator for configs/CIFAR10/BigGAN.yaml
  (10 classes and unconditional) and configs/ImageNet/BigGAN-256.yaml (128x128, 1000 classes), with the
  config defaults of src/config.py (orthogonal init, spectral norm in both, no mixed precision).
StudioGAN's networks are built on PyTorch's meta device (shapes without values: its orthogonal
initialisation of the 128x128 networks takes minutes on a CPU); StyleGAN2's copy their resampling filters
to the CPU, so they are built there. Counts are `sum(p.numel() for p in net.parameters())`: the trainable
parameters, as the references count them (StyleGAN2's w_avg and const noise maps, the spectral-norm u and
v and the batch-norm running statistics are buffers). dnnlib imports `requests` for downloads only: an
empty module stands in for it when it is not installed. StudioGAN's `utils.misc` (which imports its whole
training stack) is replaced by a module holding the one thing big_resnet.py uses from it, a null context
manager.

Printed at stylegan2-ada-pytorch d72cc7d and StudioGAN 947b35e (torch 2.13 CPU):

    stylegan2-ada cifar, 10 classes                    G   20,215,315  D   23,089,664
    stylegan2-ada cifar, 0 classes                     G   19,947,539  D   20,720,641
    stylegan2-ada auto 64x64, unconditional            G   22,243,608  D   23,407,361
    studiogan CIFAR10/BigGAN.yaml, 10 classes          G    9,416,196  D    2,415,170
    studiogan CIFAR10/BigGAN.yaml, 0 classes           G    8,825,092  D    2,413,250
    studiogan ImageNet/BigGAN-256.yaml, 1000 classes   G   70,433,988  D   87,982,370
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import types

import studiogan_reference


def stylegan2_auto_spec(res: int, gpus: int = 1) -> dict:
    """train.py's `auto` spec (cfg_specs['auto'] and the `if cfg == 'auto'` branch) for a res x res dataset."""
    mb = max(min(gpus * min(4096 // res, 32), 64), gpus)
    return dict(ref_gpus=gpus, kimg=25000, mb=mb, mbstd=min(mb // gpus, 4), fmaps=1 if res >= 512 else 0.5,
                lrate=0.002 if res >= 1024 else 0.0025, gamma=0.0002 * res ** 2 / mb, ema=mb * 10 / 32, ramp=0.05,
                map=2)


STYLEGAN2_CIFAR_SPEC = dict(ref_gpus=2, kimg=100000, mb=64, mbstd=32, fmaps=1, lrate=0.0025, gamma=0.01, ema=500,
                            ramp=0.05, map=2)


def stylegan2_networks(networks, spec: dict, res: int, classes: int, d_architecture: str):
    """G and D built with the keyword arguments train.py gives them for `spec`."""
    channels = dict(channel_base=int(spec["fmaps"] * 32768), channel_max=512, num_fp16_res=4, conv_clamp=256)
    g = networks.Generator(z_dim=512, w_dim=512, c_dim=classes, img_resolution=res, img_channels=3,
                           mapping_kwargs=dict(num_layers=spec["map"]), synthesis_kwargs=dict(channels))
    d = networks.Discriminator(c_dim=classes, img_resolution=res, img_channels=3, architecture=d_architecture,
                               block_kwargs={}, mapping_kwargs={},
                               epilogue_kwargs=dict(mbstd_group_size=spec["mbstd"]), **channels)
    return g, d


def count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def on_meta(build):
    """`build()` on PyTorch's meta device: the parameters' shapes without their values (no initialisation)."""
    import torch
    with torch.device("meta"):
        return build()


def report(name: str, g, d) -> None:
    print(f"{name:50s} G {count(g):>12,}  D {count(d):>12,}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stylegan2", type=pathlib.Path, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--studiogan", type=pathlib.Path, help="a checkout of POSTECH-CVLab/PyTorch-StudioGAN")
    args = parser.parse_args(argv)
    if args.stylegan2 is None and args.studiogan is None:
        parser.error("give --stylegan2, --studiogan or both")
    if args.stylegan2 is not None:
        sys.path.insert(0, str(args.stylegan2.resolve()))
        try:
            import requests  # noqa: F401
        except ImportError:  # dnnlib.util imports it for downloads only
            sys.modules["requests"] = types.ModuleType("requests")
        from training import networks  # the reference's

        for classes in (10, 0):
            g, d = stylegan2_networks(networks, STYLEGAN2_CIFAR_SPEC, 32, classes, "orig")  # `cifar`: D orig
            report(f"stylegan2-ada cifar, {classes} classes", g, d)
        spec = stylegan2_auto_spec(64)
        print(f"stylegan2-ada auto spec, 64x64, 1 GPU: {spec}")
        g, d = stylegan2_networks(networks, spec, 64, 0, "resnet")  # the Discriminator's default architecture
        report("stylegan2-ada auto 64x64, unconditional", g, d)
    if args.studiogan is not None:
        ops, big_resnet = studiogan_reference.load(args.studiogan.resolve() / "src")
        cifar = dict(img_size=32, z_dim=80, shared_dim=128, g_conv_dim=96, d_conv_dim=96, attn_g_loc=[2],
                     attn_d_loc=[1])
        for classes in (10, 0):
            report(f"studiogan CIFAR10/BigGAN.yaml, {classes} classes",
                   *on_meta(lambda k=classes: studiogan_reference.biggan_networks(ops, big_resnet, classes=k, **cifar)))
        imagenet = dict(img_size=128, z_dim=120, shared_dim=128, g_conv_dim=96, d_conv_dim=96, attn_g_loc=[4],
                        attn_d_loc=[1])
        report("studiogan ImageNet/BigGAN-256.yaml, 1000 classes",
               *on_meta(lambda: studiogan_reference.biggan_networks(ops, big_resnet, classes=1000, **imagenet)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
