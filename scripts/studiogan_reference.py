"""PyTorch-StudioGAN's BigGAN networks built as its configs build them, for the scripts that count their
parameters (count_reference_params.py) and compare ours with them (make_biggan_fixture.py,
make_biggan_deep_fixture.py). Needs torch only; the reference is read, never copied.

StudioGAN's `utils.misc` imports its whole training stack (torchvision, seaborn, ...); `load` replaces it
with a module holding the one thing the network files use from it, a null context manager.
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
import types


def load(src: pathlib.Path):
    """(utils.ops, models.big_resnet) of the StudioGAN checkout's src/ directory `src`."""
    sys.path.insert(0, str(src))
    misc = types.ModuleType("utils.misc")
    misc.dummy_context_mgr = contextlib.nullcontext
    sys.modules["utils.misc"] = misc
    from models import big_resnet  # the reference's
    from utils import ops
    return ops, big_resnet


def modules(ops):
    """The MODULES and MODEL namespaces StudioGAN's config hands its networks for a BigGAN configuration:
    spectral-norm layers in G and D, conditional batch norm in G, ReLU."""
    import torch.nn as tnn
    layers = types.SimpleNamespace(
        g_conv2d=ops.snconv2d, g_deconv2d=ops.sndeconv2d, g_linear=ops.snlinear, g_embedding=ops.sn_embedding,
        d_conv2d=ops.snconv2d, d_deconv2d=ops.sndeconv2d, d_linear=ops.snlinear, d_embedding=ops.sn_embedding,
        g_bn=ops.ConditionalBatchNorm2d, d_bn=ops.batchnorm_2d,
        g_act_fn=tnn.ReLU(inplace=True), d_act_fn=tnn.ReLU(inplace=True))
    model = types.SimpleNamespace(info_type="N/A", g_info_injection="N/A")
    return layers, model


def biggan_networks(ops, big_resnet, img_size, classes, z_dim, shared_dim, g_conv_dim, d_conv_dim, attn_g_loc,
                    attn_d_loc):
    """big_resnet's Generator and Discriminator: class-conditional (conditional BN, projection D) when
    `classes` > 0, else unconditional; orthogonal init, spectral norm in both, no mixed precision."""
    layers, model = modules(ops)
    g_cond, d_cond = ("cBN", "PD") if classes else ("W/O", "W/O")
    g = big_resnet.Generator(z_dim=z_dim, g_shared_dim=shared_dim, img_size=img_size, g_conv_dim=g_conv_dim,
                             apply_attn=True, attn_g_loc=attn_g_loc, g_cond_mtd=g_cond, num_classes=classes,
                             g_init="ortho", g_depth="N/A", mixed_precision=False, MODULES=layers, MODEL=model)
    d = big_resnet.Discriminator(img_size=img_size, d_conv_dim=d_conv_dim, apply_d_sn=True, apply_attn=True,
                                 attn_d_loc=attn_d_loc, d_cond_mtd=d_cond, aux_cls_type="W/O", d_embed_dim="N/A",
                                 normalize_d_embed=False, num_classes=classes, d_init="ortho", d_depth="N/A",
                                 mixed_precision=False, MODULES=layers, MODEL=model)
    return g, d
