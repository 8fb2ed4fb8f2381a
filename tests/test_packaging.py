"""The wheel's package list (pyproject.toml) names every package of the source tree, experiments included."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_package_ships_and_experiments_map_into_the_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gan_jax").rglob("__init__.py")}
    assert set(setuptools["packages"]) == on_disk | {"gan_jax.experiments"}
    assert setuptools["package-dir"] == {"gan_jax.experiments": "experiments"}
    assert (ROOT / "experiments" / "__init__.py").is_file() and (ROOT / "experiments" / "grid25.py").is_file()


def test_shipped_experiments_resolve_by_name_from_the_source_tree():
    from gan_jax import config as config_lib

    assert config_lib.experiments_dir() == ROOT / "experiments"
    assert config_lib.resolve_config_path("grid25:runlocal") == f"{ROOT / 'experiments' / 'grid25.py'}:runlocal"
