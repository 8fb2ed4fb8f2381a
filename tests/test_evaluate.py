"""`gan-jax evaluate` on a real (tiny) MNIST run over tfds mock data: records, protocol, eval.jsonl, errors."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import config as config_lib
from gan_jax.loop import rundir
from gan_jax.loop.trainer import train_and_evaluate
from gan_jax.metrics import classifier, fid, inception, reference
from gan_jax.tools import cli
from gan_jax.tools import evaluate as evaluate_checkpoints

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from tensorflow_datasets.testing import mocking

    from gan_jax.data import tfds_images

    workdir = tmp_path_factory.mktemp("run")
    config = config_lib.load_config(str(ROOT / "experiments" / "seed_mlp_mnist.py") + ":runlocal")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tfds_images, "_check_online", lambda builder: None)
        mp.setattr(mocking, "_getitems", lambda keys, generator, serialized=False:
                   [mocking._getitem(None, k, generator, serialized) for k in keys])
        with tfds.testing.mock_data(num_examples=64, policy=tfds.testing.MockPolicy.USE_CODE):
            train_and_evaluate(config, workdir, progress=False)
    return workdir


@pytest.fixture
def mock_mnist(_mocked_download):
    with tfds.testing.mock_data(num_examples=64, policy=tfds.testing.MockPolicy.USE_CODE):
        yield


@pytest.fixture(scope="module")
def untrained_classifier(tmp_path_factory):
    params = classifier.CNN().init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    directory = tmp_path_factory.mktemp("clf") / "mnist_cnn"
    classifier.MNISTClassifier(jax.device_get(params), {"name": "untrained_cnn"}).save(directory)
    return directory


@pytest.mark.slow
@pytest.mark.usefixtures("mock_mnist")
def test_classifier_metrics_of_a_run(run_dir, untrained_classifier, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # reference features cache
    records = evaluate_checkpoints.evaluate_workdir(run_dir, ["fid_mnist", "labels"], num_samples=30,
                                                    classifier_dir=str(untrained_classifier), log=lambda s: None)
    names = [r["metric"] for r in records]
    assert names == ["fid_mnist", "labels/entropy", "labels/kl_uniform", "labels/classes_hit",
                     "labels/max_class_fraction", "labels/confident", "labels/mean_top_probability",
                     "labels/classes_confident"]
    lines = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
    assert lines[-len(records):] == records
    fid_record = records[0]
    assert fid_record["protocol"] == {"num_samples": 30, "num_real": 30, "dataset": "mnist", "split": "test",
                                      "network": "untrained_cnn"}
    config = rundir.read_config(run_dir)
    assert fid_record["generator"] == ("ema" if config.ema.decay > 0 else "raw") and fid_record["step"] > 0
    # The same number from the pieces: the generator's fixed-noise samples and the real subset.
    _, real, _ = evaluate_checkpoints.load_real_split(config, "test", None, None)
    model = classifier.MNISTClassifier.load(untrained_classifier)
    samples = _samples(run_dir, 30)
    expected = fid.fid_from_features(model.features(real[reference.select(len(real), 30)]), model.features(samples))
    np.testing.assert_allclose(fid_record["value"], expected, rtol=1e-9)


def _samples(run_dir, num):
    from gan_jax.core import optim
    from gan_jax.core.sampling import generate
    from gan_jax.core.state import create_state
    from gan_jax.loop.checkpoint import Checkpointer
    from gan_jax.models import build_models

    config = rundir.read_config(run_dir)
    g, d = build_models(config.model, (28, 28, 1))
    like = create_state(config, g, d, (28, 28, 1), optim.make_optimizer(config, config.optim.g_lr),
                        optim.make_optimizer(config, config.optim.d_lr, config.n_critic))
    ckpt = Checkpointer(run_dir / "checkpoints", 3, read_only=True)
    state, _ = ckpt.restore(ckpt.latest_step(), like)
    return generate(g, state, num, config.model)


def _have_inception():
    try:
        inception.find_weights(download=False)
        return True
    except inception.InceptionWeightsError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _have_inception(), reason=f"no Inception weights (set ${inception.ENV_VAR}; .ci/run does)")
@pytest.mark.usefixtures("mock_mnist")
def test_inception_metrics_and_table_from_the_command_line(run_dir, tmp_path, monkeypatch, capsys):
    weights = str(inception.find_weights(download=False))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # reference features cache
    code = cli.main(["evaluate", "--workdir", str(run_dir), "--metrics", "fid,kid,pr", "--num_samples", "10",
                     "--inception_weights", weights])
    out, err = capsys.readouterr()
    assert code == 0, err
    for name in ("fid", "kid", "precision", "recall"):
        assert f" {name} " in out
    records = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
    fid_record = [r for r in records if r["metric"] == "fid"][-1]
    assert fid_record["protocol"]["network"] == inception.NETWORK_NAME
    assert fid_record["protocol"]["resizer"].startswith("clean")
    assert fid_record["protocol"]["num_samples"] == 10 and fid_record["value"] > 0


@pytest.mark.usefixtures("mock_mnist")
def test_clear_errors(run_dir, tmp_path, capsys):
    assert cli.main(["evaluate", "--workdir", str(tmp_path), "--metrics", "fid"]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert cli.main(["evaluate", "--workdir", str(run_dir), "--metrics", "fdi"]) == 2
    assert "Unknown metric" in capsys.readouterr().err
    assert cli.main(["evaluate", "--workdir", str(run_dir), "--metrics", "labels", "--checkpoint", "7"]) == 2
    assert "no checkpoint at step 7" in capsys.readouterr().err
    assert cli.main(["evaluate", "--workdir", str(run_dir), "--metrics", "labels",
                     "--classifier", str(tmp_path / "none")]) == 2
    assert "gan-jax train-classifier" in capsys.readouterr().err
    with pytest.raises(rundir.RunDirError, match="latest, all or a step"):
        evaluate_checkpoints.select_steps([10, 20], "newest")
    assert evaluate_checkpoints.select_steps([20, 10], "all") == [10, 20]


@pytest.mark.slow
def test_a_run_on_a_local_npz_is_compared_with_its_own_images_or_with_real(untrained_classifier, tmp_path,
                                                                            monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    train, held_out = (rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8) for n in (64, 40))
    np.savez(tmp_path / "train.npz", x=train)
    np.savez(tmp_path / "held_out.npz", images=held_out[..., 0])  # [N, H, W] also reads as one channel
    config = config_lib.load_config(str(ROOT / "experiments" / "seed_mlp_mnist.py") + ":runlocal")
    config = config_lib.apply_overrides(config, {"data.source": f"local:{tmp_path / 'train.npz'}"})
    workdir = tmp_path / "run"
    train_and_evaluate(config, workdir, progress=False)
    model = classifier.MNISTClassifier.load(untrained_classifier)
    samples = _samples(workdir, 20)

    def expected(real_uint8):
        real = real_uint8.astype(np.float32) / 127.5 - 1.0
        return fid.fid_from_features(model.features(real[reference.select(len(real), 20)]), model.features(samples))

    own = evaluate_checkpoints.evaluate_workdir(workdir, ["fid_mnist"], num_samples=20,
                                                classifier_dir=str(untrained_classifier), log=lambda s: None)[0]
    np.testing.assert_allclose(own["value"], expected(train), rtol=1e-9)
    assert own["protocol"]["split"] == "all" and own["protocol"]["dataset"].startswith("train.npz-")
    code = cli.main(["evaluate", "--workdir", str(workdir), "--metrics", "fid_mnist", "--num_samples", "20",
                     "--classifier", str(untrained_classifier), "--real", str(tmp_path / "held_out.npz")])
    assert code == 0, capsys.readouterr().err
    other = json.loads((workdir / "eval.jsonl").read_text().splitlines()[-1])
    np.testing.assert_allclose(other["value"], expected(held_out), rtol=1e-9)
    assert other["protocol"]["dataset"].startswith("held_out.npz-") and other["value"] != own["value"]
    assert cli.main(["evaluate", "--workdir", str(workdir), "--metrics", "fid_mnist",
                     "--real", str(tmp_path / "missing.png")]) == 2
    assert "neither a .npz file nor a folder" in capsys.readouterr().err

    # The class-sorted picture of the same run: 10 rows (classes) of 4 tiles, 28 px + 2 px padding.
    code = cli.main(["sample", "--workdir", str(workdir), "--num", "30", "--by_class", "--per_class", "4",
                     "--classifier", str(untrained_classifier), "--out", str(tmp_path / "by_class")])
    out = capsys.readouterr().out
    assert code == 0 and "labelled with probability >= 0.9" in out
    from PIL import Image

    # A 14-pixel margin on the left names each row's class: ink in every row's band of the margin only.
    picture = np.asarray(Image.open(tmp_path / "by_class.png"))
    assert picture.shape[:2] == (10 * 30 + 2, 14 + 4 * 30 + 2)
    for row in range(10):
        assert (picture[2 + 30 * row: 30 + 30 * row, :14] < 128).any(), row
    assert (picture[:, :14][:2] == 255).all()  # the margin is white above the first label


def test_class_rows_by_hand():
    from gan_jax.tools.sample import class_rows

    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.9, 0.05, 0.05], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    rows, counts = class_rows(p, per_class=2)
    # class 0: samples 2 (0.9), 0 (0.6), 4 (0.5) -> the two most confident; class 1: sample 1; class 2: sample 3.
    np.testing.assert_array_equal(rows, [[2, 0], [1, -1], [3, -1]])
    np.testing.assert_array_equal(counts, [3, 1, 1])


@pytest.mark.slow
@pytest.mark.usefixtures("mock_mnist")
def test_sweep_evaluate_measures_each_finished_run_once_and_the_report_tabulates_it(run_dir, untrained_classifier,
                                                                                    tmp_path):
    import shutil

    from gan_jax.tools.sweep import evaluate as sweep_evaluate
    from gan_jax.tools.sweep.report import aggregate, report

    entries = []
    for seed in range(2):
        wd = tmp_path / "runs" / f"seed={seed}"
        shutil.copytree(run_dir, wd, ignore=shutil.ignore_patterns("eval.jsonl", "lock"))
        entries.append({"name": f"seed={seed}", "overrides": {"seed": seed}, "workdir": str(wd)})
    entries.append({"name": "seed=2", "overrides": {"seed": 2}, "workdir": str(tmp_path / "runs" / "unfinished")})
    record = {"config": "seed_mlp_mnist", "runs": entries}
    (tmp_path / "sweep.json").write_text(json.dumps(record))
    logs = []
    assert sweep_evaluate.evaluate_sweep(record, ["labels"], 30, str(untrained_classifier), log=logs.append) == 2
    assert "0 of 2 finished run(s) already measured, 2 to measure" in logs[0]
    step = json.loads((run_dir / "summary.json").read_text())["step"]
    measured = []
    for entry in entries[:2]:
        lines = [json.loads(x) for x in (pathlib.Path(entry["workdir"]) / "eval.jsonl").read_text().splitlines()]
        assert {r["step"] for r in lines} == {step} and all(r["protocol"]["num_samples"] == 30 for r in lines)
        measured.append({r["metric"]: r["value"] for r in lines})
    # The labels the classifier gives the run's 30 samples, counted directly.
    model = classifier.MNISTClassifier.load(untrained_classifier)
    labels = np.argmax(model.probabilities(_samples(run_dir, 30)), axis=1)
    assert measured[0]["labels/classes_hit"] == len(np.unique(labels))
    # A rerun measures nothing again; a different number of samples is a new measurement.
    assert sweep_evaluate.evaluate_sweep(record, ["labels"], 30, str(untrained_classifier), log=logs.append) == 0
    assert sweep_evaluate.already_evaluated(pathlib.Path(entries[0]["workdir"]), ["labels"], 30)
    assert not sweep_evaluate.already_evaluated(pathlib.Path(entries[0]["workdir"]), ["labels"], 40)
    assert not sweep_evaluate.already_evaluated(pathlib.Path(entries[0]["workdir"]), ["labels", "fid_mnist"], 30)
    text = report(tmp_path)
    assert "labels/classes_hit" in text.splitlines()[2]
    _, rows = aggregate(record)
    mean, _ = rows[0]["metrics"]["eval/labels/classes_hit"]
    assert rows[0]["n"] == 2 and mean == np.mean([m["labels/classes_hit"] for m in measured])
