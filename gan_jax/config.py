"""Experiment configs: defaults, loading `path[:arg]`, command-line overrides, validation.

An experiment is a Python file with `get_config(arg=None)` returning a locked
`ml_collections.ConfigDict` built on `default_config()`. Every mistake a user can make
in a config (a misspelt key, a wrong type, an impossible value) is a `ConfigError` whose
message names the key and what to do, raised before any work starts.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import pathlib
from typing import Any, Sequence

import ml_collections
from ml_collections import config_dict

from gan_jax.errors import ConfigError  # noqa: F401  (raised by every check below; importable from here)

PARALLEL_MODES = ("none", "pmap", "jit")
SCHEDULES = ("constant", "linear", "cosine")
WRITERS = ("jsonl", "tensorboard", "wandb")


def default_config() -> ml_collections.ConfigDict:
    """Every key an experiment may set, with defaults that run.

    The sections of plugins come from their registries: `reg.<term>` from the terms,
    `augment.<name>` from the augmentations, network-specific `model.*` keys from the models.
    """
    from gan_jax import models, objectives
    from gan_jax.loop.actions import config_defaults as action_defaults

    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_steps = 10_000  # generator updates
    c.batch_size = 100  # global, over all devices
    c.parallel = "none"
    c.steps_per_dispatch = 1
    c.log_every_steps = 100
    c.eval_every_steps = 1000
    c.ckpt_every_steps = 1000
    c.keep_checkpoints = 3
    c.writers = "jsonl,tensorboard"  # where metrics go, comma-separated: jsonl | tensorboard | wandb
    c.loss = "non_saturating"  # an adversarial loss of gan_jax/objectives (register_loss)
    c.n_critic = 1
    c.pack = 1  # PacGAN packing degree: D judges `pack` samples at once
    # Generator update's samples: "fresh" (new noise, its own G forward pass) | "reuse" (the last
    # D update's fakes and one G forward pass a step, as PyTorch's usual DCGAN loop does).
    c.g_noise = "fresh"

    c.data = ml_collections.ConfigDict()
    c.data.source = "synthetic:grid25"
    c.data.split = "train"
    c.data.data_dir = config_dict.placeholder(str)
    c.data.manual_dir = config_dict.placeholder(str)
    c.data.num_train = 100_000  # size of the fixed training set of synthetic sources
    c.data.resolution = 0  # images: resize to resolution x resolution (0 keeps the native size)
    c.data.crop = "center"  # images: center | none (crop to a square before resizing)
    c.data.prefetch = True  # load and place the next chunk of batches while the current one trains
    # Text sources (synthetic:oracle, local:TRAIN_FILE, tfds:NAME with a tokenizer set).
    c.data.tokenizer = "none"  # none (tfds images) | word | char
    c.data.vocab_size = 5000  # vocabulary limit, the 4 specials <pad> <bos> <eos> <unk> included
    c.data.max_len = 20  # tokens a sentence (longer ones are cut)
    c.data.test_file = config_dict.placeholder(str)  # local: the held-out sentences, one a line
    c.data.test_split = "test"  # tfds: the held-out split
    c.data.num_test = 10_000  # synthetic:oracle: held-out samples
    c.data.about = ""  # where a recipe's data comes from and which keys take it: added to a missing file's error

    c.model = ml_collections.ConfigDict()
    c.model.generator = "pacgan_mlp"
    c.model.discriminator = "pacgan_maxout"
    c.model.latent_dim = 2
    c.model.latent_dist = "normal"  # the generator's noise: normal (N(0, I)) | uniform (on [-1, 1]^latent_dim)
    c.model.g_width = 400
    c.model.g_depth = 4
    c.model.d_width = 200
    c.model.d_depth = 3
    c.model.conditioning = "none"  # none | projection (cBN G + projection D) | acgan (cBN G + classifier head)
    c.model.spectral_norm = False  # spectral normalisation on every D layer (ResNet D always has it)
    c.model.dtype = "float32"  # compute dtype of G and D: float32 | bfloat16 (parameters stay float32)
    c.model.fake_labels = "uniform"  # conditional fakes' labels: uniform draws | real (the real batch's, as R3GAN)
    for key, value in models.model_config_defaults().items():  # what each network adds
        c.model[key] = _section(value)

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"  # adam | adamw | sgd
    c.optim.g_lr = 1e-4
    c.optim.d_lr = 1e-4
    c.optim.b1 = 0.8
    c.optim.b2 = 0.999
    c.optim.weight_decay = 0.0  # adamw only
    c.optim.momentum = 0.0  # sgd only
    c.optim.schedule = "constant"  # the learning rates' multiplier: constant | linear | cosine, 1 -> lr_end_factor
    c.optim.lr_end_factor = 0.0  # the multiplier at the end of the schedule (schedule.steps), held after
    c.optim.b2_end = -1.0  # >= 0: Adam's b2 moves from optim.b2 to this along schedule.kind (-1: constant)
    c.optim.warmup_steps = 0
    c.optim.grad_clip = 0.0  # global-norm clipping; 0 disables

    # Regularizer and auxiliary terms: reg.<name>.weight (0: off), reg.<name>.every, and each term's own keys.
    c.reg = _section({t.name: t.config for t in objectives.TERMS.values()})
    # The augmentation of every D input (at most one on): augment.<name>.*.
    c.augment = _section({a.name: a.config for a in objectives.AUGMENTS.values()})

    c.ema = ml_collections.ConfigDict()
    c.ema.decay = 0.0  # 0 disables the generator EMA (unless a half-life is set)
    # With a decay: min(decay, (1 + t) / (10 + t)) at G step t, so a short run's EMA is not its initialisation.
    c.ema.warmup = True
    c.ema.half_life_images = 0.0  # > 0: the EMA's half-life in images (decay 0.5 ** (batch / half-life)) instead
    c.ema.half_life_images_end = -1.0  # >= 0: the half-life moves to this over the schedule (R3GAN: 0 -> 5e6)

    # Start -> end values (every X with an X_end >= 0: term weights, the EMA half-life, Adam's b2, ADA's p) move
    # along `kind` over the first `steps` generator steps (0: the whole run), then hold.
    c.schedule = ml_collections.ConfigDict()
    c.schedule.kind = "cosine"  # cosine | linear
    c.schedule.steps = 0

    c.eval = ml_collections.ConfigDict()
    c.eval.num_samples = 2500
    c.eval.use_ema = True  # evaluate the EMA generator when there is one
    # BigGAN's standing statistics: before `gan-jax evaluate` / `sample`, a batch-norm generator's statistics
    # become the average over this many train-mode forwards of eval.standing_batch samples (0: off)
    c.eval.standing_statistics = 0
    c.eval.standing_batch = 64

    c.text = ml_collections.ConfigDict()
    c.text.g_objective = "adversarial"  # adversarial (through D; Gumbel-softmax for text) | reinforce | mle
    c.text.pretrain_steps = 0  # MLE (teacher forcing) generator updates before adversarial training
    c.text.pretrain_lr = 1e-2
    c.text.sample_temperature = 1.0  # evaluation samples: softmax(logits / temperature)

    # The divergence guard: on a non-finite loss or gradient, stop, or roll back to the newest checkpoint and
    # continue with the learning rates times rollback_lr_factor (at most max_rollbacks times).
    c.guard = ml_collections.ConfigDict()
    c.guard.on_divergence = "stop"  # stop | rollback
    c.guard.rollback_lr_factor = 0.5
    c.guard.max_rollbacks = 3

    # The loop's periodic actions' own settings: actions.<name>.* (loop/actions, register_action).
    c.actions = _section(action_defaults())

    c.wandb = ml_collections.ConfigDict()  # writers=...,wandb (pip install 'gan-jax[wandb]')
    c.wandb.project = "gan_jax"
    c.wandb.entity = config_dict.placeholder(str)
    c.wandb.mode = "online"  # online | offline (files under WORKDIR/wandb, `wandb sync` later) | disabled
    return c


def _section(value):
    """A plugin's declared defaults as config values (dicts become ConfigDicts)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return ml_collections.ConfigDict({k: _section(v) for k, v in value.items()})
    return value


