"""Files in a local folder or under an s3:// / gs:// / file:// URI, read and written the same way.

Local paths go through the OS (writes are atomic); URIs through pyarrow's filesystem, the one
Ray Tune writes them with. search/experiment/ reads and writes experiment folders with it.

Example::

    folder = Folder("s3://bucket/gansearch/quick")
    summary = folder.read_json("summary.json")
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from gan_core.errors import GansearchError

# The URI schemes of pyarrow's file systems, which Ray Tune writes an experiment through.
URI_SCHEMES = ("s3", "gs", "gcs", "file", "hdfs", "viewfs", "abfs", "abfss")


def is_uri(path: str) -> bool:
    return "://" in path


def check_uri(flag: str, uri: str) -> str:
    """``uri`` when its scheme is one Ray can write an experiment to, else a one-line error."""
    scheme = uri.split("://", 1)[0].lower()
    if scheme not in URI_SCHEMES:
        raise GansearchError(f"{flag}: {uri}: {scheme or 'an empty'}:// is not a storage gansearch can write to; "
                             f"give a folder, or a URI of {', '.join(s + '://' for s in URI_SCHEMES)}")
    return uri


def normalise(path: str | Path) -> str:
    """A URI as given (without a trailing slash), a local path made absolute."""
    text = str(path)
    return text.rstrip("/") if is_uri(text) else str(Path(text).expanduser().resolve())


class Folder:
    """A local folder or an s3:// / gs:// / file:// URI: local paths through the OS, URIs through
    pyarrow's filesystem (as Ray writes them), so every command takes either."""

    def __init__(self, root: str | Path) -> None:
        self.root = normalise(root)
        self._remote: tuple[Any, str] | None = None

    def _fs(self) -> tuple[Any, str]:
        if self._remote is None:
            import pyarrow.fs

            try:
                self._remote = pyarrow.fs.FileSystem.from_uri(self.root)
            except (OSError, ValueError, TypeError) as exc:
                raise GansearchError(f"{self.root}: cannot open ({str(exc).splitlines()[0]})") from None
        return self._remote

    @property
    def local(self) -> bool:
        """True when the folder is on this machine (a path or a file:// URI)."""
        if not is_uri(self.root):
            return True
        import pyarrow.fs

        return isinstance(self._fs()[0], pyarrow.fs.LocalFileSystem)

    def _rel(self, rel: str) -> str:
        if not is_uri(self.root):
            return os.path.join(self.root, rel) if rel else self.root
        base = self._fs()[1].rstrip("/")
        return f"{base}/{rel}" if rel else base

    def locate(self, rel: str = "") -> str:
        """Where ``rel`` is, to show or hand on: a plain path when the folder is on this machine
        (file:// URIs too, so Path() and torch can open it), else the URI."""
        if self.local:
            return self._rel(rel)
        return f"{self.root}/{rel}" if rel else self.root

    def child(self, rel: str) -> Folder:
        out = Folder.__new__(Folder)
        out.root = f"{self.root}/{rel}" if is_uri(self.root) else os.path.join(self.root, rel)
        out._remote = None if self._remote is None else (self._remote[0], self._rel(rel))
        return out

    def is_dir(self, rel: str = "") -> bool:
        if not is_uri(self.root):
            return os.path.isdir(self._rel(rel))
        import pyarrow.fs

        try:
            return self._fs()[0].get_file_info(self._rel(rel)).type == pyarrow.fs.FileType.Directory
        except OSError as exc:
            raise GansearchError(f"{self.root}: cannot read ({str(exc).splitlines()[0]})") from None

    def entries(self, rel: str = "") -> dict[str, bool]:
        """Names in ``rel`` and whether each is a folder; {} when ``rel`` does not exist."""
        if not is_uri(self.root):
            try:
                with os.scandir(self._rel(rel)) as it:
                    return {e.name: e.is_dir() for e in it}
            except (FileNotFoundError, NotADirectoryError):
                return {}
        import pyarrow.fs

        fs, _ = self._fs()
        try:
            infos = fs.get_file_info(pyarrow.fs.FileSelector(self._rel(rel), allow_not_found=True))
        except OSError:
            return {}
        return {i.base_name: i.type == pyarrow.fs.FileType.Directory for i in infos}

    def read_bytes(self, rel: str) -> bytes | None:
        """The file's bytes; None when it does not exist (or vanished while a search replaced it)."""
        if not is_uri(self.root):
            try:
                return Path(self._rel(rel)).read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None
        fs, _ = self._fs()
        try:
            with fs.open_input_stream(self._rel(rel)) as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError):
            return None
        except OSError as exc:
            if "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
                return None
            raise GansearchError(f"{self.root}/{rel}: cannot read ({str(exc).splitlines()[0]})") from None

    def read_text(self, rel: str) -> str | None:
        data = self.read_bytes(rel)
        return None if data is None else data.decode(errors="replace")

    def read_json(self, rel: str) -> Any:
        """Parsed JSON; None when missing or not (yet) valid JSON."""
        text = self.read_text(rel)
        try:
            return None if text is None else json.loads(text)
        except ValueError:
            return None

    def write_text(self, rel: str, text: str) -> str:
        """Write ``rel`` (atomically when local); returns where it went."""
        return self.write_bytes(rel, text.encode())

    def write_bytes(self, rel: str, data: bytes) -> str:
        """Write ``rel`` (atomically when local); returns where it went."""
        if not is_uri(self.root):
            from gan_core.io import atomic_write_bytes

            atomic_write_bytes(Path(self._rel(rel)), data)
            return self._rel(rel)
        fs, base = self._fs()
        fs.create_dir(base, recursive=True)
        with fs.open_output_stream(self._rel(rel)) as f:
            f.write(data)
        return f"{self.root}/{rel}"

    def download(self, rel: str, dest: Path) -> Path | None:
        """A local copy of ``rel`` (a file) at ``dest``; None when it does not exist."""
        if not is_uri(self.root):
            src = Path(self._rel(rel))
            if not src.is_file():
                return None
            shutil.copy2(src, dest)
            return dest
        data = self.read_bytes(rel)
        if data is None:
            return None
        dest.write_bytes(data)
        return dest

    def remove(self, rel: str) -> None:
        """Delete the file or folder (with all it holds) ``rel``; nothing when it does not exist."""
        if not is_uri(self.root):
            path = self._rel(rel)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.remove(path)
            return
        import pyarrow.fs

        fs, _ = self._fs()
        info = fs.get_file_info(self._rel(rel))
        if info.type == pyarrow.fs.FileType.Directory:
            fs.delete_dir(self._rel(rel))
        elif info.type == pyarrow.fs.FileType.File:
            fs.delete_file(self._rel(rel))

    def upload(self, local: Path, rel: str) -> None:
        """Copy a local file into the folder."""
        if not is_uri(self.root):
            shutil.copy2(local, self._rel(rel))
            return
        import pyarrow.fs

        fs, _ = self._fs()
        pyarrow.fs.copy_files(str(local), self._rel(rel), destination_filesystem=fs)
