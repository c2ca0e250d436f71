"""Builds the optional fused representation-flow kernel; everything else is in pyproject.toml.

The kernel is plain C++ (no libtorch headers), so it needs only a C++ compiler. ``optional=True``: without a
compiler the install still succeeds and the layer computes with PyTorch ops instead.
"""

import sys

from setuptools import Extension, setup

if sys.platform == "win32":
    compile_args = ["/O2", "/std:c++17", "/fp:precise"]
    link_args = []
else:
    # No FMA contraction: the kernel then rounds exactly like the PyTorch reference. The sqrt argument is
    # always positive, so dropping errno only lets it vectorise.
    compile_args = ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno", "-pthread"]
    link_args = ["-pthread"]

setup(
    ext_modules=[
        Extension(
            "assemblenet.models._rep_flow_kernel",
            sources=["src/assemblenet/models/_rep_flow_kernel.cpp"],
            language="c++",
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            optional=True,
        )
    ]
)
