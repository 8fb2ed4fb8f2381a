"""The quality-diversity temperature sweep of text runs against a direct computation, and its report."""

import json
import pathlib
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.models import text as text_models
from gan_jax.tools import quality_diversity as qd

ROOT = pathlib.Path(__file__).resolve().parent.parent
V, L = 3, 2  # a vocabulary and length small enough to enumerate every sequence


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _numpy_lstm_logits(p, ids):
    """[N, L, V] teacher-forced logits of the LSTM generator, from its equations (forget bias 1, learned start)."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    n = len(ids)
    h, c = np.zeros((n, p["u"].shape[0])), np.zeros((n, p["u"].shape[0]))
    x = np.broadcast_to(p["start"], (n, p["start"].shape[0]))
    out = []
    for t in range(ids.shape[1]):
        i, f, o, g = np.split(x @ p["w"] + h @ p["u"] + p["b"], 4, axis=1)
        c = _sigmoid(f + 1.0) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out.append(h @ p["w_out"] + p["b_out"])
        x = p["embedding"][ids[:, t]]
    return np.stack(out, axis=1)


def _log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def test_temperature_sweep_matches_direct_computation():
    g = text_models.LSTMGenerator(V, L, emb_dim=4, hidden_dim=5)
    variables = g.init(jax.random.key(0), jnp.zeros((1, 2)), train=False)
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda a: jnp.asarray(rng.normal(0, 1.0, a.shape), jnp.float32), variables["params"])
    state = types.SimpleNamespace(rng=jax.random.key(7), g=types.SimpleNamespace(
        params=params, model_state={"schedule": variables["schedule"]}), g_ema=None)
    config = config_lib.default_config()
    config.model.latent_dim = 2
    # A tiny 'oracle': fixed conditionals q(x_1) and q(x_2 | x_1); the score is its mean per-token NLL.
    q_first = np.array([0.6, 0.3, 0.1])
    q_next = np.array([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])

    def oracle_token_nll(ids):
        return -(np.log(q_first[ids[:, 0]]) + np.log(q_next[ids[:, 0], ids[:, 1]])) / 2

    all_seqs = np.array([[a, b] for a in range(V) for b in range(V)])
    logits = _numpy_lstm_logits(params, all_seqs)
    held_out = rng.integers(0, V, (40, L))
    held_logits = _numpy_lstm_logits(params, held_out)
    temperatures = [0.5, 1.0, 2.0]
    num = 6000
    samples = {}

    def recording_score(ids):
        samples[len(samples)] = ids
        return {"nll_oracle": float(oracle_token_nll(ids).mean())}

    records = qd.sweep(g, state, config, temperatures, num, held_out, recording_score, real_text=False)
    values = {(r["temperature"], r["metric"]): r["value"] for r in records}
    for k, t in enumerate(temperatures):
        logp = _log_softmax(logits / t)  # [9, L, V]
        seq_p = np.exp(logp[np.arange(9), 0, all_seqs[:, 0]] + logp[np.arange(9), 1, all_seqs[:, 1]])
        assert seq_p.sum() == pytest.approx(1.0, abs=1e-9)
        # The samples at temperature t follow softmax(logits / t), sequence by sequence.
        ids = samples[k]
        freq = np.array([np.mean((ids[:, 0] == a) & (ids[:, 1] == b)) for a, b in all_seqs])
        np.testing.assert_allclose(freq, seq_p, atol=4 * np.sqrt(0.25 / num))
        # NLL_oracle(t): the exact expectation over the enumerated distribution, within 4 standard errors.
        token_nll = oracle_token_nll(all_seqs)
        mean = float(seq_p @ token_nll)
        se = np.sqrt(float(seq_p @ (token_nll - mean) ** 2) / num)
        assert values[(t, "nll_oracle")] == pytest.approx(mean, abs=4 * se)
        # NLL_gen(t): the temperature-scaled model's NLL of the held-out set, exactly.
        held = _log_softmax(held_logits / t)
        direct = -np.mean(np.take_along_axis(held, held_out[..., None], -1))
        assert values[(t, "nll_gen")] == pytest.approx(direct, rel=1e-5)


def test_parse_temperatures():
    assert qd.parse_temperatures("0.5,1,1.5") == [0.5, 1.0, 1.5]
    assert qd.parse_temperatures(None) == list(qd.DEFAULT_TEMPERATURES)
    for bad in ("0,1", "a,b", "-1", ""):
        with pytest.raises(qd.QualityDiversityError, match="temperatures"):
            qd.parse_temperatures(bad)


def _write_sweep(workdir, step, values, dataset="synthetic:oracle:len20"):
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "eval.jsonl", "a") as f:
        for t, metrics in values.items():
            for name, value in metrics.items():
                f.write(json.dumps({"metric": name, "value": value, "step": step, "generator": "raw",
                                    "protocol": {"kind": qd.PROTOCOL, "temperature": t, "num_samples": 10,
                                                 "num_held_out": 10, "dataset": dataset}}) + "\n")


def test_report_aggregates_seeds_and_draws_one_plot(tmp_path):
    gan = [tmp_path / f"gan{i}" for i in range(3)]
    for i, wd in enumerate(gan):
        _write_sweep(wd, 100, {1.0: {"nll_oracle": 7.0 + i, "nll_gen": 8.0 - i}, 0.5: {"nll_oracle": 6.0 + i,
                                                                                      "nll_gen": 9.0}})
        _write_sweep(wd, 50, {1.0: {"nll_oracle": 99.0, "nll_gen": 99.0}})  # an older step, not the latest
        (wd / "metrics.jsonl").write_text("\n".join(json.dumps({"step": s, "eval/nll_oracle": 9 - s / 100 + i})
                                                    for s in (0, 50, 100)) + "\n")
    mle = tmp_path / "mle"
    _write_sweep(mle, 1, {1.0: {"nll_oracle": 8.5, "nll_gen": 7.5}, 0.7: {"nll_oracle": 7.5, "nll_gen": 7.9}})
    text = qd.report([f"GAN={','.join(map(str, gan))}", str(mle)], tmp_path / "out" / "oracle")
    dataset, rows = qd.aggregate({"GAN": gan})
    row = next(r for r in rows if r["temperature"] == 1.0)
    assert row["runs"] == 3 and row["steps"] == [100]
    mean, se = row["metrics"]["nll_oracle"]
    assert mean == pytest.approx(8.0) and se == pytest.approx(np.std([7, 8, 9], ddof=1) / np.sqrt(3))
    assert "| GAN | 3 | 100 | 1 | 8.000 ± 0.577 | 7.000 ± 0.577 |" in text
    assert "| mle | 1 | 1 | 0.7 | 7.500 | 7.900 |" in text and "RelGAN" in text
    for name in ("oracle.png", "oracle.md", "oracle.csv", "oracle_steps.png", "oracle_steps.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    other = tmp_path / "coco"
    _write_sweep(other, 1, {1.0: {"bleu2": 0.5}}, dataset="local:train.txt:len36")
    with pytest.raises(qd.QualityDiversityError, match="different data"):
        qd.report([str(mle), str(other)], tmp_path / "bad")


def _tiny_run_config(tmp_path):
    sentences = ["the cat sat on the mat .", "a dog ran .", "the dog sat .", "a cat ran on the mat ."]
    (tmp_path / "train.txt").write_text("\n".join(sentences * 5))
    (tmp_path / "test.txt").write_text("\n".join(sentences[:3]))
    c = config_lib.load_config(str(ROOT / "experiments" / "coco_relgan.py"))
    c.unlock()
    c.data.source = f"local:{tmp_path / 'train.txt'}"
    c.data.test_file = str(tmp_path / "test.txt")
    c.data.max_len = 8
    c.update(dict(num_steps=2, batch_size=4, n_critic=1, steps_per_dispatch=1, log_every_steps=1,
                  eval_every_steps=2, ckpt_every_steps=1, writers="jsonl"))
    c.model.text.update(dict(emb_dim=4, d_num_rep=2, d_num_filters=4))
    c.model.relational.head_size = 4
    c.text.pretrain_steps = 2
    c.eval.num_samples = 6
    c.lock()
    return c


@pytest.mark.slow
def test_evaluate_command_sweeps_a_text_run_and_reports(tmp_path):
    from gan_jax.loop.trainer import train_and_evaluate
    from gan_jax.tools import evaluate

    run = tmp_path / "run"
    train_and_evaluate(_tiny_run_config(tmp_path), run, progress=False)
    assert evaluate.main(["--workdir", str(run), "--checkpoint", "all", "--temperatures", "0.7,1.0",
                          "--num_samples", "8"]) == 0
    records = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert {r["step"] for r in records} == {1, 2}
    assert {r["protocol"]["temperature"] for r in records} == {0.7, 1.0}
    names = {r["metric"] for r in records}
    assert {"bleu2", "bleu5", "self_bleu2", "self_bleu5", "nll_gen"} <= names
    assert all(r["protocol"]["num_samples"] == 8 and r["protocol"]["num_held_out"] == 3 for r in records)
    assert evaluate.main(["report", f"GAN={run}", "--out", str(tmp_path / "qd")]) == 0
    assert (tmp_path / "qd.png").stat().st_size > 0
    assert "| GAN | 1 | 2 | 0.7 |" in (tmp_path / "qd.md").read_text()
    assert evaluate.main(["--workdir", str(run), "--temperatures", "0"]) == 2


def test_temperatures_refused_for_image_runs(tmp_path, capsys):
    from gan_jax.tools import evaluate

    c = config_lib.load_config("grid25")
    (tmp_path / "config.json").write_text(c.to_json())
    assert evaluate.main(["--workdir", str(tmp_path), "--temperatures", "1.0"]) == 2
    assert "--temperatures sweeps text runs" in capsys.readouterr().err
