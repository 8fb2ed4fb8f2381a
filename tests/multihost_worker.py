"""One host of a simulated multi-host job (run by test_multihost.py as a subprocess).

usage: python multihost_worker.py PROCESS_ID NUM_PROCESSES PORT MODE OUT.npz

Each process owns the CPU devices that XLA_FLAGS gives it; with NUM_PROCESSES > 1 they join one
job through `jax.distributed` (gloo collectives). Every process reads its own rows of the same
global batches with `ArrayIterator(process_index, process_count)`, runs three dispatches of two
fused steps, and writes its copy of the final parameters and the last metrics to OUT.npz.
"""

import sys

import jax
import numpy as np

process_id, num_processes, port, mode, out = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4],
                                              sys.argv[5])
if num_processes > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=num_processes, process_id=process_id)

from gan_jax import config as config_lib  # noqa: E402
from gan_jax.core import optim  # noqa: E402
from gan_jax.core.parallel import Runner  # noqa: E402
from gan_jax.core.state import create_state  # noqa: E402
from gan_jax.core.step import make_train_step  # noqa: E402
from gan_jax.data import ArrayIterator  # noqa: E402
from gan_jax.models import build_models  # noqa: E402

config = config_lib.default_config()
config.update(dict(batch_size=16, n_critic=2, loss="relativistic", ema=dict(decay=0.9),
                   optim=dict(name="sgd", g_lr=0.01, d_lr=0.01), reg=dict(gp_weight=1.0),
                   model=dict(g_width=32, d_width=16)))
g_model, d_model = build_models(config.model, (2,))
g_tx, d_tx = optim.make_optimizers(config)
state = create_state(config, g_model, d_model, (2,), g_tx, d_tx)


def build(axis_name, num_devices):
    g, d = build_models(config.model, (2,), axis_name)
    return make_train_step(config, g, d, g_tx, d_tx, axis_name, num_devices)


points = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
data = ArrayIterator({"x": points}, config.batch_size, seed=3, process_index=jax.process_index(),
                     process_count=jax.process_count())
runner = Runner(mode, build)
device_state = runner.put_state(state)
for _ in range(3):
    batch = data.next_batches(2 * config.n_critic)  # two fused steps
    batch = {k: v.reshape((2, config.n_critic) + v.shape[1:]) for k, v in batch.items()}
    device_state, metrics = runner.step(device_state, runner.put_batch(batch))
final = jax.device_get(runner.get_state(device_state))
leaves = jax.tree_util.tree_leaves_with_path((final.g.params, final.d.params, final.g_ema, final.g.model_state))
arrays = {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}
arrays.update({f"metric/{k}": np.asarray(v) for k, v in jax.device_get(metrics).items()})
arrays["step"] = np.asarray(final.step)
arrays["rows_seen"] = np.asarray(data.local_indices(0, 1))
np.savez(out, **arrays)
