"""Kaggle digit-recognizer CSV files (``label,pixel0..pixel783``; without ``label`` the set is
unlabeled). ``split="test"`` is a fixed holdout: the last ``N // 6`` rows; ``"train"`` is the rows
before it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gan_core.data.dataset import one_line
from gan_core.errors import DataError

_CSV_PIXELS = 784  # 28 x 28
_CSV_TEST_FRACTION = 6  # split="test" is the last N // 6 rows


def _csv_header(names: list[str], path: Path) -> bool:
    """True when the header is labeled, False when unlabeled; DataError when it is neither."""
    pixels = [f"pixel{i}" for i in range(_CSV_PIXELS)]
    cleaned = [name.strip().strip('"').lower() for name in names]
    if cleaned == ["label", *pixels]:
        return True
    if cleaned == pixels:
        return False
    shown = ",".join(names)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise DataError(f"{path}, line 1: header must be 'label,pixel0,...,pixel783' (labeled) or "
                    f"'pixel0,...,pixel783' (unlabeled), got {shown!r} ({len(names)} columns)")


_CSV_ROW = re.compile(rb"\d+(?:,\d+)*")


def _csv_line_problem(line: bytes, columns: list[str]) -> str | None:
    """Why one data line is malformed, or None (the slow, exact diagnosis of a suspect line)."""
    tokens = line.split(b",")
    if len(tokens) != len(columns):
        return f"expected {len(columns)} values, got {len(tokens)}"
    if _CSV_ROW.fullmatch(line) is None:
        for token, column in zip(tokens, columns, strict=True):
            text = token.decode("utf-8", "replace")
            if not text.strip():
                return f"column {column}: empty value"
            if re.fullmatch(r"-?\d+", text) is None:
                return f"column {column}: {text!r} is not an integer"
    for token, column in zip(tokens, columns, strict=True):
        top = 9 if column == "label" else 255
        if not 0 <= int(token) <= top:
            return f"column {column}: {int(token)} is outside 0..{top}"
    return None


def read_kaggle_csv(path: str | Path) -> tuple[Tensor, Tensor | None]:
    """A Kaggle digit-recognizer CSV as uint8 images (N, 1, 28, 28) and int64 labels (or None).

    Validation is vectorised (comma counts, stray bytes, ranges) and parsing is numpy's C parser,
    so 42000 rows load in about a second; only a line already known to be bad is diagnosed in Python.
    Every error names the file and the 1-based line number (the header is line 1).
    """
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file does not exist (data.name csv:PATH)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({one_line(e)})") from None
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    if not raw.strip():
        raise DataError(f"{path}, line 1: file is empty; expected a header 'label,pixel0,...,pixel783'")
    lines = raw.split(b"\n")
    labeled = _csv_header(lines[0].decode("utf-8", "replace").strip().split(","), path)
    columns = (["label"] if labeled else []) + [f"pixel{i}" for i in range(_CSV_PIXELS)]
    rows, line_numbers = [], []
    for number, line in enumerate(lines[1:], start=2):
        line = line.strip()
        if line:
            rows.append(line)
            line_numbers.append(number)
    if not rows:
        raise DataError(f"{path}, line 2: no data rows after the header")

    def fail(first: int, stop: int | None = None) -> DataError:
        """The error for the first bad row in rows[first:stop] (just rows[first] by default)."""
        for row in range(first, first + 1 if stop is None else stop):
            problem = _csv_line_problem(rows[row], columns)
            if problem:
                return DataError(f"{path}, line {line_numbers[row]}: {problem}")
        return DataError(f"{path}, lines {line_numbers[first]}-{line_numbers[row]}: cannot parse as integers")

    commas = np.fromiter((row.count(b",") for row in rows), dtype=np.int64, count=len(rows))
    wrong = np.flatnonzero(commas != len(columns) - 1)
    if len(wrong):
        raise fail(int(wrong[0]))
    body = b"\n".join(rows)
    stray = body.translate(None, b"0123456789,\n")  # bytes other than digits and separators
    if stray:
        first = min(body.find(bytes([c])) for c in set(stray))
        raise fail(body.count(b"\n", 0, first))
    del body

    try:  # numpy's C parser; uint8 makes it refuse empty values and anything above 255 itself
        values = np.loadtxt(rows, delimiter=",", dtype=np.uint8, comments=None, ndmin=2)
    except ValueError as e:
        found = re.search(r"at row (\d+)", str(e))
        row = int(found.group(1)) if found else -1
        if 0 <= row < len(rows) and _csv_line_problem(rows[row], columns):
            raise fail(row) from None
        raise fail(0, len(rows)) from None
    if labeled:
        over = np.flatnonzero(values[:, 0] > 9)
        if len(over):
            raise fail(int(over[0]))
    pixels = torch.from_numpy(values[:, 1:] if labeled else values).reshape(-1, 1, 28, 28).contiguous()
    labels = torch.from_numpy(values[:, 0].astype(np.int64)) if labeled else None
    return pixels, labels


def csv_identity(path: Path) -> tuple[str, int, int]:
    """Path, size and modification time: an edited file is parsed again."""
    try:
        stat = path.stat()
    except OSError:
        raise DataError(f"{path}: file does not exist (data.name csv:PATH)") from None
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


_CSV_CACHE: dict[tuple[str, int, int], tuple[Tensor, Tensor | None]] = {}


def load_csv(path: str | Path, split: str) -> tuple[Tensor, Tensor | None]:
    """The split of a Kaggle CSV: ``test`` is the last N // 6 rows, ``train`` the rows before them.

    Parsed once per process.
    """
    path = Path(path).expanduser()
    key = csv_identity(path)
    if key not in _CSV_CACHE:
        _CSV_CACHE[key] = read_kaggle_csv(path)
    images, labels = _CSV_CACHE[key]
    n_test = len(images) // _CSV_TEST_FRACTION
    if split == "test" and n_test == 0:
        raise DataError(f"{path}: {len(images)} rows are too few for a test split (the last 1/6 of the rows)")
    part = slice(len(images) - n_test, None) if split == "test" else slice(0, len(images) - n_test)
    return images[part], None if labels is None else labels[part]
