"""Atomic file writes, shared by every layer: a reader, or a run restarted after SIGKILL, sees either the old
file or the complete new one, never a torn one.

Every output file goes through here: :func:`atomic_path` (a temporary path for writers that want a file name:
``torch.save``, ``savefig``, ``np.save``, PyAV), :func:`atomic_write_bytes` / :func:`atomic_write_text` /
:func:`atomic_write_json`, :func:`atomic_dir` for a folder written as a whole, and :func:`save_figure`.
``fsync=True`` also makes the new file survive a power loss (the file and its folder are flushed to disk
before and after the rename); use it for records a resumed run relies on. A failed write removes its
temporary; :func:`remove_stale_temporaries` clears those a killed process left behind.

Append-only logs (``metrics.jsonl``) are the one exception: they are appended line by line, and their readers
skip a torn last line.

:func:`hold_folder` gives one process at a time a run's output folder (an OS lock that dies with its process).

:func:`read_text` is the one reader of user text files (annotation lists, class lists, configs): UTF-8, with
or without a byte-order mark; anything else is refused with the file, line and byte offset of the first bad
byte (docs/data.md, "Text encodings").
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

_UTF8_BOM = b"\xef\xbb\xbf"
# UTF-32 before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one.
_OTHER_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
               (b"\xfe\xff", "UTF-16"))

# Temporaries are named ".NAME.RANDOM.tmp" plus NAME's suffix, beside NAME.
_TEMPORARY = re.compile(r"^\..+\.tmp(\.[^.]+)?$")


def _process_umask() -> int:
    """The process umask (read once, at import)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _process_umask()
_FILE_MODE = 0o666 & ~_UMASK  # what ``open(path, "w")`` gives a new file


def read_text(path: str | os.PathLike[str], *, what: str = "text file", error: type[Exception] | None = None) -> str:
    """The text of a user's file, decoded as UTF-8 (a leading UTF-8 byte-order mark is dropped).

    Refused, as one ``error`` (default ``DataError``) naming the file: a missing file or a folder; a UTF-16 or
    UTF-32 byte-order mark; bytes that are not UTF-8 (Latin-1 ``caf\\xe9``, say), named by line and byte
    offset, with how to convert the file; a NUL byte (UTF-16 without a mark, or a binary file). Guessing
    another encoding could turn a class name into a different one silently, so nothing is guessed."""
    if error is None:
        from assemblenet.errors import DataError

        error = DataError
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a folder, expected a {what}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    for mark, encoding in _OTHER_BOMS:
        if data.startswith(mark):
            raise error(f"{path}: {encoding} text (byte-order mark {mark.hex(' ')}); assemblenet reads {what}s as "
                        f"UTF-8: convert it, e.g. iconv -f {encoding} -t UTF-8")
    skipped = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    try:
        text = data[skipped:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skipped + exc.start
        line = data.count(b"\n", 0, offset) + 1
        raise error(f"{path}:{line}: byte offset {offset}: {data[offset:offset + 1]!r} is not UTF-8; assemblenet "
                    f"reads {what}s as UTF-8 and refuses other encodings (Latin-1 included): convert it, e.g. "
                    "iconv -f LATIN1 -t UTF-8") from None
    nul = text.find("\x00")
    if nul >= 0:
        offset = skipped + len(text[:nul].encode("utf-8"))
        line = text.count("\n", 0, nul) + 1
        raise error(f"{path}:{line}: byte offset {offset}: a NUL byte; a {what} holds no NUL (UTF-16 without a "
                    "byte-order mark, or not a text file?)")
    return text


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same folder and suffix, so writers that infer the format from
    the suffix still work); it replaces ``path`` when the block succeeds and is removed otherwise.

    The file gets the permissions a plain ``open(path, "w")`` would give it (0o666 less the umask), not the
    owner-only 0o600 of ``tempfile.mkstemp``, so datasets and run folders stay readable by others as usual."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(name, _FILE_MODE)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            _fsync(tmp)
        os.replace(tmp, path)
        if fsync:
            _fsync(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; when the block succeeds it replaces ``path`` (an
    existing folder there is removed first), otherwise it is removed. Readers never see a half-written folder
    under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # what mkdir gives, not mkdtemp's owner-only 0o700
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 1,
                      fsync: bool = False) -> Path:
    """``data`` as JSON (:func:`json_safe` first, so NaN is written as null) plus a newline."""
    return atomic_write_text(path, json.dumps(json_safe(data), indent=indent, allow_nan=False) + "\n", fsync=fsync)


