"""Pictures people look at: sample grids (PNG), the learning animation (GIF), loss curves (PNG)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from gan_core.io import _atomic_write_bytes


def image_grid(
    images: torch.Tensor | np.ndarray, nrow: int, *, pad: int = 2, scale: int = 1, pad_value: int = 40
) -> Image.Image:
    """Tile uint8 images (N, C, H, W) into one picture, ``nrow`` images per row."""
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise ValueError("image_grid wants uint8 images")
    if x.ndim == 3:
        x = x.unsqueeze(1)
    n, c, h, w = x.shape
    rows = -(-n // nrow)
    grid = torch.full((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), pad_value, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = x[i].cpu()
    arr = grid.permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if c == 1 else arr, mode="L" if c == 1 else "RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def save_png(img: Image.Image, path: str | Path) -> None:
    _atomic_write_bytes(Path(path), _png_bytes(img))


def save_gif(frames: Sequence[Image.Image], path: str | Path, *, duration_ms: int = 120) -> None:
    """An animated GIF that loops forever; the last frame is held a little longer."""
    frames = [f.convert("RGB") if f.mode not in ("L", "RGB", "P") else f for f in frames]
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    durations = [duration_ms] * len(frames)
    durations[-1] = max(duration_ms, 1000)
    buf = io.BytesIO()
    frames[0].save(
        buf, format="GIF", save_all=True, append_images=list(frames[1:]), duration=durations, loop=0
    )
    _atomic_write_bytes(Path(path), buf.getvalue())


def outline(img: Image.Image, boxes: Sequence[tuple[int, int, int, int]], color=(255, 0, 0), width: int = 2) -> Image.Image:
    out = img.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    for box in boxes:
        draw.rectangle(box, outline=color, width=width)
    return out


def hstack(images: Sequence[Image.Image], gap: int = 6) -> Image.Image:
    w = sum(i.width for i in images) + gap * (len(images) - 1)
    h = max(i.height for i in images)
    out = Image.new("RGB", (w, h), (255, 255, 255))
    x = 0
    for im in images:
        out.paste(im.convert("RGB"), (x, 0))
        x += im.width + gap
    return out


def plot_curves(records: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Loss and discriminator-accuracy curves against images seen (seeds 001/002's plots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in records if "loss_d" in r]
    if not rows:
        return
    x = [r["images_seen"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(x, [r["loss_d"] for r in rows], label="discriminator loss")
    ax1.plot(x, [r["loss_g"] for r in rows], label="generator loss")
    ax1.set_xlabel("images seen")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(x, [r["acc_real"] for r in rows], label="D accuracy on real")
    ax2.plot(x, [r["acc_fake"] for r in rows], label="D accuracy on fake")
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_xlabel("images seen")
    ax2.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    _atomic_write_bytes(Path(path), buf.getvalue())
