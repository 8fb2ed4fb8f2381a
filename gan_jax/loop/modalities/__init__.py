"""Modality plugins (points, images, text): see `base`. Each module of this package registers one."""

import importlib
import pkgutil

from gan_jax.loop.modalities.base import MODALITIES, Modality, modality, register_modality  # noqa: F401

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
