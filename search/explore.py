"""Play with a trained generator, as the seeds do: morph, vector arithmetic, the real-or-fake quiz,
class interpolation, the digital clock and a latent walk.

Every picture is built from ``G`` alone (plus real images for the quiz), drawn with a fixed
``seed``, and upscaled so that 28-pixel digits are legible. Conditional generators (cgan) get a
label: interpolation and the clock blend label vectors (seed 004's "numberness" space); morph,
arithmetic and the walk hold a label fixed per image.

Example::

    run = load_run("runs/cgan")
    morph(run.G, label=3).save("morph.png")
    frames = clock(run.G)                      # PIL frames of an animated GIF
    explore("runs/cgan", "interpolate", "7to9.png", classes=(7, 9))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from gan_core import viz
from gan_core.checkpoint import load_run
from gan_core.errors import GansearchError
from gan_core.models import Generator, sample_latent
from gan_core.sampling import generate, one_hot
from gan_core.viz import TILE, labelled_grid, outline_boxes, scale_for, to_image
from search.explore_modes import MODES, Mode

# ----------------------------------------------------------------------------- latent helpers


def _latent(G: Generator, n: int, gen: torch.Generator) -> torch.Tensor:
    return sample_latent(n, G.latent_dim, G.latent_dist, gen, "cpu")


def _check_label(G: Generator, label: int | None, what: str) -> int | None:
    if label is None:
        return None
    if not G.conditional:
        raise GansearchError(f"--label: {what} on an unconditional run (arch {G.arch}) takes no label; "
                             "drop --label")
    if not 0 <= label < G.num_classes:
        raise GansearchError(f"--label: {label} is not a class of this run (0..{G.num_classes - 1})")
    return label


def _labels(G: Generator, n: int, label: int | None) -> torch.Tensor | None:
    if not G.conditional:
        return None
    return torch.full((n,), 0 if label is None else label, dtype=torch.long)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` (White, 2016): the path keeps the
    norm that typical latent points have, where a straight line passes through the unlikely middle."""
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    omega = torch.acos(cos.clamp(-1.0, 1.0))
    so = torch.sin(omega)
    safe = so > 1e-6
    wa = torch.where(safe, torch.sin((1 - t) * omega) / so.clamp_min(1e-6), torch.full_like(so, 1 - t))
    wb = torch.where(safe, torch.sin(t * omega) / so.clamp_min(1e-6), torch.full_like(so, t))
    return wa[:, None] * a + wb[:, None] * b


def ease(t: float) -> float:
    """Seed 004's cosine ease: 0 -> 1 with zero speed at both ends."""
    return 0.5 - math.cos(math.pi * t) / 2


# ----------------------------------------------------------------------------- the pictures


def samples(G: Generator, *, seed: int = 0, label: int | None = None) -> Image.Image:
    """A grid of samples: 8x8 (unconditional runs, or one ``label``), or seed 004's figure for
    conditional runs: ten noise vectors (rows) drawn as every class (columns)."""
    label = _check_label(G, label, "samples")
    gen = torch.Generator().manual_seed(seed)
    if G.conditional and label is None:
        k = G.num_classes
        z = _latent(G, 10, gen).repeat_interleave(k, dim=0)
        labels: torch.Tensor | None = torch.arange(k).repeat(10)
        ncol, cols, title = k, [str(c) for c in range(k)], "samples: one noise vector per row, one class per column"
    else:
        z = _latent(G, 64, gen)
        labels = _labels(G, 64, label)
        ncol, cols = 8, None
        title = "64 samples" + (f" of class {label}" if label is not None else "")
    images = generate(G, len(z), z=z, labels=labels)
    s = scale_for(G.shape[1], 84)
    page, _ = labelled_grid([to_image(x, s) for x in images], ncol, title=title, col_labels=cols, gap=4)
    return page


