"""Sweeps: expansion helpers, the local runner end to end, and the report's statistics."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.tools import sweep

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_product_zip_and_seeds():
    runs = config_lib.product(config_lib.zip_(loss=["a", "b"], n_critic=[1, 5]), config_lib.seeds(2))
    assert runs == [{"loss": "a", "n_critic": 1, "seed": 0}, {"loss": "a", "n_critic": 1, "seed": 1},
                    {"loss": "b", "n_critic": 5, "seed": 0}, {"loss": "b", "n_critic": 5, "seed": 1}]
    assert config_lib.product(x=[1, 2], y=[3]) == [{"x": 1, "y": 3}, {"x": 2, "y": 3}]
    with pytest.raises(ValueError, match="one length"):
        config_lib.zip_(a=[1, 2], b=[1])
    assert sweep.run_name({"loss": "hinge", "reg.gp.weight": 10.0}) == "loss=hinge,reg.gp.weight=10.0"


def test_experiment_sweeps_expand_and_check_keys():
    runs = sweep.expand(str(ROOT / "experiments" / "grid25.py"), "3")
    assert len(runs) == 12 and {r["loss"] for r in runs} == {"non_saturating", "hinge", "wasserstein",
                                                              "least_squares"}
    assert all((r["reg.gp.weight"] > 0) == (r["loss"] == "wasserstein") for r in runs)
    assert len(sweep.expand(str(ROOT / "experiments" / "seed_mlp_mnist.py"))) == 12
    assert sweep.expand(str(ROOT / "experiments" / "ring8.py"), "seeds=3") == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    r1 = sweep.expand(str(ROOT / "experiments" / "mnist_dcgan.py"), "3")
    assert len(r1) == 9 and sorted({r["reg.r1.weight"] for r in r1}) == [0.0, 1.0, 10.0]


def test_aggregate_mean_and_standard_error(tmp_path):
    entries = []
    values = {"a": [1.0, 2.0, 4.0], "b": [3.0, 3.0]}
    for loss, vals in values.items():
        for seed, v in enumerate(vals):
            wd = tmp_path / f"{loss}{seed}"
            wd.mkdir()
            (wd / "summary.json").write_text(json.dumps({"metrics": {"eval/modes": v, "train/d_loss": 9.0}}))
            entries.append({"name": f"{loss}{seed}", "overrides": {"loss": loss, "seed": seed}, "workdir": str(wd)})
    keys, rows = sweep.aggregate({"config": "x", "runs": entries})
    assert keys == ["loss"]
    by = {r["group"]["loss"]: r for r in rows}
    mean, se = by["a"]["metrics"]["eval/modes"]
    assert mean == pytest.approx(np.mean(values["a"]))
    assert se == pytest.approx(np.std(values["a"], ddof=1) / np.sqrt(3))
    assert by["b"]["metrics"]["eval/modes"] == (3.0, 0.0) and by["b"]["n"] == 2
    assert "train/d_loss" not in by["a"]["metrics"]


def _tiny_experiment(tmp_path) -> pathlib.Path:
    """grid25 shrunk to 20 steps, with a 4-run sweep (2 losses x 2 seeds)."""
    exp = tmp_path / "tiny.py"
    exp.write_text(
        "import pathlib\n"
        "from gan_jax.config import load_module, lock, parse_arg\n"
        "from gan_jax.config import product, seeds\n"
        f"_g = load_module({str(ROOT / 'experiments' / 'grid25.py')!r})\n"
        "def get_config(arg=None):\n"
        "    c = _g.get_config('runlocal'); c.unlock()\n"
        "    c.num_steps = 20; c.steps_per_dispatch = 10; c.eval.num_samples = 200\n"
        "    c.log_every_steps = c.eval_every_steps = c.ckpt_every_steps = 20\n"
        "    parse_arg(c, arg); return lock(c)\n"
        "def get_sweep(arg=None):\n"
        "    return product(loss=['hinge', 'least_squares'], *[seeds(2)])\n")
    return exp


@pytest.mark.slow
def test_local_sweep_runs_resumes_and_reports(tmp_path):
    exp = _tiny_experiment(tmp_path)
    cmd = [sys.executable, "-m", "gan_jax", "sweep", "--config", str(exp), "--workdir", str(tmp_path / "s"),
           "--processes", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert len(record["runs"]) == 4
    for entry in record["runs"]:
        summary = json.loads((pathlib.Path(entry["workdir"]) / "summary.json").read_text())
        assert summary["step"] == 20
        assert json.loads((pathlib.Path(entry["workdir"]) / "config.json").read_text())["loss"] == \
            entry["overrides"]["loss"]
    assert "| hinge | 2 |" in (tmp_path / "s" / "report.md").read_text()
    # Rerunning finds every run finished and only reports.
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0 and "4 already finished, 0 to run" in again.stdout
    rep = subprocess.run([sys.executable, "-m", "gan_jax", "sweep", "--report", str(tmp_path / "s"), "--plot_metric",
                          "modes", "--plot_x", "loss"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert rep.returncode == 0, rep.stderr
    assert (tmp_path / "s" / "report.png").stat().st_size > 0
    assert (tmp_path / "s" / "report.csv").read_text().startswith("loss,runs,eval/high_quality")


@pytest.mark.slow
def test_ray_mode_runs_the_sweep_on_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray")
    exp = _tiny_experiment(tmp_path)
    cmd = [sys.executable, "-m", "gan_jax", "sweep", "--config", str(exp), "--workdir", str(tmp_path / "s"),
           "--mode", "ray", "--ray_cpus_per_run", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "4 to run as Ray tasks" in out.stdout and "[4/4]" in out.stdout
    record = json.loads((tmp_path / "s" / "sweep.json").read_text())
    summaries = {e["name"]: json.loads((pathlib.Path(e["workdir"]) / "summary.json").read_text())
                 for e in record["runs"]}
    assert len(summaries) == 4 and all(s["step"] == 20 for s in summaries.values())
    assert "| hinge | 2 |" in (tmp_path / "s" / "report.md").read_text()
    # A Ray task's run is the run itself: the same command by hand gives the same final metrics.
    entry = record["runs"][3]
    alone = subprocess.run([sys.executable, "-m", "gan_jax", "train", "--config", str(exp), "--workdir",
                            str(tmp_path / "alone"), "--quiet"] + [f"--config.{k}={v}" for k, v in
                                                                   entry["overrides"].items()],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert alone.returncode == 0, alone.stderr[-2000:]
    by_hand = json.loads((tmp_path / "alone" / "summary.json").read_text())["metrics"]
    for key in ("eval/modes", "eval/high_quality", "eval/reverse_kl"):
        assert summaries[entry["name"]]["metrics"][key] == pytest.approx(by_hand[key], rel=1e-6), key


def test_slurm_mode_writes_a_job_array(tmp_path):
    cmd = [sys.executable, "-m", "gan_jax", "sweep", "--config", str(ROOT / "experiments" / "grid25.py"),
           "--sweep_arg", "2", "--workdir", str(tmp_path), "--mode", "slurm"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    script = (tmp_path / "sweep.sbatch").read_text()
    assert "#SBATCH --array=0-7" in script and "run-one" in script


@pytest.mark.slow
def test_vmap_mode_matches_runs_made_one_by_one(tmp_path):
    """4 runs (2 seeds x 2 learning rates) stacked and vmapped == the same 4 runs trained separately.

    SGD: Adam's m / sqrt(v) turns rounding-level differences of near-zero gradients (a vmapped
    matmul may sum in another order) into full-size steps, which would hide real mismatches
    behind a loose tolerance. Raw-coordinate D: with Fourier features feeding the maxout units
    this tiny run is chaotic (rounding-level differences flip maxout pieces and grow to 1e-3
    within 5 steps); `test_vmap_step_with_fourier_features_matches_one_step` covers that D.
    """
    import jax

    from gan_jax import config as config_lib
    from gan_jax.core import optim
    from gan_jax.core.state import create_state
    from gan_jax.loop.checkpoint import Checkpointer
    from gan_jax.loop.trainer import train_and_evaluate
    from gan_jax.models import build_models
    from gan_jax.tools.sweep.vmap import group_runs, run_vmap

    exp = tmp_path / "tiny.py"
    exp.write_text(
        "from gan_jax.config import load_module, lock, parse_arg\n"
        "from gan_jax.config import product, seeds\n"
        f"_g = load_module({str(ROOT / 'experiments' / 'grid25.py')!r})\n"
        "def get_config(arg=None):\n"
        "    c = _g.get_config('runlocal'); c.unlock()\n"
        "    c.num_steps = 20; c.steps_per_dispatch = 5; c.eval.num_samples = 200; c.batch_size = 40\n"
        "    c.optim.name = 'sgd'; c.optim.g_lr = c.optim.d_lr = 0.01\n"
        "    c.model.d_fourier_features = 0\n"
        "    c.log_every_steps = c.eval_every_steps = 10; c.ckpt_every_steps = 20\n"
        "    parse_arg(c, arg); return lock(c)\n"
        "def get_sweep(arg=None):\n"
        "    return product(seeds(2), **{'optim.g_lr': [0.01, 0.02]})\n")
    spec = str(exp)
    runs = sweep.expand(spec)
    record = sweep.write_sweep(tmp_path / "v", spec, None, runs)
    assert len(group_runs(spec, record["runs"])) == 1  # one compiled program for all four
    assert len(group_runs(spec, [{"overrides": {"loss": "hinge"}}, {"overrides": {"loss": "hinge", "seed": 1}},
                                 {"overrides": {"n_critic": 2}}])) == 2
    run_vmap(record, log=lambda s: None)
    for entry in record["runs"]:
        config = config_lib.apply_overrides(config_lib.load_config(spec),
                                            {k: str(v) for k, v in entry["overrides"].items()})
        single = tmp_path / "single" / entry["name"]
        train_and_evaluate(config, single, progress=False)
        g, d = build_models(config.model, (2,))
        like = create_state(config, g, d, (2,), optim.make_optimizer(config, config.optim.g_lr),
                            optim.make_optimizer(config, config.optim.d_lr))
        a, _ = Checkpointer(pathlib.Path(entry["workdir"]) / "checkpoints", 2, read_only=True).restore(20, like)
        b, _ = Checkpointer(single / "checkpoints", 2, read_only=True).restore(20, like)
        for x, y in zip(jax.tree.leaves(a.g.params) + jax.tree.leaves(a.d.params),
                        jax.tree.leaves(b.g.params) + jax.tree.leaves(b.d.params)):
            # G's Fourier features make even this run weakly chaotic: rounding-level differences
            # (the programs sum and fuse in different orders) reached 6e-6 to 6.5e-5 after 20 steps on
            # two machines; a mixed-up seed or learning rate moves O(0.1) weights by far more.
            np.testing.assert_allclose(x, y, rtol=1e-3, atol=3e-4)
        vm = [json.loads(line) for line in open(pathlib.Path(entry["workdir"]) / "metrics.jsonl")]
        sg = [json.loads(line) for line in open(single / "metrics.jsonl")]
        assert [r["step"] for r in vm] == [r["step"] for r in sg]
        assert json.loads((pathlib.Path(entry["workdir"]) / "summary.json").read_text())["step"] == 20


@pytest.mark.slow
def test_vmap_step_with_fourier_features_matches_one_step():
    """One step of the default grid25 step (Fourier-feature D, GP, 2 critic steps), vmapped over
    two runs with different seeds, equals the same step run on each state alone (rounding level)."""
    import jax

    from gan_jax import config as config_lib
    from gan_jax.core import optim
    from gan_jax.core.parallel import StackedRunner
    from gan_jax.core.state import create_state
    from gan_jax.core.step import fuse_steps, make_train_step
    from gan_jax.data import get_dataset
    from gan_jax.models import build_models

    # SGD: the first Adam step is ±lr for any rounding-level gradient.
    arg = "runlocal,optim.name=sgd,optim.g_lr=0.01,optim.d_lr=0.01,seed="
    configs = [config_lib.load_config(str(ROOT / "experiments" / "grid25.py") + f":{arg}{s}") for s in (0, 1)]
    c = configs[0]
    assert c.model.d_fourier_features > 0 and c.reg.gp.weight > 0
    it, spec = get_dataset(c.data, c.batch_size, c.seed)
    g, d = build_models(c.model, spec.shape)
    g_tx, d_tx = optim.make_optimizers(c)
    states = [create_state(cfg, g, d, spec.shape, g_tx, d_tx) for cfg in configs]
    batch = {k: v.reshape((1, c.n_critic) + v.shape[1:]) for k, v in it.next_batches(c.n_critic).items()}
    step = fuse_steps(make_train_step(c, g, d, g_tx, d_tx))
    stacked, _ = jax.jit(jax.vmap(step))(StackedRunner.stack(states), {k: np.stack([v, v]) for k, v in batch.items()})
    for i, state in enumerate(states):
        alone, _ = jax.jit(step)(state, batch)
        for x, y in zip(jax.tree.leaves((alone.g.params, alone.d.params)),
                        jax.tree.leaves((stacked.g.params, stacked.d.params))):
            np.testing.assert_allclose(np.asarray(y)[i], x, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sweep_benchmark_times_both_modes_and_compares_every_run(tmp_path):
    """scripts/benchmark_sweep.py end to end on two 6-step SGD runs: both wall times, both modes'
    metrics for each run, and final parameters that agree to rounding level (SGD, see above)."""
    arg = ("runlocal,num_steps=6,steps_per_dispatch=3,log_every_steps=3,eval_every_steps=6,ckpt_every_steps=6,"
           "batch_size=40,optim.name=sgd,optim.g_lr=0.01,optim.d_lr=0.01,model.d_fourier_features=0,model.g_fourier_features=0,"
           "eval.num_samples=200")
    cmd = [sys.executable, "scripts/benchmark_sweep.py", "--config", f"experiments/grid25.py:{arg}",
           "--sweep_arg", "seeds=2", "--workdir", str(tmp_path / "b")]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["vmap_wall_s"] > 0 and report["sequential_wall_s"] > 0
    assert [r["run"] for r in report["runs"]] == ["seed=0", "seed=1"]
    for row in report["runs"]:
        assert row["vmap"] == pytest.approx(row["sequential"], abs=1e-3)  # a sample may cross a 3-sigma edge
        assert row["max_param_diff"] <= 1e-4 * max(1.0, row["max_param_abs"])
    assert "speed-up" in (tmp_path / "b" / "report.md").read_text()
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert again.returncode == 2 and "--overwrite" in again.stderr  # never times a half-finished directory


def _state_leaves(workdir, step, config):
    import jax

    from gan_jax.core import optim
    from gan_jax.core.state import create_state
    from gan_jax.loop.checkpoint import Checkpointer
    from gan_jax.models import build_models

    g, d = build_models(config.model, (2,))
    like = create_state(config, g, d, (2,), *optim.make_optimizers(config))
    state, meta = Checkpointer(pathlib.Path(workdir) / "checkpoints", 5, read_only=True).restore(step, like)
    return [np.asarray(x) for x in jax.tree.leaves((state.g.params, state.d.params, state.g.opt_state))], meta


@pytest.mark.slow
def test_vmap_sweep_stops_on_sigterm_resumes_exactly_and_locks_its_directory(tmp_path):
    """The vmap sweep runs through the training loop: SIGTERM checkpoints every run of the group at
    one step and exits 0; a second sweep on the directory is refused while the first runs; rerunning
    resumes and ends bitwise where an uninterrupted sweep ends."""
    import signal
    import time

    exp = tmp_path / "tiny.py"
    exp.write_text(
        "from gan_jax.config import load_module, lock, parse_arg, seeds\n"
        f"_g = load_module({str(ROOT / 'experiments' / 'grid25.py')!r})\n"
        "def get_config(arg=None):\n"
        "    c = _g.get_config('runlocal'); c.unlock()\n"
        "    c.num_steps = 3000; c.steps_per_dispatch = 10; c.eval.num_samples = 100; c.batch_size = 40\n"
        "    c.log_every_steps = 10; c.eval_every_steps = 3000; c.ckpt_every_steps = 1000\n"
        "    parse_arg(c, arg); return lock(c)\n"
        "def get_sweep(arg=None):\n"
        "    return seeds(2)\n")

    def command(workdir):
        return [sys.executable, "-m", "gan_jax", "sweep", "--config", str(exp), "--workdir", str(workdir),
                "--mode", "vmap"]

    reference = subprocess.run(command(tmp_path / "ref"), capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert reference.returncode == 0, reference.stderr[-3000:]

    swept = tmp_path / "s"
    proc = subprocess.Popen(command(swept), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    metrics = swept / "runs" / "seed=1" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the sweep logged nothing"
        time.sleep(0.05)
    second = subprocess.run(command(swept), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert second.returncode == 2 and "in use by another gan_jax run or sweep" in second.stderr, second.stderr
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "Stopped by SIGTERM" in err
    steps = set()
    for name in ("seed=0", "seed=1"):
        run = swept / "runs" / name
        assert not (run / "summary.json").exists()
        saved = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
        steps.add(saved[-1])
    (stopped_at,) = steps  # every run of the group saved at the same step
    assert 0 < stopped_at < 3000

    resumed = subprocess.run(command(swept), capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    config = config_lib.load_config(str(exp))
    for name in ("seed=0", "seed=1"):
        a, meta_a = _state_leaves(swept / "runs" / name, 3000, config)
        b, meta_b = _state_leaves(tmp_path / "ref" / "runs" / name, 3000, config)
        assert meta_a["data_position"] == meta_b["data_position"]
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
        logged = [[json.loads(line)["step"] for line in (base / "runs" / name / "metrics.jsonl").open()]
                  for base in (swept, tmp_path / "ref")]
        assert logged[0] == logged[1]  # each logged step once, across the stop


def test_runs_that_differ_only_in_a_term_weight_stack_in_one_group():
    from gan_jax.tools.sweep.vmap import group_runs, per_run_keys

    spec = str(ROOT / "experiments" / "digits_dcgan.py")
    config = config_lib.load_config(spec + ":reg.bcr.weight=1.0")
    assert "reg.bcr.weight" in per_run_keys(config) and "reg.bcr.policy" not in per_run_keys(config)
    weights = [{"overrides": {"reg.bcr.weight": w, "seed": s}} for w in (0.5, 1.0, 10.0) for s in (0, 1)]
    assert len(group_runs(spec, weights)) == 1
    # Switching a term on or off, or changing its static settings, changes the program.
    assert len(group_runs(spec, weights + [{"overrides": {"reg.bcr.weight": 0.0}}])) == 2
    assert len(group_runs(spec, weights + [{"overrides": {"reg.bcr.weight": 1.0, "reg.bcr.policy": "cutout"}}])) == 2


def test_report_takes_eval_jsonl_at_the_final_step(tmp_path):
    entries = []
    for seed, (early, late) in enumerate([(900.0, 980.0), (700.0, 1000.0)]):
        wd = tmp_path / f"s{seed}"
        wd.mkdir()
        (wd / "summary.json").write_text(json.dumps({"step": 20, "metrics": {"eval/modes": 1.0}}))
        lines = [{"metric": "stacked_mnist/modes", "value": early, "step": 10, "protocol": {"num_samples": 5}},
                 {"metric": "stacked_mnist/modes", "value": late, "step": 20, "protocol": {"num_samples": 5}},
                 {"metric": "nll_oracle", "value": 3.0, "step": 20, "protocol": {"temperature": 0.5}}]
        (wd / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        entries.append({"name": f"s{seed}", "overrides": {"seed": seed}, "workdir": str(wd)})
    # Measured at an earlier checkpoint only: not a final number, left out.
    wd = tmp_path / "s2"
    wd.mkdir()
    (wd / "summary.json").write_text(json.dumps({"step": 20, "metrics": {"eval/modes": 1.0}}))
    (wd / "eval.jsonl").write_text(json.dumps({"metric": "stacked_mnist/modes", "value": 5.0, "step": 10}) + "\n")
    entries.append({"name": "s2", "overrides": {"seed": 2}, "workdir": str(wd)})
    _, rows = sweep.aggregate({"config": "x", "runs": entries})
    mean, se = rows[0]["metrics"]["eval/stacked_mnist/modes"]
    assert mean == 990.0 and se == pytest.approx(np.std([980.0, 1000.0], ddof=1) / np.sqrt(2))
    assert rows[0]["metrics"]["eval/modes"] == (1.0, 0.0) and rows[0]["n"] == 3
    assert "eval/nll_oracle" not in rows[0]["metrics"]  # a temperature sweep has no single final value


def test_sweep_evaluate_refuses_an_unmeasurable_request_before_training(tmp_path, capsys):
    args = ["--config", "grid25", "--workdir", str(tmp_path / "s"), "--evaluate", "stacked_mnist",
            "--classifier", str(tmp_path / "none")]
    assert sweep.main(args) == 2
    err = capsys.readouterr().err
    assert "gan-jax train-classifier" in err and str(tmp_path / "none") in err
    assert not (tmp_path / "s").exists()
    assert sweep.main(args[:-4] + ["--evaluate", "fid,bleu"]) == 2
    assert "bleu" in capsys.readouterr().err and not (tmp_path / "s").exists()
    assert sweep.main(args[:-4] + ["--evaluate", "fid", "--eval_num_samples", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err and not (tmp_path / "s").exists()


def _fake_sweep(tmp_path, overrides_and_modes):
    """A sweep directory whose runs finished with the given `eval/modes`."""
    runs = []
    for i, (overrides, modes) in enumerate(overrides_and_modes):
        workdir = tmp_path / "runs" / f"r{i}"
        workdir.mkdir(parents=True)
        (workdir / "summary.json").write_text(json.dumps({"step": 10, "metrics": {"eval/modes": modes}}))
        runs.append({"name": f"r{i}", "overrides": overrides, "workdir": str(workdir)})
    (tmp_path / "sweep.json").write_text(json.dumps({"config": "grid25", "runs": runs}))
    return json.loads((tmp_path / "sweep.json").read_text())


def test_report_plot_puts_each_loss_at_its_own_tick_and_labels_its_points(tmp_path):
    from gan_jax.tools.sweep.report import aggregate, plot_layout, report

    losses = [("non_saturating", 0.0), ("hinge", 0.0), ("wasserstein", 1.0), ("least_squares", 0.0)]
    modes = {"non_saturating": (20, 22), "hinge": (24, 25), "wasserstein": (25, 25), "least_squares": (10, 14)}
    record = _fake_sweep(tmp_path, [({"loss": loss, "reg.gp.weight": gp, "seed": s}, modes[loss][s])
                                    for loss, gp in losses for s in (0, 1)])
    keys, rows = aggregate(record)
    layout = plot_layout(record, keys, rows, "modes", "loss")
    assert layout["ticks"] == [(0.0, "non_saturating"), (1.0, "hinge"), (2.0, "wasserstein"), (3.0, "least_squares")]
    ((label, points),) = layout["series"]  # reg.gp.weight is swept with the loss: no second series
    assert label == ""
    assert [(x, m) for x, m, _, _ in points] == [(0.0, 21.0), (1.0, 24.5), (2.0, 25.0), (3.0, 12.0)]
    assert points[0][2] == pytest.approx(1.0) and points[0][3] == "21 ± 1"  # s.e. of (20, 22): 1
    report(tmp_path, "modes", "loss")
    assert (tmp_path / "report.png").stat().st_size > 0


def test_report_plot_of_a_seeds_only_sweep_shows_every_seed_and_the_mean(tmp_path):
    from gan_jax.tools.sweep.report import aggregate, plot_layout, report

    record = _fake_sweep(tmp_path, [({"seed": s}, m) for s, m in enumerate((24, 25, 25))])
    keys, rows = aggregate(record)
    layout = plot_layout(record, keys, rows, "modes", None)
    runs, mean = layout["series"]
    assert [(x, m) for x, m, _, _ in runs[1]] == [(0.0, 24.0), (1.0, 25.0), (2.0, 25.0)]
    assert mean[1][0][1] == pytest.approx(74 / 3) and mean[1][0][2] == pytest.approx((1 / 3) ** 0.5 / 3 ** 0.5 * 1)
    with pytest.raises(ValueError, match="varies only the seed"):
        plot_layout(record, keys, rows, "modes", "loss")
    report(tmp_path, "modes")
    assert (tmp_path / "report.png").stat().st_size > 0
