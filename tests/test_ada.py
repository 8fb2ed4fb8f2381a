"""ADA's augmentation pipeline: identity at p = 0, differentiable, blits against numpy index arithmetic,
general geometric transforms against hand computations and scipy's bilinear interpolation, colour matrices
against their formulas, cutout's area, and the adaptive controller by hand, under pmap, and in a run.

Each test compiles one program (`run`): on CPU, compiling the random draws dominates a test's time."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import reliability_helpers as rh
from scipy import ndimage

from gan_jax import config as config_lib
from gan_jax.errors import ConfigError
from gan_jax.objectives import AUGMENTS
from gan_jax.objectives.augment import ada

KEY = jax.random.key(7)
SQRT3 = math.sqrt(3)
QUARTERS = {(1, 0): 0, (0, 1): 1, (-1, 0): 2, (0, -1): 3}  # (cos, sin) of k quarter turns -> k
resample = jax.jit(ada.resample)


def only(*names, **strengths):
    """Settings with the named multipliers at 1 and every other at 0."""
    s = {**ada.DEFAULTS, **{k: 0.0 for k in ada.MULTIPLIERS}, **{k: 1.0 for k in names}, **strengths}
    return ml_collections.ConfigDict(s)


def images(n=8, h=16, w=16, c=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, h, w, c)).astype(np.float32)


def run(f):
    """f() as one compiled program, its outputs as numpy arrays."""
    return jax.tree.map(np.asarray, jax.jit(f)())


GROUPS = {"blit": ada.BLIT, "geometric": ada.GENERAL, "color": ada.COLOR, "cutout": ("cutout",)}


# ----------------------------------------------------------------------------- identity and gradients


def test_every_group_and_the_pipeline_are_exactly_the_identity_at_p_0():
    rgb, grey = images(), images(c=1)
    everything = only(*ada.MULTIPLIERS)
    outputs = run(lambda: {(name, x.shape[-1]): fn(KEY, x, 0.0, everything)
                           for name, fn in [*((g, getattr(ada, g)) for g in GROUPS), ("augment", ada.augment)]
                           for x in (rgb, grey)})
    for (name, channels), out in outputs.items():
        np.testing.assert_array_equal(out, rgb if channels == 3 else grey, err_msg=name)


@pytest.mark.parametrize("name", list(GROUPS))
def test_each_group_is_differentiable_in_the_images(name):
    x, v, w = images(n=4, h=8, w=8), images(n=4, h=8, w=8, seed=1), images(n=4, h=8, w=8, seed=2)
    settings = only(*GROUPS[name])
    f = lambda x: getattr(ada, name)(KEY, x, 1.0, settings)  # noqa: E731
    out, grad, f_v, f_0 = run(lambda: (f(x), jax.grad(lambda x: jnp.sum(f(x) * w))(x), f(v), f(jnp.zeros_like(v))))
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)
    assert not np.allclose(out, x)  # it moved pixels, so the gradient is not the identity's
    # Affine in x: the gradient of <f(x), w> applied to v is <f(v) - f(0), w>.
    np.testing.assert_allclose(np.sum(grad * v), np.sum((f_v - f_0) * w), rtol=1e-4)


def test_second_order_gradients_flow_through_the_pipeline():
    """R1 through the augmentation: d/dtheta |d/dx D_theta(aug(x))|^2 is finite and matches finite differences."""
    x = images(n=4, h=8, w=8)
    settings = only(*ada.MULTIPLIERS)

    def r1(theta):
        critic = lambda x: jnp.sum(jnp.tanh(ada.augment(KEY, x, 1.0, settings) * theta))  # noqa: E731
        return jnp.sum(jax.grad(critic)(x) ** 2)

    eps = 1e-2
    grad, plus, minus = run(lambda: (jax.grad(r1)(0.7), r1(0.7 + eps), r1(0.7 - eps)))
    assert np.isfinite(grad) and grad != 0
    np.testing.assert_allclose(grad, (plus - minus) / (2 * eps), rtol=1e-2)


# ----------------------------------------------------------------------------- blits against numpy


def _blits(x, xint_max=0.25):
    """(flip?, quarter turns, (tx, ty), each blit alone, all three) for a batch, in one program."""
    n, h, w, _ = x.shape
    settings = {"xflip": only("xflip"), "rotate90": only("rotate90"), "xint": only("xint", xint_max=xint_max),
                "all": only(*ada.BLIT, xint_max=xint_max)}
    out = run(lambda: {k: (ada.blit_matrices(KEY, n, h, w, 1.0, s), ada.blit(KEY, x, 1.0, s))
                       for k, s in settings.items()})
    flips = out["xflip"][0][:, 0, 0] == -1
    quarters = [QUARTERS[(int(a), int(b))] for a, b in out["rotate90"][0][:, :2, 0]]
    shifts = -out["xint"][0][:, :2, 2].astype(int)  # the content moves by (tx, ty)
    return flips, quarters, shifts, {k: v[1] for k, v in out.items()}


def _shift(img, tx, ty, pad=4):
    """img moved by (tx, ty) pixels, reflected about its edge pixels: output (i, j) = input (i - ty, j - tx)."""
    h, w = img.shape[:2]
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    return padded[pad - ty:pad - ty + h, pad - tx:pad - tx + w]


def test_xflip_rotate90_and_integer_translation_move_pixels_as_numpy_indexing_does():
    x = images(n=32)
    flips, quarters, shifts, out = _blits(x)
    assert 0 < flips.sum() < 32 and set(quarters) == {0, 1, 2, 3}  # a fair coin, four quarters
    assert np.all(np.abs(shifts) <= 4) and len(set(shifts[:, 0])) > 3  # round(U(-1, 1) * 0.25 * 16)
    np.testing.assert_array_equal(out["xflip"], np.where(flips[:, None, None, None], x[:, :, ::-1], x))
    np.testing.assert_array_equal(out["rotate90"], np.stack([np.rot90(img, k, axes=(0, 1))
                                                             for img, k in zip(x, quarters)]))
    np.testing.assert_array_equal(out["xint"], np.stack([_shift(img, tx, ty) for img, (tx, ty) in zip(x, shifts)]))


def test_the_three_blits_compose_flip_then_rotate_then_translate():
    x = images(n=32)
    flips, quarters, shifts, out = _blits(x)
    expected = [_shift(np.rot90(img[:, ::-1] if flip else img, k, axes=(0, 1)), tx, ty)
                for img, flip, k, (tx, ty) in zip(x, flips, quarters, shifts)]
    np.testing.assert_array_equal(out["all"], np.stack(expected))


# ----------------------------------------------------------------------------- general geometric transforms


def _scipy_bilinear(img, matrix):
    """Bilinear interpolation (scipy, reflection about the edge pixels) of one image [H, W, C] at the
    coordinates `matrix` maps each output pixel to."""
    h, w, c = img.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    rows, cols = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    src = np.einsum("ij,jhw->ihw", np.asarray(matrix, np.float64), np.stack([cols, rows, np.ones_like(rows)]))
    coords = [src[1] + cy, src[0] + cx]
    return np.stack([ndimage.map_coordinates(img[..., k].astype(np.float64), coords, order=1, mode="mirror")
                     for k in range(c)], -1)


def _delta(at_x, at_y, size=17):
    """A one-pixel image at centred coordinates (at_x, at_y)."""
    x = np.zeros((1, size, size, 1), np.float32)
    x[0, size // 2 + at_y, size // 2 + at_x] = 1.0
    return x


def test_isotropic_zoom_by_2_spreads_a_delta_as_a_hand_computed_tent():
    out = np.asarray(resample(_delta(3, 2), np.diag([0.5, 0.5, 1.0]).astype(np.float32)[None]))[0, ..., 0]
    # Output u reads input u / 2: the delta lands at (6, 4) -> pixel (12, 14), half a pixel away it is halved.
    assert out[12, 14] == 1.0
    assert out[12, 13] == out[12, 15] == out[11, 14] == out[13, 14] == 0.5
    assert out[11, 13] == out[13, 15] == 0.25
    assert out.sum() == 4.0 and np.count_nonzero(out) == 9


def test_rotation_by_a_quarter_turn_moves_a_delta_where_the_rotation_says():
    theta = math.pi / 2  # M = R(theta) maps output u to input R u: the content turns by -theta
    m = np.array([[math.cos(theta), -math.sin(theta), 0], [math.sin(theta), math.cos(theta), 0], [0, 0, 1]])
    out = np.asarray(resample(_delta(5, 2), m.astype(np.float32)[None]))[0, ..., 0]
    # R u = (5, 2) -> u = R^-1 (5, 2) = (2, -5): row 8 - 5, column 8 + 2.
    assert abs(out[3, 10] - 1.0) < 1e-5 and abs(out.sum() - 1.0) < 1e-5


def test_fractional_translation_is_the_hand_computed_bilinear_blend():
    x = images(n=1, h=8, w=8, c=1)
    m = np.array([[1.0, 0, -0.25], [0, 1, 0.5], [0, 0, 1]], np.float32)  # (i, j) reads (i + 0.5, j - 0.25)
    out = np.asarray(resample(x, m[None]))[0, ..., 0]
    a = np.pad(x[0, ..., 0], 1, mode="reflect")  # a[i + 1, j + 1] = x[i, j]
    i, j = 3, 5
    # Rows i and i + 1 half each; columns j - 1 and j at 0.25 and 0.75.
    expected = 0.5 * (0.25 * a[i + 1, j] + 0.75 * a[i + 1, j + 1]) + 0.5 * (0.25 * a[i + 2, j] + 0.75 * a[i + 2, j + 1])
    np.testing.assert_allclose(out[i, j], expected, rtol=1e-6)
    np.testing.assert_allclose(out, _scipy_bilinear(x[0], m)[..., 0], atol=1e-6)


def test_reflection_is_once_about_the_edges_and_zero_beyond():
    x = images(n=2, h=6, w=6, c=1)
    shifts = np.array([[[1.0, 0, t], [0, 1, 0], [0, 0, 1]] for t in (10.0, 7.0)], np.float32)  # j reads j + t
    far, near = np.asarray(resample(x, shifts))
    np.testing.assert_array_equal(far[:, 0], x[0, :, 0])  # column 10 = 2 * 5 reflects to 0
    np.testing.assert_array_equal(far[:, 1:], 0.0)  # columns 11.. lie beyond the one reflection
    np.testing.assert_array_equal(near[:, :4], x[1][:, [3, 2, 1, 0]])  # columns 7..10 reflect to 3..0
    np.testing.assert_array_equal(near[:, 4:], 0.0)


def _general(n, h, w, p, names_and_settings):
    return run(lambda: {k: ada.general_matrices(KEY, n, h, w, p, s) for k, s in names_and_settings.items()})


def test_resampling_matches_scipy_for_the_drawn_general_transforms():
    x = images(n=6, h=12, w=12)
    settings = only(*ada.GENERAL)
    m, out = run(lambda: (ada.general_matrices(KEY, 6, 12, 12, 1.0, settings), ada.geometric(KEY, x, 1.0, settings)))
    for n in range(6):
        assert not np.allclose(m[n], np.eye(3))
        np.testing.assert_allclose(out[n], _scipy_bilinear(x[n], m[n]), atol=2e-5)


def test_general_transforms_compose_in_ada_order():
    """scale @ rotation @ aniso @ rotation @ translation, each factor drawn from its own numbers."""
    m = _general(64, 12, 12, 1.0, {"scale": only("scale"), "aniso": only("aniso"), "xfrac": only("xfrac"),
                                   "rotations": only("rotate"), "sandwich": only("rotate", "aniso"),
                                   "all": only(*ada.GENERAL)})
    m = {k: v.astype(np.float64) for k, v in m.items()}
    np.testing.assert_allclose(m["all"], np.einsum("nij,njk,nkl->nil", m["scale"], m["sandwich"], m["xfrac"]),
                               atol=1e-5)
    # The anisotropic scaling sits between the rotations: R1 A R2 has A's singular values, and is neither
    # A R1 R2 nor R1 R2 A.
    a = m["aniso"]
    np.testing.assert_allclose(np.linalg.svd(m["sandwich"][:, :2, :2], compute_uv=False),
                               -np.sort(-np.stack([a[:, 0, 0], a[:, 1, 1]], -1), -1), rtol=1e-5)
    for wrong in (np.einsum("nij,njk->nik", a, m["rotations"]), np.einsum("nij,njk->nik", m["rotations"], a)):
        assert np.mean(np.all(np.isclose(m["sandwich"], wrong, atol=1e-4), axis=(1, 2))) < 0.1


def test_the_drawn_strengths_and_probabilities_are_adas():
    n = 20_000
    at = {"scale": 0.3, "rotate": 0.3, "xfrac": 0.7}
    m = run(lambda: {**{k: ada.general_matrices(KEY, n, 8, 8, 1.0, only(k)) for k in ("scale", "aniso", "xfrac")},
                     "half": ada.general_matrices(KEY, n, 8, 8, 1.0, only("scale", scale=0.5)),
                     **{f"{k} at p": ada.general_matrices(KEY, n, 8, 8, p, only(k)) for k, p in at.items()}})
    np.testing.assert_allclose(np.std(np.log2(1 / m["scale"][:, 0, 0])), 0.2, rtol=0.03)
    np.testing.assert_allclose(m["aniso"][:, 0, 0] * m["aniso"][:, 1, 1], 1.0, rtol=1e-6)  # (1/a, a)
    np.testing.assert_allclose(np.std(np.log2(m["aniso"][:, 1, 1])), 0.2, rtol=0.03)
    np.testing.assert_allclose(np.std(m["xfrac"][:, :2, 2] / 8), 0.125, rtol=0.03)
    np.testing.assert_allclose((m["half"][:, 0, 0] != 1).mean(), 0.5, atol=0.015)  # multiplier 0.5 at p = 1
    # Probability multiplier * p for each transformation; the two rotations each with 1 - sqrt(1 - p), so that
    # an image turns with probability p.
    for name, p in at.items():
        moved = ~np.all(np.isclose(m[f"{name} at p"], np.eye(3)), axis=(1, 2))
        np.testing.assert_allclose(moved.mean(), p, atol=0.015, err_msg=name)


# ----------------------------------------------------------------------------- colour


def _luma_rotation(theta):
    v = np.ones(3) / SQRT3
    cross = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return math.cos(theta) * np.eye(3) + math.sin(theta) * cross + (1 - math.cos(theta)) * np.outer(v, v)


def _colors(n, names_and_settings, channels=3):
    out = run(lambda: {k: ada.color_matrices(KEY, n, channels, 1.0, s) for k, s in names_and_settings.items()})
    return {k: v.astype(np.float64) for k, v in out.items()}


def test_colour_matrices_follow_their_formulas():
    n = 4096
    m = _colors(n, {k: only(k) for k in ada.COLOR})
    eye = np.eye(4)
    b = m["brightness"][:, 0, 3]
    offsets = np.zeros((4, 4))
    offsets[:3, 3] = 1
    np.testing.assert_allclose(m["brightness"], eye + np.einsum("n,ij->nij", b, offsets), atol=1e-7)
    np.testing.assert_allclose(np.std(b), 0.2, rtol=0.05)
    c = m["contrast"][:, 0, 0]
    np.testing.assert_allclose(m["contrast"], np.einsum("n,ij->nij", c, np.diag([1.0, 1, 1, 0])) + np.diag(
        [0.0, 0, 0, 1]), atol=1e-7)
    np.testing.assert_allclose(np.std(np.log2(c)), 0.5, rtol=0.05)
    v = np.array([1, 1, 1, 0]) / SQRT3
    householder = eye - 2 * np.outer(v, v)
    is_flip = np.all(np.isclose(m["lumaflip"], householder, atol=1e-6), axis=(1, 2))
    is_eye = np.all(m["lumaflip"] == eye, axis=(1, 2))
    assert np.all(is_flip | is_eye) and 0.45 < is_flip.mean() < 0.55
    hue = m["hue"]
    theta = np.arctan2((hue[:, 2, 1] - hue[:, 1, 2]) * SQRT3 / 2, (np.trace(hue[:, :3, :3], axis1=1, axis2=2) - 1) / 2)
    for k in range(0, n, 97):
        np.testing.assert_allclose(hue[k, :3, :3], _luma_rotation(theta[k]), atol=1e-6)
    np.testing.assert_allclose(np.mean(np.abs(theta)), math.pi / 2, rtol=0.05)  # uniform in [-pi, pi)
    sat = m["saturation"]
    s = (np.trace(sat[:, :3, :3], axis1=1, axis2=2) - 1) / 2
    vv = np.outer(v, v)[:3, :3]
    np.testing.assert_allclose(sat[:, :3, :3], vv + np.einsum("n,ij->nij", s, np.eye(3) - vv), atol=1e-6)
    np.testing.assert_allclose(np.std(np.log2(s)), 1.0, rtol=0.05)


def test_colour_transforms_compose_brightness_first():
    m = _colors(64, {**{k: only(k) for k in ada.COLOR}, "all": only(*ada.COLOR)})
    expected = m["brightness"]
    for k in ada.COLOR[1:]:
        expected = np.einsum("nij,njk->nik", m[k], expected)
    np.testing.assert_allclose(m["all"], expected, atol=1e-5)


def test_applying_colour_matrices_to_rgb_and_grey():
    x, grey = images(n=4, h=5, w=5), images(n=4, h=5, w=5, c=1)
    m, out, out_grey = run(lambda: (lambda m: (m, ada.apply_color(x, m), ada.apply_color(grey, m)))(
        ada.color_matrices(KEY, 4, 3, 1.0, only(*ada.COLOR))))
    m = m.astype(np.float64)
    homogeneous = np.concatenate([x, np.ones((4, 5, 5, 1))], -1)
    np.testing.assert_allclose(out, np.einsum("nij,nhwj->nhwi", m, homogeneous)[..., :3], atol=1e-5)
    # Grey: (l, l, l, 1) through the matrix, then the mean of r, g, b.
    rgb = np.concatenate([np.repeat(grey, 3, -1), np.ones((4, 5, 5, 1))], -1)
    expected = np.einsum("nij,nhwj->nhwi", m, rgb)[..., :3].mean(-1, keepdims=True)
    np.testing.assert_allclose(out_grey, expected, atol=1e-5)


def test_luma_flip_reflects_each_pixel_through_its_grey_level():
    x = images(n=64)
    out, grey = run(lambda: (ada.color(KEY, x, 1.0, only("lumaflip")), ada.color(KEY, x[..., :1], 1.0,
                                                                                   only("lumaflip"))))
    flipped = x - 2 * x.mean(-1, keepdims=True)  # x - 2 (v . x) v
    per_image = [np.allclose(o, f, atol=1e-6) for o, f in zip(out, flipped)]
    kept = [np.array_equal(o, i) for o, i in zip(out, x)]
    assert all(a or b for a, b in zip(per_image, kept)) and any(per_image) and any(kept)
    # Grey images: the luma flip negates, on the same images as in colour.
    np.testing.assert_allclose(grey, np.where(np.array(per_image)[:, None, None, None], -x[..., :1], x[..., :1]),
                               atol=1e-6)


# ----------------------------------------------------------------------------- cutout


def test_cutout_zeroes_the_square_around_its_centre():
    ones = np.ones((4096, 16, 16, 1), np.float32)
    by_hand, (centre, size), drawn = run(lambda: (
        ada.apply_cutout(ones[:3], jnp.array([[0.5, 0.5], [0.0, 0.0], [0.75, 0.25]]), jnp.array([0.5, 0.5, 0.0])),
        ada.cutout_params(KEY, 4096, 0.5, only("cutout")), ada.cutout(KEY, ones, 0.5, only("cutout"))))
    expected = np.ones((3, 16, 16, 1))
    expected[0, 4:12, 4:12] = 0  # pixel centres (k + 0.5) / 16 within 0.25 of 0.5: k = 4..11
    expected[1, :4, :4] = 0  # clipped at the corner
    np.testing.assert_array_equal(by_hand, expected)
    assert set(np.unique(size)) == {0.0, 0.5} and abs(np.mean(size > 0) - 0.5) < 0.03
    inside = np.all(np.abs(centre - 0.5) <= 0.25 - 1 / 32, axis=1) & (size > 0)
    np.testing.assert_array_equal((drawn[inside] == 0).sum(axis=(1, 2, 3)), 64)  # a whole 8 x 8 square
    assert inside.sum() > 100 and np.all(drawn[size == 0] == 1)


# ----------------------------------------------------------------------------- the controller


def controller(**overrides):
    return ml_collections.ConfigDict({**ada.DEFAULTS, "mode": "adaptive", **overrides})


LIGHT = {**{k: 0.0 for k in ada.MULTIPLIERS}, "xflip": 1.0, "scale": 1.0, "brightness": 1.0, "cutout": 1.0}


def start(p=0.5):
    return {"p": jnp.float32(p), "sign_sum": jnp.float32(0), "count": jnp.int32(0)}


def observer(s, batch=8):
    """The controller on one device: the global sums are this batch's sums."""
    return jax.jit(lambda state, logits: ada.observe(s, {}, state, logits, jnp.mean, 0, total=jnp.sum, batch=batch))