# Sweep definitions (an experiment's get_sweep): lists of override dicts.


def _as_runs(part) -> list[dict]:
    return [part] if isinstance(part, dict) else list(part)


def product(*parts, **axes: Sequence[Any]) -> list[dict]:
    """Cartesian product of lists of overrides and of named value lists: product(seeds(2), loss=[a, b])."""
    import itertools

    lists = [_as_runs(p) for p in parts] + [[{key: v} for v in values] for key, values in axes.items()]
    return [{k: v for d in combo for k, v in d.items()} for combo in itertools.product(*lists)]


def zip_(**axes: Sequence[Any]) -> list[dict]:
    """Values taken together: zip_(loss=[a, b], n_critic=[1, 5]) -> [{loss: a, n_critic: 1}, {loss: b, ...}]."""
    lengths = {len(v) for v in axes.values()}
    if len(lengths) > 1:
        raise ValueError(f"zip_ needs value lists of one length, got {({k: len(v) for k, v in axes.items()})}.")
    return [dict(zip(axes, values)) for values in zip(*axes.values())]


def seeds(n: int, start: int = 0) -> list[dict]:
    return [{"seed": s} for s in range(start, start + n)]


def lock(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    config.lock()
    return config


def _flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in config.items():
        name = f"{prefix}{k}"
        if isinstance(v, ml_collections.ConfigDict):
            keys.extend(_flat_keys(v, name + "."))
        else:
            keys.append(name)
    return keys


def _unknown_key(key: str, config: ml_collections.ConfigDict) -> ConfigError:
    valid = _flat_keys(config)
    nested = ".".join(key.rsplit("_", 1)) if "_" in key.rsplit(".", 1)[-1] else None
    if nested in valid:  # a term's flat key of earlier versions: reg.r1_weight -> reg.r1.weight
        return ConfigError(f"Unknown config key {key!r}: it is now {nested!r} (each term has its own sub-dict).")
    near = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    if not near:  # also match on the last component alone: `optim.lr` -> `optim.g_lr`
        leaf = key.rsplit(".", 1)[-1]
        near = [k for k in valid if difflib.SequenceMatcher(None, leaf, k.rsplit(".", 1)[-1]).ratio() > 0.6][:3]
    if near:
        return ConfigError(f"Unknown config key {key!r}. Did you mean {', '.join(repr(n) for n in near)}?")
    sections = sorted({k.split(".", 1)[0] for k in valid})
    return ConfigError(f"Unknown config key {key!r}. Top-level keys and sections: {', '.join(sections)} (the keys "
                       "and defaults are in gan_jax/config.py default_config and the plugins' sections).")


def experiments_dir() -> pathlib.Path:
    """The shipped experiments: `experiments/` beside the package in a source checkout (an editable install),
    `gan_jax/experiments/` inside an installed wheel (pyproject.toml maps the one to the other)."""
    package = pathlib.Path(__file__).resolve().parent
    installed = package / "experiments"
    return installed if installed.is_dir() else package.parent / "experiments"


def resolve_config_path(spec: str) -> str:
    """`PATH.py[:arg]` (relative to the working directory), or a shipped experiment by name:
    `grid25[:arg]`, `grid25.py` or `experiments/grid25.py`."""
    path, sep, arg = spec.partition(":")
    given = pathlib.Path(path)
    if given.is_file():
        return spec
    # A shipped experiment by name: only a bare name, or experiments/NAME.py as README spells it; a path to
    # a file that does not exist is an error, not another experiment of the same name.
    if given.parent in (pathlib.Path("."), pathlib.Path("experiments")):
        shipped = experiments_dir()
        for candidate in (shipped / given.name, shipped / f"{given.name}.py"):
            if candidate.is_file():
                return f"{candidate}{sep}{arg}"
    return spec


def shipped_experiments() -> list[str]:
    """The names of the shipped experiments."""
    return sorted(p.stem for p in experiments_dir().glob("*.py") if not p.name.startswith("_"))


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads `path/to/experiment.py[:arg]` (or a shipped experiment by name, `grid25[:arg]`) by calling
    its `get_config(arg)`."""
    path, _, arg = resolve_config_path(spec).partition(":")
    if not pathlib.Path(path).is_file():
        near = difflib.get_close_matches(pathlib.Path(path).stem, shipped_experiments(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
        raise ConfigError(f"Config file {path!r} does not exist (from --config={spec!r}).{hint} Shipped "
                          f"experiments: {', '.join(shipped_experiments())}; or give the path of your own file.")
    module = load_module(path)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{path} has no get_config(arg=None) function.")
    config = module.get_config(arg or None)
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{path}: get_config must return an ml_collections.ConfigDict.")
    _check_keys(config, default_config())
    config.lock()
    return config


def load_module(path: str | pathlib.Path):
    """Imports an experiment file (so one experiment can build on another). Its folder is importable
    while it runs, so an experiment can import plugins that sit beside it (which register themselves)."""
    import sys

    file = pathlib.Path(path).resolve()
    if str(file.parent) not in sys.path:
        sys.path.append(str(file.parent))
    module_spec = importlib.util.spec_from_file_location(f"gan_jax_experiment_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _check_keys(config, reference, prefix=""):
    """Refuses keys an experiment file added that the framework does not know."""
    for k, v in config.items():
        name = f"{prefix}{k}"
        if k not in reference:
            raise _unknown_key(name, default_config())
        if isinstance(v, ml_collections.ConfigDict):
            _check_keys(v, reference[k], name + ".")


def parse_value(text: str) -> Any:
    """A command-line value: a Python literal when it parses as one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, str]) -> ml_collections.ConfigDict:
    """Sets `a.b=value` overrides on a locked config, refusing unknown keys and wrong types."""
    for key, text in overrides.items():
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
                raise _unknown_key(key, config)
            node = node[part]
        leaf = parts[-1]
        if leaf not in node or isinstance(node[leaf], ml_collections.ConfigDict):
            raise _unknown_key(key, config)
        value = parse_value(text) if isinstance(text, str) else text
        current = node[leaf]
        if isinstance(current, str) and not isinstance(value, str):
            value = text  # `--config.data.source=123` is still a string key
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        try:
            node[leaf] = value
        except TypeError as e:
            expected = type(current).__name__ if current is not None else "str"
            raise ConfigError(f"Config key {key!r} expects a {expected}, got {text!r} ({type(value).__name__}).") from e
    return config


