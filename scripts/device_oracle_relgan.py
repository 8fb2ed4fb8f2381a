"""RelGAN's oracle protocol on one accelerator: predict its time from a short timed run, then run it.

    python scripts/device_oracle_relgan.py --predict_only      # the probe and the prediction only
    python scripts/device_oracle_relgan.py --limit_s 540       # the probe, then the protocol if it fits

The protocol is `experiments/oracle_relgan.py` as written (one seed, length 20: 23,400 MLE
pretraining steps, then 3,000 adversarial steps with an evaluation every 100). The probe trains
the same recipe for `--probe_pretrain` MLE steps and `--probe_steps` adversarial steps in a fresh
process and reads its clocks: the pretraining's seconds (its compilation included), the
adversarial steps per second (evaluations excluded), the seconds of each evaluation (eval/seconds),
and what is left of the wall time (start-up, data, compilation). The prediction scales each part
to the protocol's counts. The protocol then runs only if the prediction fits in `--limit_s`; its
numbers are in WORKDIR/summary.json and metrics.jsonl, the prediction and the measured wall time
in WORKDIR/../device_oracle_relgan.json.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _train(arg: str, workdir: pathlib.Path, quiet: bool = True) -> float:
    cmd = [sys.executable, "-m", "gan_jax", "train", "--config", f"experiments/oracle_relgan.py{arg}",
           "--workdir", str(workdir), *(["--quiet"] if quiet else [])]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - start


def _rows(workdir: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def predict(probe_pretrain: int, probe_steps: int, workdir: pathlib.Path) -> dict:
    """Times a probe run and scales it to the protocol; returns the probe's clocks and the prediction."""
    from gan_jax import config as config_lib

    full = config_lib.load_config(str(ROOT / "experiments" / "oracle_relgan.py"))
    every = full.eval_every_steps
    wall = _train(f":text.pretrain_steps={probe_pretrain},num_steps={probe_steps}", workdir)
    rows = _rows(workdir)
    pretrain_s = next(r["pretrain/seconds"] for r in rows if "pretrain/seconds" in r)
    rates = [r["train/steps_per_sec"] for r in rows if "train/steps_per_sec" in r]
    evals = [r["eval/seconds"] for r in rows if "eval/seconds" in r]
    adv_rate = sorted(rates)[len(rates) // 2]  # the median logged rate: compilation and evaluations excluded
    eval_s = sorted(evals)[len(evals) // 2]
    rest_s = max(wall - pretrain_s - probe_steps / adv_rate - sum(evals), 0.0)
    full_evals = math.ceil(full.num_steps / every)
    parts = {"pretrain_s": full.text.pretrain_steps * pretrain_s / probe_pretrain,
             "adversarial_s": full.num_steps / adv_rate, "evaluations_s": full_evals * eval_s, "start_up_s": rest_s}
    return {"probe": {"pretrain_steps": probe_pretrain, "adversarial_steps": probe_steps, "wall_s": round(wall, 1),
                      "pretrain_s": round(pretrain_s, 2), "adversarial_steps_per_s": round(adv_rate, 2),
                      "evaluation_s": round(eval_s, 2), "evaluations": len(evals), "start_up_s": round(rest_s, 1)},
            "protocol": {"pretrain_steps": full.text.pretrain_steps, "adversarial_steps": full.num_steps,
                         "evaluations": full_evals},
            "predicted": {k: round(v, 1) for k, v in parts.items()},
            "predicted_s": round(sum(parts.values()), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/oracle_relgan_device", help="the protocol's run directory")
    parser.add_argument("--probe_pretrain", type=int, default=1000, help="MLE steps of the probe")
    parser.add_argument("--probe_steps", type=int, default=200, help="adversarial steps of the probe")
    parser.add_argument("--limit_s", type=float, default=540.0, help="run the protocol only if predicted below this")
    parser.add_argument("--predict_only", action="store_true")
    args = parser.parse_args(argv)
    workdir = pathlib.Path(args.workdir)
    if workdir.exists() and not args.predict_only:
        print(f"{workdir} exists; the protocol would resume it. Remove it or pass another --workdir.", file=sys.stderr)
        return 2
    probe_dir = pathlib.Path(tempfile.mkdtemp(prefix="oracle_relgan_probe_"))
    try:
        record = predict(args.probe_pretrain, args.probe_steps, probe_dir)
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    p = record["predicted"]
    print(f"Predicted time of RelGAN's oracle protocol here: {record['predicted_s']:.0f} s "
          f"(pretraining {p['pretrain_s']:.0f} s, adversarial steps {p['adversarial_s']:.0f} s, "
          f"{record['protocol']['evaluations']} evaluations {p['evaluations_s']:.0f} s, start-up {p['start_up_s']:.0f} s)",
          flush=True)
    out = workdir.parent / "device_oracle_relgan.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.predict_only:
        if record["predicted_s"] > args.limit_s:
            print(f"Not running it: above --limit_s {args.limit_s:g}.", flush=True)
        else:
            record["wall_s"] = round(_train("", workdir, quiet=False), 1)
            summary = json.loads((workdir / "summary.json").read_text())
            record["metrics"] = {k: v for k, v in summary["metrics"].items() if k.startswith("eval/")}
            print(f"Protocol done in {record['wall_s']:.0f} s (predicted {record['predicted_s']:.0f} s): "
                  + ", ".join(f"{k} {v:.4g}" for k, v in record["metrics"].items()), flush=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"Results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