def test_adaptive_p_rises_above_the_target_and_falls_below_it_by_hand():
    s = controller(interval=2, speed_images=1024.0)
    observe = observer(s)
    move = 8 * 2 / 1024  # 1/64: every value below is exact in float32
    up = jnp.array([3.0, 1, 2, 5, 0.1, 4, 2, 1])  # every sign +1 > 0.6
    state = observe(start(), up)
    assert float(state["p"]) == 0.5 and int(state["count"]) == 1 and float(state["sign_sum"]) == 8
    state = observe(state, up)
    assert float(state["p"]) == 0.5 + move and int(state["count"]) == 0 and float(state["sign_sum"]) == 0
    down = jnp.array([1.0, 1, 1, 1, 1, 1, -1, -1])  # mean sign 0.5 < 0.6
    state = observe(observe(state, down), down)
    assert float(state["p"]) == 0.5
    # The mean over the interval, not the last update's: 1 then 0.5 averages 0.75 > 0.6.
    assert float(observe(observe(start(), up), down)["p"]) == 0.5 + move
    # p stays within [0, 1].
    assert float(observe(observe(start(0.01), down), down)["p"]) == 0.0
    assert float(observe(observe(start(0.99), up), up)["p"]) == 1.0
    # A tie: 8 of 10 positive is a mean sign of 0.6, and 0.6 * 10 outputs * 2 updates rounds to 12 in float32.
    tie = jnp.array([1.0, 1, 1, 1, 1, 1, 1, 1, -1, -1])
    assert np.float32(0.6) * np.float32(20) == 12
    observe_10 = observer(s, batch=10)
    assert float(observe_10(observe_10(start(0.25), tie), tie)["p"]) == 0.25
    # With pack = 2, D's 4 outputs judge 8 images: the statistic counts outputs, p moves by images.
    packed = observe(observe(start(0.5), up[:4]), up[:4])
    assert float(packed["p"]) == 0.5 + move