def split_overrides(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Separates `--config.a.b=value` (or `--config.a.b value`) from the other arguments."""
    rest, overrides = [], {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--config."):
            body = arg[len("--config."):]
            if "=" in body:
                key, value = body.split("=", 1)
            else:
                if i + 1 >= len(argv):
                    raise ConfigError(f"{arg} needs a value: {arg}=VALUE.")
                key, value = body, argv[i + 1]
                i += 1
            overrides[key] = value
        else:
            rest.append(arg)
        i += 1
    return rest, overrides


def _require(ok: bool, key: str, message: str):
    if not ok:
        raise ConfigError(f"Config key {key!r}: {message}")


def _choice(config, key, choices):
    value = _get(config, key)
    if value not in choices:
        near = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"Config key {key!r} is {value!r}; it must be one of {', '.join(choices)}.{hint}")


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
    """Refuses impossible values before any work starts (core keys, then each plugin's own checks)."""
    from gan_jax import models, objectives, schedules
    from gan_jax.core import optim

    objectives.LOSSES.get(config.loss)
    objectives.G_OBJECTIVES.get(config.text.g_objective)
    _choice(config, "parallel", PARALLEL_MODES)
    _choice(config, "optim.name", tuple(optim.OPTIMIZERS))
    _choice(config, "optim.schedule", SCHEDULES)
    for key in ("num_steps", "batch_size", "steps_per_dispatch", "log_every_steps", "eval_every_steps",
                "ckpt_every_steps", "keep_checkpoints", "n_critic", "pack", "eval.num_samples"):
        value = _get(config, key)
        _require(isinstance(value, int) and value >= 1, key, f"must be a positive integer, got {value!r}.")
    for key in ("g_lr", "d_lr"):
        _require(config.optim[key] > 0, f"optim.{key}", f"learning rate must be positive, got {config.optim[key]}.")
    for key in ("b1", "b2"):
        _require(0 <= config.optim[key] < 1, f"optim.{key}", f"must be in [0, 1), got {config.optim[key]}.")
    for key in ("weight_decay", "momentum", "grad_clip"):
        _require(config.optim[key] >= 0, f"optim.{key}", f"must be >= 0, got {config.optim[key]}.")
    _require(config.optim.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0.")
    for key in ("standing_statistics", "standing_batch"):
        value = config.eval[key]
        _require(isinstance(value, int) and not isinstance(value, bool) and value >= (key == "standing_batch"),
                 f"eval.{key}", f"must be an integer >= {int(key == 'standing_batch')}, got {value!r}.")
    _require(0 <= config.ema.decay < 1, "ema.decay", f"must be in [0, 1) (0 disables EMA), got {config.ema.decay}.")
    _require(config.ema.half_life_images >= 0, "ema.half_life_images", "must be >= 0 (0: use ema.decay).")
    half_life = config.ema.half_life_images > 0 or config.ema.half_life_images_end > 0
    _require(not (half_life and config.ema.decay > 0), "ema.decay",
             "set either ema.decay or ema.half_life_images(_end), not both.")
    _choice(config, "schedule.kind", schedules.KINDS)
    _require(isinstance(config.schedule.steps, int) and config.schedule.steps >= 0, "schedule.steps",
             "must be an integer >= 0 (0: the whole run).")
    _require(0 <= config.optim.lr_end_factor <= 1, "optim.lr_end_factor", "must be in [0, 1].")
    _require(config.optim.b2_end < 1, "optim.b2_end", "must be < 1 (or -1 for a constant b2).")
    if config.parallel != "none":
        _require(config.batch_size % num_devices == 0, "batch_size",
                 f"{config.batch_size} is not divisible by the {num_devices} devices of parallel={config.parallel!r}; "
                 f"use a multiple of {num_devices} or --config.parallel=none.")
    per_device = config.batch_size // (num_devices if config.parallel != "none" else 1)
    _require(per_device % config.pack == 0, "pack", f"the per-device batch {per_device} is not divisible by "
             f"pack={config.pack}.")
    _require(config.model.latent_dim >= 1, "model.latent_dim", "must be >= 1.")
    _choice(config, "model.latent_dist", ("normal", "uniform"))
    _choice(config, "model.conditioning", ("none", "projection", "acgan"))
    if config.model.conditioning != "none":
        _require(config.pack == 1, "pack", "class-conditional models (model.conditioning) need pack=1.")
    _choice(config, "model.dtype", ("float32", "bfloat16"))
    _choice(config, "model.fake_labels", ("uniform", "real"))
    _choice(config, "g_noise", ("fresh", "reuse"))
    _choice(config, "data.tokenizer", ("none", "word", "char"))
    _choice(config, "data.crop", ("center", "none"))
    _require(config.data.resolution >= 0, "data.resolution", "must be >= 0 (0 keeps the native size).")
    _require(config.text.pretrain_steps >= 0, "text.pretrain_steps", "must be >= 0 (0 skips MLE pretraining).")
    _require(config.text.sample_temperature > 0, "text.sample_temperature", "must be > 0.")
    writers = [w.strip() for w in config.writers.split(",") if w.strip()]
    for w in writers:
        _require(w in WRITERS, "writers", f"{w!r} is not a writer; use a comma-separated list of {', '.join(WRITERS)}.")
    _choice(config, "wandb.mode", ("online", "offline", "disabled"))
    models.validate(config)
    for term in objectives.TERMS.values():
        settings = term.settings(config)
        _require(settings.weight >= 0, f"reg.{term.name}.weight", f"must be >= 0 (0: off), got {settings.weight}.")
        _require(isinstance(settings.every, int) and settings.every >= 1, f"reg.{term.name}.every",
                 f"must be a positive integer (1: every update), got {settings.every!r}.")
        if term.validate is not None:
            term.validate(settings, config)
    for augment in objectives.AUGMENTS.values():
        if augment.validate is not None:
            augment.validate(augment.settings(config), config)
    objectives.active_augment(config)
    from gan_jax.core.step import (
        check_objectives,  # the step's own build-time refusals, before any work
    )

    check_objectives(config)


def _get(config, key: str):
    value = config
    for part in key.split("."):
        value = value[part]
    return value


def to_dict(config: ml_collections.ConfigDict) -> dict:
    return json.loads(config.to_json())


def diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two config dicts (flattened names)."""
    out = []
    for k in sorted(set(a) | set(b)):
        name = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(diff(va, vb, name + "."))
        elif va != vb:
            out.append(name)
    return out


def _leaf(config: ml_collections.ConfigDict, key: str):
    """The current value at dotted `key`, or None where there is none."""
    node = config
    for part in key.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return None
        node = node[part]
    return node


def arg_flags(arg: str | None) -> set[str]:
    """The bare words of an experiment's `path:ARG` (its flags), read before the config is built.

    An experiment applies its flags first and `parse_arg` last, so a `key=value` in ARG wins over
    what a flag sets, wherever the two stand in ARG."""
    return {item.strip() for item in (arg or "").split(",") if item.strip() and "=" not in item}


def parse_arg(config: ml_collections.ConfigDict, arg: str | None, flags: Sequence[str] = ()) -> set[str]:
    """Applies an experiment's `path:ARG`: comma-separated `key=value` overrides and bare flags.

    The flag `runlocal` shrinks a run to a seconds-long smoke test (a few steps, at most 16
    samples per pack); `flags` names the other bare flags the experiment understands (any other
    bare word is an error). A string key takes a comma list as its value: in
    `model.r3gan.widths=64,64,32,16,runlocal` the bare words after the override that are not
    flags continue its value. Returns the flags given other than `runlocal`. Call it after the
    experiment has applied its flags (`arg_flags`), so the overrides come last.
    """
    known = {"runlocal", *flags}
    given, overrides = set(), []
    for item in filter(None, (arg or "").split(",")):
        if "=" in item:
            key, value = item.split("=", 1)
            overrides.append([key.strip(), value.strip()])
        elif overrides and item.strip() not in known and isinstance(_leaf(config, overrides[-1][0]), str):
            overrides[-1][1] += "," + item.strip()  # a list value: `model.r3gan.widths=64,64,32,16`
        else:
            given.add(item.strip())
    for key, value in overrides:
        apply_overrides(config, {key: value})
    unknown = sorted(given - known)
    if unknown:
        near = [m for u in unknown for m in difflib.get_close_matches(u, known, n=1)]
        hint = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
        raise ConfigError(f"Unknown experiment flag(s) {', '.join(map(repr, unknown))} in config argument {arg!r}."
                         f"{hint} Flags this experiment knows: {', '.join(sorted(known))}; overrides are key=value.")
    if "runlocal" in given:
        given.discard("runlocal")
        config.num_steps = min(config.num_steps, 2 * config.steps_per_dispatch, 100)
        config.batch_size = min(config.batch_size, 16 * config.pack)
        config.steps_per_dispatch = min(config.steps_per_dispatch, config.num_steps)
        config.log_every_steps = config.eval_every_steps = config.ckpt_every_steps = config.num_steps
        config.eval.num_samples = min(config.eval.num_samples, 500)
    return given
