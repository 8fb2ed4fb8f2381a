"""gan_jax: fast, reproducible GAN experiments in JAX."""

__version__ = "0.1.0"