def replace_markdown_section(path: str | os.PathLike[str], section: str) -> Path:
    """Put ``section`` (starting with its ``## Title`` line) in place of the markdown file's section of the same
    title, up to the next ``## `` heading, or append it; atomically. A missing file starts as ``# Benchmarks``."""
    path = Path(path)
    heading = section.split("\n", 1)[0]
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    return atomic_write_text(path, text.rstrip("\n") + "\n")


def save_figure(figure: Any, path: str | os.PathLike[str], **savefig_kwargs: Any) -> Path:
    """``figure.savefig`` (matplotlib), atomically; the format follows ``path``'s suffix."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, **savefig_kwargs)
    return Path(path)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> int:
    """Remove the temporaries that writers killed mid-write left in ``folder``; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.iterdir():
        if _TEMPORARY.match(entry.name):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink(missing_ok=True)
            removed += 1
    return removed


LOCK_FILE = ".assemblenet.lock"
_held_folders: dict[Path, int] = {}  # folder -> nesting depth in this process


@contextmanager
def hold_folder(folder: str | os.PathLike[str] | None, *, enabled: bool = True) -> Iterator[Path | None]:
    """Hold ``folder`` (created if missing) for the block, so that no second run writes into it meanwhile.

    The hold is an exclusive POSIX lock (``fcntl.lockf``) on ``folder/.assemblenet.lock``: the kernel drops it
    when the process ends, however it ends (kill -9 included), so it never goes stale, and forked workers
    (data loaders, process pools) do not inherit it, so they cannot keep it alive after their parent died.
    The file records who holds it, for the error another process gets:
    :class:`assemblenet.errors.FolderInUseError`, naming the folder and the holder. The holder removes the
    file at the end (and the folder, if it created it and it is empty); a killed holder leaves it
    behind, unlocked, and the next run takes it over.
    Nested holds of one folder in one process are fine. ``folder=None`` or ``enabled=False`` (processes other
    than the main one under ``torchrun``) hold nothing."""
    if folder is None or not enabled:
        yield None
        return
    folder = Path(folder).resolve()
    if folder in _held_folders:
        _held_folders[folder] += 1
        try:
            yield folder
        finally:
            _held_folders[folder] -= 1
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no OS lock to take
        yield folder
        return
    from assemblenet.errors import FolderInUseError

    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_FILE
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise FolderInUseError(f"{folder} is in use by {holder}; wait for it to end or choose another "
                                   "output folder") from None
        try:
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # a holder removed the file between our open and lock: lock the new one
    try:
        os.ftruncate(fd, 0)
        command = " ".join([os.path.basename(sys.argv[0]) or "python", *sys.argv[1:]])[:300]
        os.pwrite(fd, (f"process {os.getpid()} on {socket.gethostname()} (since "
                       f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {command})\n").encode(), 0)
        _held_folders[folder] = 1
        try:
            yield folder
        finally:
            del _held_folders[folder]
            lock_path.unlink(missing_ok=True)  # while still locked, so nobody locks a file about to vanish
            if created and not any(folder.iterdir()):
                folder.rmdir()  # a run that failed before writing anything leaves no empty folder
    finally:
        os.close(fd)  # releases the lock


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no NaN), tensor/NumPy scalars as Python numbers and
    mapping keys as strings, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return json_safe(value.item())
    return value