def test_other_modes_record_the_p_they_use():
    state = ada.observe(controller(mode="fixed"), {"p": jnp.float32(0.25)}, start(), jnp.ones(8), jnp.mean, 0,
                        total=jnp.sum, batch=8)
    assert float(state["p"]) == 0.25 and int(state["count"]) == 0


def _signs(positives_per_device, rows=5):
    """Logits of +1 for the first k rows of each device's `rows`, -1 for the others."""
    return np.concatenate([np.where(np.arange(rows) < k, 1.0, -1.0) for k in positives_per_device]).astype(np.float32)


def test_the_controller_is_bitwise_the_same_on_one_device_and_under_pmap():
    devices = jax.devices()[:4]
    assert len(devices) == 4
    s = controller(interval=2, speed_images=997.0)
    rng = np.random.default_rng(0)
    normal = lambda: rng.normal(size=20).astype(np.float32)  # noqa: E731
    # Mean signs near the target 0.6 (16 of 20 positive), spread unevenly over the devices.
    batches = [_signs([5, 5, 5, 1]), _signs([4, 4, 4, 4]), _signs([5] * 4), _signs([5, 5, 5, 4]),
               _signs([5, 5, 3, 3]), _signs([5, 5, 5, 1]), _signs([1, 2, 0, 0]), _signs([0, 0, 0, 3]),
               normal(), normal(), normal(), normal()]
    single = start(0.4)
    parallel = jax.tree.map(lambda v: np.stack([v] * 4), single)
    observe_pmap = jax.pmap(lambda st, lg: ada.observe(s, {}, st, lg, lambda v: jax.lax.pmean(jnp.mean(v), "d"), 0,
                                                       total=lambda v: jax.lax.psum(jnp.sum(v), "d"), batch=20),
                            axis_name="d", devices=devices)
    observe_one = observer(s, batch=20)
    ps = []
    for logits in batches:
        single = observe_one(single, logits)
        parallel = observe_pmap(parallel, logits.reshape(4, 5))
        for key in single:
            np.testing.assert_array_equal(np.asarray(parallel[key]), np.broadcast_to(single[key], (4,)), err_msg=key)
        ps.append(float(single["p"]))
    move = float(np.float32(40) / np.float32(997))
    # Sums of signs 12 + 12 (a tie), 20 + 18 (up), 12 + 12 (a tie), -14 - 14 (down), then random logits.
    np.testing.assert_allclose(ps[1::2][:4], [0.4, 0.4 + move, 0.4 + move, 0.4], atol=1e-7)
    assert ps[0] == ps[1] and ps[4] == ps[3]