def morph(G: Generator, *, label: int | None = None, steps: int = 10) -> Image.Image:
    """Seed 002: one noise vector with every entry equal, swept from -1 to +1 in ``steps`` steps.

    Conditional runs: one row per class unless ``label`` holds a single class."""
    label = _check_label(G, label, "morph")
    values = torch.linspace(-1.0, 1.0, steps)
    z = values[:, None].repeat(1, G.latent_dim)
    classes = [label] if (label is not None or not G.conditional) else list(range(G.num_classes))
    zs = z.repeat(len(classes), 1)
    labels = (torch.tensor(classes).repeat_interleave(steps) if G.conditional else None)
    images = generate(G, len(zs), z=zs, labels=labels)
    s = scale_for(G.shape[1])
    tiles = [to_image(x, s) for x in images]
    rows = [f"class {c}" for c in classes] if G.conditional else None
    page, _ = labelled_grid(tiles, steps, title="morph: every noise entry = v, v from -1 to +1",
                            col_labels=[f"{v:+.2f}" for v in values.tolist()], row_labels=rows)
    return page


def arith(G: Generator, *, seed: int = 0, label: int | None = None) -> Image.Image:
    """Seed 002: G(a), G(b) and G(b - a) for two random noise vectors (one class held fixed)."""
    label = _check_label(G, label, "arith")
    gen = torch.Generator().manual_seed(seed)
    a, b = _latent(G, 2, gen)
    z = torch.stack([a, b, b - a])
    images = generate(G, 3, z=z, labels=_labels(G, 3, label))
    s = scale_for(G.shape[1], 2 * TILE)
    tiles = [to_image(x, s) for x in images]
    title = "noise arithmetic" + (f" (class {0 if label is None else label})" if G.conditional else "")
    page, _ = labelled_grid(tiles, 3, title=title, col_labels=["a", "b", "b - a"], gap=16)
    return page


def quiz(G: Generator, real: torch.Tensor, *, seed: int = 0, n: int = 40, ncol: int = 10
         ) -> tuple[Image.Image, Image.Image, torch.Tensor]:
    """Seed 002's quiz: ``n`` images, half real (``real``: uint8 (>= n/2, C, H, W)) and half
    generated, at random places. Returns the question, the answers (generated ones outlined in
    red) and the boolean mask of generated positions."""
    gen = torch.Generator().manual_seed(seed)
    n_fake = n // 2
    n_real = n - n_fake
    if len(real) < n_real:
        raise GansearchError(f"quiz: need {n_real} real images, got {len(real)}")
    labels = torch.randint(G.num_classes, (n_fake,), generator=gen) if G.conditional else None
    fake = generate(G, n_fake, seed=seed + 1, labels=labels)
    is_fake = torch.zeros(n, dtype=torch.bool)
    is_fake[torch.randperm(n, generator=gen)[:n_fake]] = True
    images = torch.empty((n, *fake.shape[1:]), dtype=torch.uint8)
    images[is_fake] = fake
    images[~is_fake] = real[:n_real].to(torch.uint8)
    s = scale_for(G.shape[1])
    tiles = [to_image(x, s) for x in images]
    question, layout = labelled_grid(
        tiles, ncol, title=f"Real or generated? {n_fake} of these {n} images come from the generator.")
    answer_page, _ = labelled_grid(
        tiles, ncol, title=f"Answers: the {n_fake} generated images are outlined in red.")
    answers = outline_boxes(answer_page, [b for b, f in zip(layout.boxes, is_fake.tolist(), strict=True) if f])
    return question, answers, is_fake


def interpolate(G: Generator, a: int, b: int, *, seed: int = 0, rows: int = 10, steps: int = 10) -> Image.Image:
    """Seed 004: label vectors (1 - t) e_a + t e_b for ten t in [0, 1], one row per noise vector."""
    _need_conditional(G, "interpolate")
    for name, c in (("A", a), ("B", b)):
        if not 0 <= c < G.num_classes:
            raise GansearchError(f"interpolate: class {name}={c} is not a class of this run (0..{G.num_classes - 1})")
    gen = torch.Generator().manual_seed(seed)
    z = _latent(G, rows, gen).repeat_interleave(steps, dim=0)
    t = torch.linspace(0.0, 1.0, steps)
    ya, yb = one_hot(torch.tensor([a]), G.num_classes), one_hot(torch.tensor([b]), G.num_classes)
    y = ((1 - t)[:, None] * ya + t[:, None] * yb).repeat(rows, 1)
    images = generate(G, len(z), z=z, labels=y)
    s = scale_for(G.shape[1])
    tiles = [to_image(x, s) for x in images]
    cols = [str(a)] + [f"t={v:.2f}" for v in t[1:-1].tolist()] + [str(b)]
    page, _ = labelled_grid(tiles, steps, col_labels=cols,
                            title=f"class {a} -> class {b}: label (1-t)*{a} + t*{b}, one noise vector per row")
    return page


