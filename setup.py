"""Build the C++ core (qwen_edge._core) and map export/ to qwen_edge.export.

The core is compiled for a portable baseline (x86-64 / armv8-a); wider SIMD paths are
selected at run time inside csrc/, so a wheel built here runs on any CPU of the family.
"""

from __future__ import annotations

from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import find_namespace_packages, setup

ext_modules = [
    Pybind11Extension(
        "qwen_edge._core",
        sorted(str(p) for p in Path("csrc").glob("*.cpp")),
        cxx_std=17,
        extra_compile_args=["-O3", "-fno-math-errno", "-pthread"],
        extra_link_args=["-pthread"],  # huge_pages.cpp's thread (glibc < 2.34 splits it out)
        define_macros=[("QWEN_EDGE_VERSION", '"0.1.0"')],
    )
]

setup(
    ext_modules=ext_modules,
    cmdclass={"build_ext": build_ext},
    # The runtime (qwen_edge/, every subfolder, data folders included) plus the exporter,
    # whose source lives in export/ at the top level.
    packages=[
        *find_namespace_packages(include=["qwen_edge", "qwen_edge.*"],
                                 exclude=["*.__pycache__"]),
        "qwen_edge.export",
        "qwen_edge.export.passes",
    ],
    package_dir={"qwen_edge.export": "export", "qwen_edge.export.passes": "export/passes"},
    # models/qwen-edge-tiny: the demo model shipped with the wheel (qwen_edge.load_default)
    package_data={"qwen_edge": ["py.typed", "_core.pyi", "models/qwen-edge-tiny/*"],
                  "qwen_edge.templates": ["*.jinja"],
                  "qwen_edge.server": ["static/*.html"]},
)