def test_states_stack_under_vmap():
    s = controller(interval=1, speed_images=80.0)
    states = jax.tree.map(lambda *v: jnp.stack(v), start(0.2), start(0.6))
    logits = jnp.stack([jnp.ones(8), -jnp.ones(8)])
    x = images(n=4)
    out, augmented = run(lambda: (jax.vmap(lambda st, lg: ada.observe(s, {}, st, lg, jnp.mean, 0, total=jnp.sum,
                                                                      batch=8))(states, logits),
                                  jax.vmap(lambda p: ada.augment(KEY, x, p, controller(**LIGHT)))(
                                      jnp.array([0.0, 1.0]))))
    np.testing.assert_allclose(out["p"], [0.2 + 0.1, 0.6 - 0.1], rtol=1e-6)
    np.testing.assert_array_equal(augmented[0], x)
    assert not np.allclose(augmented[1], x)


# ----------------------------------------------------------------------------- the plugin


def test_the_plugin_reads_p_from_the_state_when_adaptive_and_from_hparams_otherwise():
    plugin = AUGMENTS.get("ada")
    x = images(n=4)
    cases = {"adaptive": ({"p": 0.0}, start(1.0)), "fixed": ({"p": 1.0}, start(0.0)),
             "schedule": ({"p": 1.0}, start(0.0))}
    out = run(lambda: {"expected": ada.augment(KEY, x, 1.0, controller(**LIGHT)),
                       **{mode: plugin.apply(KEY, x, controller(mode=mode, **LIGHT), h, st)
                          for mode, (h, st) in cases.items()}})
    for mode in cases:
        np.testing.assert_array_equal(out[mode], out["expected"], err_msg=mode)
    assert not np.array_equal(out["expected"], x)


