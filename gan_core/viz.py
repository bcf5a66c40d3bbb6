"""Pictures people look at: sample grids (PNG), the learning animation (GIF), loss curves (PNG), and
the drawing helpers every picture shares (upscaled tiles, labelled pages, outlines)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gan_core.io import atomic_write_bytes

TILE = 112  # target side of one upscaled image, in pixels (28 -> 4x)
BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
RED = (220, 30, 30)


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
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    return img


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def save_png(img: Image.Image, path: str | Path) -> None:
    atomic_write_bytes(Path(path), _png_bytes(img))


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
    atomic_write_bytes(Path(path), buf.getvalue())


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


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font (no font files needed); the bitmap one without FreeType."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def scale_for(height: int, target: int = TILE) -> int:
    """Integer upscale factor that brings an image of ``height`` pixels to about ``target``."""
    return max(1, -(-target // max(height, 1)))


def to_image(x: torch.Tensor, scale: int = 1) -> Image.Image:
    """One uint8 (C, H, W) image -> PIL (grey or RGB), upscaled smoothly by ``scale``."""
    arr = x.detach().cpu()
    if arr.shape[0] == 1:
        img = Image.fromarray(arr[0].numpy(), mode="L")
    else:
        img = Image.fromarray(arr[:3].permute(1, 2, 0).contiguous().numpy(), mode="RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.BICUBIC)
    return img


def _text_size(text: str, f) -> tuple[int, int]:
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=f)
    return int(right - left), int(bottom - top)


@dataclass
class Layout:
    """Where each tile of a ``labelled_grid`` landed (for outlining the quiz answers)."""

    boxes: list[tuple[int, int, int, int]]


def labelled_grid(
    tiles: Sequence[Image.Image],
    ncol: int,
    *,
    title: str | None = None,
    col_labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    gap: int = 8,
    margin: int = 12,
) -> tuple[Image.Image, Layout]:
    """Tiles of equal size on a white page, with an optional title, column and row labels."""
    tw, th = tiles[0].size
    nrow = -(-len(tiles) // ncol)
    f_label, f_title = font(16), font(18)
    row_w = max((_text_size(s, f_label)[0] for s in row_labels or []), default=0)
    row_w = row_w + gap if row_labels else 0
    title_h = _text_size(title, f_title)[1] + 12 if title else 0
    col_h = max((_text_size(s, f_label)[1] for s in col_labels or []), default=0) + 8 if col_labels else 0
    width = 2 * margin + row_w + ncol * tw + (ncol - 1) * gap
    height = 2 * margin + title_h + col_h + nrow * th + (nrow - 1) * gap
    if title:
        width = max(width, 2 * margin + _text_size(title, f_title)[0])
    grey = all(t.mode == "L" for t in tiles)  # grey pages encode to GIF frames without quantising
    page = Image.new("L" if grey else "RGB", (width, height), BACKGROUND[0] if grey else BACKGROUND)
    ink = INK[0] if grey else INK
    draw = ImageDraw.Draw(page)
    if title:
        draw.text((margin, margin), title, fill=ink, font=f_title)
    x0, y0 = margin + row_w, margin + title_h + col_h
    for c, label in enumerate(col_labels or []):
        w, _ = _text_size(label, f_label)
        draw.text((x0 + c * (tw + gap) + (tw - w) // 2, margin + title_h), label, fill=ink, font=f_label)
    for r, label in enumerate(row_labels or []):
        _, h = _text_size(label, f_label)
        draw.text((margin, y0 + r * (th + gap) + (th - h) // 2), label, fill=ink, font=f_label)
    boxes = []
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncol)
        x, y = x0 + c * (tw + gap), y0 + r * (th + gap)
        page.paste(tile if tile.mode == page.mode else tile.convert(page.mode), (x, y))
        boxes.append((x, y, x + tw - 1, y + th - 1))
    return page, Layout(boxes)


def outline_boxes(img: Image.Image, boxes: Sequence[tuple[int, int, int, int]], *, width: int = 3,
                  color: tuple[int, int, int] = RED) -> Image.Image:
    """Red frames drawn just outside each box (inside the gap between tiles)."""
    grown = [(x0 - width, y0 - width, x1 + width, y1 + width) for x0, y0, x1, y1 in boxes]
    return outline(img, grown, color=color, width=width)


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
    atomic_write_bytes(Path(path), buf.getvalue())