def clock(G: Generator, *, frames_per_digit: int = 20) -> list[Image.Image]:
    """Seed 004's digital clock: with the noise held at zero, each digit cross-fades into the
    next (0 -> 1 -> ... -> 9 -> 0) along the cosine ease in label space."""
    _need_conditional(G, "clock")
    k = G.num_classes
    ys = []
    for d in range(k):
        for f in range(frames_per_digit):
            e = ease(f / frames_per_digit)
            y = torch.zeros(k)
            y[d] += 1.0 - e
            y[(d + 1) % k] += e
            ys.append(y)
    y = torch.stack(ys)
    z = torch.zeros(len(y), G.latent_dim)
    images = generate(G, len(y), z=z, labels=y)
    s = scale_for(G.shape[1], 160)
    return [to_image(x, s) for x in images]


def walk(G: Generator, *, seed: int = 0, label: int | None = None, points: int = 6,
         frames_per_leg: int = 16) -> list[Image.Image]:
    """A closed loop through ``points`` random latent points, spherical between neighbours.

    Unconditional runs, or a fixed ``label``: a 4x4 grid of independent walks. Conditional runs
    without a label: one walk shared by every class, a row of digits changing style together."""
    label = _check_label(G, label, "walk")
    gen = torch.Generator().manual_seed(seed)
    per_class = G.conditional and label is None
    n = 1 if per_class else 16
    keys = _latent(G, points * n, gen).reshape(points, n, G.latent_dim)
    frames_z = []
    for p in range(points):
        a, b = keys[p], keys[(p + 1) % points]
        for f in range(frames_per_leg):
            z = slerp(a, b, f / frames_per_leg)
            if G.latent_dist == "uniform":
                z = z.clamp(-1.0, 1.0)  # stay inside the box the generator was trained on
            frames_z.append(z)
    if per_class:
        k = G.num_classes
        z = torch.cat([fz.repeat(k, 1) for fz in frames_z])
        labels: torch.Tensor | None = torch.arange(k).repeat(len(frames_z))
        ncol, per_frame = k, k
    else:
        z = torch.cat(frames_z)
        labels = _labels(G, len(z), label)
        ncol, per_frame = 4, n
    images = generate(G, len(z), z=z, labels=labels)
    s = scale_for(G.shape[1], 84)
    frames = []
    for i in range(len(frames_z)):
        tiles = [to_image(x, s) for x in images[i * per_frame : (i + 1) * per_frame]]
        cols = [str(c) for c in range(per_frame)] if per_class else None
        page, _ = labelled_grid(tiles, ncol, col_labels=cols, gap=4, margin=6)
        frames.append(page)
    return frames


def _need_conditional(G: Generator, what: str) -> None:
    if not G.conditional:
        works = ", ".join(m for m, spec in MODES.items() if not spec.conditional_only)
        raise GansearchError(
            f"{what}: blends class labels, so it needs a conditional run (arch cgan); this run is "
            f"unconditional (arch {G.arch}); modes that work here: {works}")


def _need_label_mixes(G: Generator, what: str) -> None:
    """An import-path architecture takes class indices (its contract), never a blend of classes."""
    if ":" in G.arch:
        works = ", ".join(m for m in MODES if m not in ("interpolate", "clock"))
        raise GansearchError(f"{what}: blends class labels, and model.arch {G.arch} takes class indices only "
                             f"(gan_core/user_arch.py's contract); modes that work here: {works}")


# ----------------------------------------------------------------------------- the command