def _config(source="digits", **ada_overrides):
    c = config_lib.default_config()
    c.data.source = source
    c.augment.ada.update(ada_overrides)
    return c


def test_config_checks_name_the_key():
    config_lib.validate(_config(mode="adaptive", p=0.1), 1)
    config_lib.validate(_config(mode="schedule", p=0.0, p_end=0.4), 1)
    cases = [({"mode": "always"}, "augment.ada.mode"), ({"mode": "fixed", "p_end": 0.5}, "augment.ada.p_end"),
             ({"mode": "schedule"}, "augment.ada.p_end"), ({"mode": "fixed", "p": 1.5}, "augment.ada.p"),
             ({"mode": "adaptive", "interval": 0}, "augment.ada.interval"),
             ({"mode": "fixed", "xflip": -1.0}, "augment.ada.xflip"),
             ({"mode": "fixed", **{k: 0.0 for k in ada.MULTIPLIERS}}, "augment.ada.mode")]
    for overrides, key in cases:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            config_lib.validate(_config(**overrides), 1)
    with pytest.raises(ConfigError, match="augments images"):
        config_lib.validate(_config(source="synthetic:grid25", mode="fixed"), 1)
    c = _config(mode="adaptive")
    c.augment.diffaug.policy = "color"
    with pytest.raises(ConfigError, match="More than one augmentation"):
        config_lib.validate(c, 1)


