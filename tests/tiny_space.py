"""The tiny search space the Ray tests run: a 1/16-width seed-001 dense GAN, a few hundred images
per trial, one learning rate searched; each test says its budget and search section."""

from __future__ import annotations


def tiny_space(images: int = 512, search: str = "{scheduler: fifo}") -> str:
    return f"""
base: mnist-mlp
budget: {{images: {images}, eval_every: 512, grace_images: 512}}
search: {search}
params:
  optim.d.lr: {{float: [1.0e-4, 1.0e-2], log: true}}
  model.width: 0.0625
  model.latent_dim: 16
  train.batch_size: 32
  train.log_every: 512
  train.sample_every: 512
  train.checkpoint_every: 0
  eval.n: 64
"""
