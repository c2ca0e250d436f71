"""Which code produced a result: the git commit of the source tree, whether the tree had uncommitted changes, and
a hash of those changes. Every study and search record stores :func:`code_provenance`; a study refuses to start
from a tree with uncommitted changes unless told to (``search-study --allow-dirty``).

"Dirty" means a tracked file differs from the commit (``git status --porcelain --untracked-files=no``): untracked
and ignored files (``runs/``, ``data/``, a user's notes) never count, since they are not code the commit names.
The diff hash is the sha256 of ``git diff HEAD --binary``, so two results from the same dirty tree can be told to
share their code. Without git, or outside a repository (an installed wheel), every field is "unknown"; nothing here
raises.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import time
from pathlib import Path
from typing import Any

UNKNOWN = "unknown"
_GIT_TIMEOUT_S = 20


def _git(root: Path, *args: str) -> bytes | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=_GIT_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_provenance(root: str | Path) -> dict[str, Any]:
    """``{"commit", "dirty", "diff_sha256", "root"}`` of the git work tree containing ``root``: ``dirty`` is True
    when a tracked file has uncommitted changes (staged or not), and then ``diff_sha256`` hashes
    ``git diff HEAD --binary`` (None when clean). Every field is ``"unknown"`` without git or a repository."""
    root = Path(root)
    top = _git(root, "rev-parse", "--show-toplevel")
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if top is None or commit is None or status is None:
        return {"commit": UNKNOWN, "dirty": UNKNOWN, "diff_sha256": UNKNOWN, "root": UNKNOWN}
    dirty = bool(status.strip())
    diff = _git(root, "diff", "HEAD", "--binary") if dirty else None
    return {"commit": commit.decode().strip(), "dirty": dirty,
            "diff_sha256": (hashlib.sha256(diff).hexdigest() if diff is not None else UNKNOWN) if dirty else None,
            "root": top.decode().strip()}


def package_root() -> Path:
    """The folder of the ``assemblenet`` package: its git work tree is the code that runs."""
    return Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def _cached(root: str) -> tuple[tuple[str, Any], ...]:
    return tuple(git_provenance(root).items())


def code_provenance(root: str | Path | None = None) -> dict[str, Any]:
    """:func:`git_provenance` of the running code (``root``: default the package's folder), computed once per
    process: the modules a process imported are the tree as it was then, so a later look would be less true.
    ``recorded_at`` is when it was asked for."""
    return {**dict(_cached(str(root if root is not None else package_root()))), "recorded_at": time.time()}


def is_dirty(provenance: dict[str, Any]) -> bool:
    return provenance.get("dirty") is True


def describe(provenance: dict[str, Any]) -> str:
    """One line for reports: ``commit 57675da`` with ``, uncommitted changes (diff sha256 1a2b3c4d5e6f)`` when dirty,
    or ``commit unknown (no git repository)``."""
    commit = provenance.get("commit", UNKNOWN)
    if commit == UNKNOWN:
        return "commit unknown (no git repository)"
    text = f"commit {commit[:12]}"
    if is_dirty(provenance):
        digest = provenance.get("diff_sha256") or UNKNOWN
        text += f", uncommitted changes (diff sha256 {digest[:12]})"
    return text