def answers_path(out: Path) -> Path:
    """``quiz.png`` -> ``quiz-answers.png``."""
    return out.with_name(f"{out.stem}-answers{out.suffix}")


def real_images(cfg, n: int, seed: int) -> torch.Tensor:
    """``n`` random real images of the run's dataset (the test split when there is one)."""
    from gan_core.data import load_dataset
    from gan_core.errors import DataError

    try:
        data = load_dataset(cfg.data, "test")
    except DataError:
        data = load_dataset(cfg.data, "train")
    images, _ = data.batch(n, torch.Generator().manual_seed(seed + 2))
    return images


def check_request(what: str, out: str | Path, classes: Sequence[int]) -> Mode:
    """Refuse a bad mode, class list or output suffix before anything is loaded."""
    if what not in MODES:
        raise GansearchError(f"WHAT: {what!r} is not one of {', '.join(MODES)}")
    mode = MODES[what]
    if what == "interpolate" and len(classes) != 2:
        raise GansearchError("interpolate: give two classes, e.g. `explore RUN interpolate 7 9 --out 7to9.png`")
    if what != "interpolate" and classes:
        raise GansearchError(f"{what}: takes no class arguments (only interpolate A B does)")
    if Path(out).suffix.lower() != mode.suffix:
        kind = "an animated GIF" if mode.suffix == ".gif" else "a PNG"
        raise GansearchError(f"--out: {what} writes {kind}; give a file ending in {mode.suffix}, got {out}")
    return mode


def explore(run_dir: str | Path, what: str, out: str | Path, *, classes: Sequence[int] = (),
            seed: int = 0, label: int | None = None) -> list[Path]:
    """Draw ``what`` for the run in ``run_dir`` into ``out``; returns the files written."""
    check_request(what, out, classes)
    out = Path(out)
    run = load_run(resolve_run(run_dir))
    G = run.G.cpu().eval()
    if what in ("interpolate", "clock"):
        _need_conditional(G, what)
        _need_label_mixes(G, what)
    if what == "samples":
        viz.save_png(samples(G, seed=seed, label=label), out)
        return [out]
    if what == "morph":
        viz.save_png(morph(G, label=label), out)
        return [out]
    if what == "arith":
        viz.save_png(arith(G, seed=seed, label=label), out)
        return [out]
    if what == "quiz":
        if label is not None:
            raise GansearchError("--label: quiz mixes real images of every class; drop --label")
        question, answers, _ = quiz(G, real_images(run.cfg, 20, seed), seed=seed)
        viz.save_png(question, out)
        viz.save_png(answers, answers_path(out))
        return [out, answers_path(out)]
    if what == "interpolate":
        viz.save_png(interpolate(G, classes[0], classes[1], seed=seed), out)
        return [out]
    if what == "clock":
        if label is not None:
            raise GansearchError("--label: the clock shows every class in turn; drop --label")
        viz.save_gif(clock(G), out, duration_ms=50)
        return [out]
    viz.save_gif(walk(G, seed=seed, label=label), out, duration_ms=60)
    return [out]


def resolve_run(path: str | Path) -> Path:
    """A run directory, a checkpoint file, or a search trial folder: the checkpoint of its best
    point (the one review ranks it by and the search keeps), else its newest."""
    p = Path(path)
    if p.is_file() or (p / "checkpoint.pt").exists():
        return p
    if p.is_dir() and (any(p.glob("checkpoint_*/checkpoint.pt")) or (p / "run" / "checkpoint.pt").exists()):
        from search.experiment import STATE_FILE, Manifest, local_checkpoint, read_manifest, read_trial
        from search.storage import Folder

        parent = Folder(p.parent)
        # A trial folder alone (no experiment around it) ranks its reports by the default objective.
        manifest = read_manifest(parent) if parent.read_bytes(STATE_FILE) is not None else Manifest()
        trial = read_trial(parent, p.name, objective=manifest.objective(), budget=None)
        found = local_checkpoint(trial, p)  # a local folder: nothing is downloaded
        if found is not None:
            return found
    raise GansearchError(f"{p}: no checkpoint here (give a run directory written by train or retrain, "
                         "a checkpoint.pt, or a search trial folder)")
