"""Config loading, overrides and validation fail early with messages that name the key."""

import json
import pathlib

import pytest

from gan_jax import config as config_lib
from gan_jax.tools.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent
GRID25 = str(ROOT / "experiments" / "grid25.py")


def test_experiment_variant_argument():
    c = config_lib.load_config(GRID25 + ":loss=hinge,pack=2")
    assert c.loss == "hinge" and c.pack == 2
    assert c.is_locked


def test_misspelt_override_names_nearest_keys():
    c = config_lib.load_config(GRID25)
    with pytest.raises(config_lib.ConfigError, match=r"optim\.d_lrr.*Did you mean 'optim\.d_lr'"):
        config_lib.apply_overrides(c, {"optim.d_lrr": "1e-3"})
    with pytest.raises(config_lib.ConfigError, match="num_steps"):
        config_lib.apply_overrides(c, {"num_step": "10"})


def test_wrong_type_is_refused():
    c = config_lib.load_config(GRID25)
    with pytest.raises(config_lib.ConfigError, match="num_steps.*int"):
        config_lib.apply_overrides(c, {"num_steps": "many"})


def test_int_is_accepted_for_float_keys():
    c = config_lib.load_config(GRID25)
    config_lib.apply_overrides(c, {"optim.g_lr": "1"})
    assert c.optim.g_lr == 1.0 and isinstance(c.optim.g_lr, float)


@pytest.mark.parametrize("key,value,match", [
    ("optim.d_lr", -1e-4, "optim.d_lr.*positive"),
    ("batch_size", 0, "batch_size.*positive"),
    ("loss", "hing", "Did you mean 'hinge'"),
    ("ema.decay", 1.0, "ema.decay"),
    ("parallel", "pjit", "parallel"),
])
def test_impossible_values(key, value, match):
    c = config_lib.load_config(GRID25)
    config_lib.apply_overrides(c, {key: value})
    with pytest.raises(config_lib.ConfigError, match=match):
        config_lib.validate(c, num_devices=1)


def test_batch_not_divisible_by_devices():
    c = config_lib.load_config(GRID25)
    config_lib.apply_overrides(c, {"parallel": "pmap", "batch_size": "102", "pack": "1"})
    with pytest.raises(config_lib.ConfigError, match="batch_size.*not divisible by the 4 devices"):
        config_lib.validate(c, num_devices=4)


def test_cli_refuses_before_any_work(tmp_path, capsys):
    workdir = tmp_path / "run"
    code = main(["train", "--config", GRID25, "--workdir", str(workdir), "--config.optim.g_lrr=1e-3"])
    assert code == 2
    assert "optim.g_lr" in capsys.readouterr().err
    assert not workdir.exists()


def test_split_overrides_both_forms():
    rest, overrides = config_lib.split_overrides(["--workdir", "w", "--config.a.b=1", "--config.c", "x"])
    assert rest == ["--workdir", "w"] and overrides == {"a.b": "1", "c": "x"}


def test_config_json_is_the_resolved_config(tmp_path):
    from gan_jax.loop.rundir import write_config as _write_config

    c = config_lib.load_config(GRID25 + ":seed=7")
    _write_config(tmp_path, c, data_shape=(2,))
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 7
    c.unlock()
    c.seed = 8
    with pytest.raises(config_lib.ConfigError, match="seed"):
        _write_config(tmp_path, c, data_shape=(2,))


def test_misspelt_experiment_flag_is_refused():
    with pytest.raises(ValueError, match=r"'pacgn'.*Did you mean 'pacgan'"):
        config_lib.load_config(GRID25 + ":pacgn")


def test_grid25_pacgan_flag_selects_pacgans_setup():
    c = config_lib.load_config(GRID25 + ":pacgan,seed=3")
    assert (c.model.g_width, c.model.d_width, c.model.d_fourier_features) == (400, 200, 0)
    assert (c.loss, c.reg.gp.weight, c.batch_size, c.optim.g_lr, c.optim.b1) == ("non_saturating", 0.0, 100, 1e-4, 0.8)
    assert c.seed == 3 and c.pack == 4


def test_list_value_in_experiment_argument():
    r3gan = str(ROOT / "experiments" / "mnist_r3gan.py")
    c = config_lib.load_config(r3gan + ":model.r3gan.widths=64,64,32,16,model.r3gan.cardinality=8,8,4,2,runlocal,seed=2")
    assert (c.model.r3gan.widths, c.model.r3gan.cardinality, c.seed, c.num_steps) == ("64,64,32,16", "8,8,4,2", 2, 2)
    with pytest.raises(ValueError, match=r"'16'.*Flags this experiment knows"):
        config_lib.load_config(r3gan + ":seed=2,16")  # after a number key a bare word is still a flag
    with pytest.raises(ValueError, match=r"'pacgn'"):
        config_lib.load_config(GRID25 + ":pacgn,seed=1")


@pytest.mark.parametrize("arg", ["cond,model.fake_labels=uniform", "model.fake_labels=uniform,cond"])
def test_an_override_wins_over_a_flag_wherever_it_stands(arg):
    r3gan = str(ROOT / "experiments" / "mnist_r3gan.py")
    c = config_lib.load_config(f"{r3gan}:{arg}")
    assert (c.model.conditioning, c.model.fake_labels) == ("projection", "uniform")  # cond set both; the override one
    cifar = str(ROOT / "experiments" / "cifar10_r3gan.py")
    c = config_lib.load_config(cifar + ":uncond,model.conditioning=projection,runlocal")
    assert c.model.conditioning == "projection" and c.model.r3gan.widths == "32,32,32,32"
    assert config_lib.arg_flags(" cond , seed=2,model.r3gan.widths=8,8,runlocal") == {"cond", "8", "runlocal"}


def test_a_path_that_does_not_exist_is_an_error_not_the_shipped_experiment(tmp_path):
    with pytest.raises(config_lib.ConfigError, match="does not exist"):
        config_lib.load_config("/missing/dir/grid25.py:runlocal")
    assert config_lib.resolve_config_path("experiments/grid25.py").endswith("grid25.py")  # README's spelling
    with pytest.raises(config_lib.ConfigError, match=r"Did you mean 'grid25'\?"):
        config_lib.load_config("grid52")


def test_cli_errors_exit_2_with_the_fix(tmp_path, capsys):
    from gan_jax.tools.cli import main

    assert main(["train", "--config", "grid25:runlocl", "--workdir", str(tmp_path / "a")]) == 2
    assert "Did you mean 'runlocal'" in capsys.readouterr().err
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["train", "--config", "grid25:runlocal", "--workdir", str(afile), "--quiet"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and afile.read_text() == "x"
    assert main(["train", "--config", "grid25", "--config.optim.lr=1"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean" in err and "optim.g_lr" in err and len(err) < 300  # the hint, not all 140 keys


def test_default_workdir_tells_variants_apart():
    from gan_jax.tools.cli import default_run_name

    assert default_run_name("grid25") == "grid25"
    assert default_run_name("grid25:runlocal") == "grid25-runlocal"
    assert default_run_name("experiments/grid25.py:loss=hinge,pack=1") == "grid25-loss=hinge,pack=1"
    long = default_run_name("grid25:" + ",".join(f"seed={i}" for i in range(20)))
    assert long.startswith("grid25-seed=0,seed=1") and len(long) <= 7 + 48 + 9
    assert default_run_name("grid25:data.manual_dir=/a/b") == "grid25-data.manual_dir=_a_b"
