"""What a resumed run may change, and how an accepted change reaches the restored state.

A resumed run is rebuilt from the config it is given, so whatever the compiled step reads from
the config (num_steps, the schedules' lengths, the ADA target, the periods of the actions) follows
a changed value by construction. The per-run values live in the state instead (the terms' and
the EMA's numbers in `state.hparams`, the optimizers' injected hyperparameters in their states),
and the state comes from the checkpoint: `apply_changes` writes each changed one into the restored
state, so the config and the state never disagree. A change that alters what the checkpoint
holds (the networks, the loss, the optimizer, the seed, which terms are on) cannot be applied
to a restored state and is refused by name.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import config as config_lib
from gan_jax.core import optim
from gan_jax.core.state import hparam_keys
from gan_jax.errors import ConfigError
from gan_jax.loop import blueprint

# Keys (and sections) a checkpoint is bound to: its parameters, optimizer and random stream were made by them.
FIXED = ("model", "loss", "optim.name", "seed", "pack", "data.source", "data.resolution", "data.tokenizer",
         "data.vocab_size", "data.max_len")
FREE_UNDER_FIXED = ("model.dtype",)  # the compute dtype: the parameters stay float32

# The injected optimizer keys and the optimizer hyperparameter they set, with the sides that have it.
_LEARNING_RATES = {"optim.g_lr": ("g",), "optim.d_lr": ("d",)}


@dataclasses.dataclass(frozen=True)
class Change:
    key: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.key} {self.old!r} -> {self.new!r}"


ABSENT = "<absent>"


def _lookup(tree: dict, key: str):
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return ABSENT
        tree = tree[part]
    return tree


def changes(previous: dict, config: ml_collections.ConfigDict) -> list[Change]:
    """Every key whose value differs between the workdir's config.json and `config`; a key that config.json
    lacks (added by a later gan_jax) and that `config` holds at its default is not a change."""
    resolved = config_lib.to_dict(config)
    defaults = config_lib.to_dict(config_lib.default_config())
    found = [Change(k, _lookup(previous, k), _lookup(resolved, k)) for k in config_lib.diff(previous, resolved)]
    return [c for c in found if not (c.old == ABSENT and c.new == _lookup(defaults, c.key))]


def _is_fixed(key: str) -> bool:
    return key not in FREE_UNDER_FIXED and any(key == f or key.startswith(f + ".") for f in FIXED)


def _abstract_state(config: ml_collections.ConfigDict, data_shape, num_classes: int):
    return blueprint.read_back(config, data_shape, num_classes).abstract_state()


def _same_structure(a, b) -> bool:
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    return ta == tb and all(x.shape == y.shape and x.dtype == y.dtype for x, y in zip(la, lb))


def check(workdir, previous: dict, config: ml_collections.ConfigDict, allowed: Sequence[str], data_shape,
          num_classes: int = 0) -> list[Change]:
    """The changes of a resume, checked: a change the restored state cannot take is refused by name (whatever
    `allowed` says), any other change must be in `allowed`. Returns the changes."""
    found = changes(previous, config)
    fixed = [c for c in found if _is_fixed(c.key)]
    if fixed:
        raise ConfigError(
            f"{workdir} holds a run whose checkpoints were made with other values of {', '.join(c.key for c in fixed)}"
            f" ({'; '.join(map(str, fixed))}); a resumed run cannot change them. Train the new setting in another "
            "--workdir (or resume with the old values).")
    refused = [c for c in found if c.key not in allowed]
    if refused:
        details = "; ".join(f"{c.key}: {c.old!r} -> {c.new!r}" for c in refused)
        raise ConfigError(
            f"{workdir} holds a run with a different config ({details}). Use another --workdir, the same "
            f"config to resume, or --allow_config_change {','.join(c.key for c in refused)} to resume with the "
            "new values.")
    if found:
        before = _abstract_state(ml_collections.ConfigDict(previous), data_shape, num_classes)
        if not _same_structure(before, _abstract_state(config, data_shape, num_classes)):
            named = [c for c in found if not _same_structure(before, _abstract_state(
                _with(previous, c), data_shape, num_classes))] or found
            raise ConfigError(
                f"The change of {', '.join(map(str, named))} changes what the training state holds (a term, the "
                f"augmentation, the EMA, gradient clipping or a learning-rate schedule switched on or off), so "
                f"the checkpoints in {workdir} cannot be resumed with it. Train the new setting in another --workdir.")
    return found


def _with(previous: dict, change: Change) -> ml_collections.ConfigDict:
    """The previous config with this one change."""
    config = ml_collections.ConfigDict(previous)
    node = config
    *parents, leaf = change.key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = change.new
    return config


def _set(tree: dict, key: str, value) -> dict:
    head, _, rest = key.partition(".")
    out = dict(tree)
    if rest:
        out[head] = _set(tree[head], rest, value)
    else:
        out[head] = jnp.asarray(value, jnp.asarray(tree[head]).dtype)
    return out


def apply_changes(state, config: ml_collections.ConfigDict, found: Sequence[Change], lr_scale: float = 1.0):
    """The restored `state` with every changed per-run value of `found` written in (a learning rate times the
    rollbacks' `lr_scale`, as the run's other learning rates are). Returns (state, the changes applied)."""
    in_hparams, injected = set(hparam_keys(config)), set(optim.injected_keys(config))
    applied = []
    for change in found:
        if change.key in in_hparams:
            state = state.replace(hparams=_set(state.hparams, change.key, change.new))
        elif change.key in injected:
            if change.key in _LEARNING_RATES:
                name, sides, value = "learning_rate", _LEARNING_RATES[change.key], change.new * lr_scale
            else:
                name, sides, value = change.key.split(".", 1)[1], ("g", "d"), change.new
            for side in sides:
                net = getattr(state, side)
                net = net.replace(opt_state=optim.map_hyperparam(net.opt_state, name, lambda _, v=value: v))
                state = state.replace(**{side: net})
        else:
            continue
        applied.append(change)
    return state, applied
