"""runtime: the worker pool every package starts processes with."""

from __future__ import annotations

import os

from assemblenet.runtime import process_pool

SET_BY_THE_PARENT = "as imported"


def _child_view() -> tuple[int, str]:
    return os.getpid(), SET_BY_THE_PARENT


def test_process_pool_workers_start_fresh_instead_of_forking_the_parent() -> None:
    # A forked child would inherit the parent's memory, locks held by its threads included; a spawned one
    # imports this module afresh and sees the value as written in the file, not as the parent changed it.
    global SET_BY_THE_PARENT
    SET_BY_THE_PARENT = "changed in the parent"
    try:
        with process_pool(1) as pool:
            pid, seen = pool.submit(_child_view).result(timeout=120)
    finally:
        SET_BY_THE_PARENT = "as imported"
    assert pid != os.getpid()
    assert seen == "as imported"


def test_cpu_identity_keeps_family_and_model_of_the_first_processor() -> None:
    from assemblenet.runtime import cpu_identity, machine_info

    text = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n"
            "flags\t\t: fpu avx2 avx512f\n\nprocessor\t: 1\ncpu family\t: 25\nmodel\t\t: 17\n"
            "model name\t: Other\nflags\t\t: fpu\n")
    identity = cpu_identity(text)
    assert (identity["model_name"], identity["family"], identity["model"]) == ("AMD EPYC", 26, 2)
    assert identity["flags"] == {"fpu", "avx2", "avx512f"}
    assert cpu_identity("")["family"] is None
    info = machine_info()
    assert info["signature"].startswith(info["cpu"])
