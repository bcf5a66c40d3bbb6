"""The sample sheet of the review: a labelled grid of samples from the checkpoint of each of the
top trials, side by side. ``collect_samples`` generates the tiles (torch, no drawing library);
``draw_samples`` lays them out on one page.

Example::

    draw_samples(collect_samples(load_experiment("runs/quick"), top=5), Path("top_samples.png"))
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gan_core.errors import GansearchError
from search.experiment import local_checkpoint
from search.review.tables import fmt

if TYPE_CHECKING:
    from PIL import Image

    from search.review.reading import ReviewedExperiment

TILE = 56  # pixels per sample on the sheet
PER_ROW = 5  # panels per row of the sheet


@dataclass
class Panel:
    """One trial's samples: its title and tiles (one grey tile when it has no usable checkpoint)."""

    title: str
    tiles: list[Image.Image]
    ncol: int


def _blank() -> Image.Image:
    from PIL import Image

    return Image.new("RGB", (TILE, TILE), (200, 200, 200))


def collect_samples(exp: ReviewedExperiment, top: int, seed: int = 0) -> list[Panel]:
    """Samples of the top ``top`` ranked trials, drawn with fixed noise ``seed`` (20 in class order
    for a conditional generator, else 16); checkpoints on s3:// / gs:// are fetched to a temp folder."""
    import torch

    from gan_core.checkpoint import load_run
    from gan_core.sampling import generate
    from gan_core.viz import scale_for, to_image

    panels = []
    with tempfile.TemporaryDirectory(prefix="gansearch-review-") as tmp:
        for rank, t in enumerate(exp.ranked()[:top], 1):
            title = f"#{rank} {t.trial_id}  {exp.metric} {fmt(t.score)}"
            ckpt = local_checkpoint(t, Path(tmp))
            if ckpt is None:
                panels.append(Panel(title + " (no checkpoint)", [_blank()], 1))
                continue
            try:
                run = load_run(ckpt)
            except GansearchError as exc:
                panels.append(Panel(title + f" ({str(exc)[:40]})", [_blank()], 1))
                continue
            G = run.G
            n, ncol = (20, 5) if G.conditional else (16, 4)
            labels = torch.arange(n) % G.num_classes if G.conditional else None
            images = generate(G, n, seed=seed, labels=labels)
            s = scale_for(G.shape[1], TILE)
            panels.append(Panel(title, [to_image(x, s) for x in images], ncol))
    return panels


def draw_samples(panels: list[Panel], path: Path) -> Path:
    """One page: the panels in rows of ``PER_ROW``, each a titled grid."""
    from PIL import Image

    from gan_core import viz
    from gan_core.viz import labelled_grid

    pages = [labelled_grid(p.tiles, p.ncol, title=p.title, gap=3, margin=8)[0] for p in panels]
    if not pages:
        pages = [labelled_grid([_blank()], 1, title="no ranked trials yet")[0]]
    rows = [viz.hstack(pages[i : i + PER_ROW], gap=10) for i in range(0, len(pages), PER_ROW)]
    width = max(r.width for r in rows)
    sheet = Image.new("RGB", (width, sum(r.height for r in rows) + 10 * (len(rows) - 1)), (255, 255, 255))
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height + 10
    viz.save_png(sheet, path)
    return path