def test_images_only_and_square_for_rotate90():
    with pytest.raises(ConfigError, match="augment.ada.mode"):
        jax.eval_shape(lambda x: ada.augment(KEY, x, 0.5), jnp.zeros((4, 2)))
    with pytest.raises(ConfigError, match="augment.ada.rotate90"):
        jax.eval_shape(lambda x: ada.augment(KEY, x, 0.5), jnp.zeros((4, 8, 6, 1)))
    with pytest.raises(ConfigError, match="augment.ada"):
        jax.eval_shape(lambda x: ada.augment(KEY, x, 0.5, only("brightness")), jnp.zeros((4, 8, 8, 2)))
    jax.eval_shape(lambda x: ada.augment(KEY, x, 0.5, only("xflip", "scale")), jnp.zeros((4, 8, 6, 1)))


# ----------------------------------------------------------------------------- end to end




def _run_config(npz: str, num_steps: int):
    c = config_lib.default_config()
    c.data.source = f"local:{npz}"
    c.model.generator = c.model.discriminator = "mlp"
    c.model.latent_dim = 16
    c.model.g_width = c.model.d_width = 64
    c.model.g_depth = c.model.d_depth = 1
    c.update(dict(batch_size=50, num_steps=num_steps, steps_per_dispatch=4, log_every_steps=8, eval_every_steps=10**6,
                  ckpt_every_steps=16, writers="jsonl"))
    c.optim.d_lr, c.optim.g_lr, c.optim.b1 = 2e-3, 1e-5, 0.5  # D far ahead of G: it tells reals apart at once
    c.eval.num_samples = 16
    c.augment.ada.update(dict(mode="adaptive", p=0.1, interval=4, speed_images=10_000.0))  # 0.02 per adjustment
    return c




@pytest.mark.slow
def test_adaptive_p_rises_when_d_overfits_and_resumes_exactly(tmp_path):
    from gan_jax.loop.trainer import train_and_evaluate

    npz = rh.digits_npz(tmp_path / "digits.npz")
    straight = _run_config(npz, 32)
    train_and_evaluate(straight, tmp_path / "straight", progress=False)
    train_and_evaluate(_run_config(npz, 16), tmp_path / "resumed", progress=False)
    train_and_evaluate(straight, tmp_path / "resumed", progress=False, allow_config_change=("num_steps",))
    a = rh.restore(tmp_path / "straight", straight, shape=(28, 28, 1))[0]
    b = rh.restore(tmp_path / "resumed", straight, shape=(28, 28, 1))[0]
    p = float(a.terms["augment"]["ada"]["p"])
    # D's sign on reals stays above 0.6: every one of the 32 / 4 adjustments raises p by 50 * 4 / 10,000.
    assert p > 0.1 and abs(p - (0.1 + 8 * 0.02)) < 1e-5, p
    for x, y in zip(jax.tree.leaves((a.terms, a.d.params, a.g.params)), jax.tree.leaves((b.terms, b.d.params,
                                                                                            b.g.params))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
