"""Builds the optional C++ CPU extension (mlx_lfm2/kernels/cpu_ext); pyproject.toml has the rest.

Without a C++ compiler or CMake the build is skipped with a warning and the package installs
with MLX's own kernels. MLX_LFM2_REQUIRE_EXTENSION=1 makes a failed build an error instead.
"""

import os
import sys

from setuptools import setup

REQUIRED = os.environ.get("MLX_LFM2_REQUIRE_EXTENSION") == "1"


def skipped(reason: str) -> None:
    if REQUIRED:
        raise SystemExit(f"mlx_lfm2's CPU extension is required but {reason}")
    print(f"warning: mlx_lfm2's CPU extension was not built ({reason}); MLX's own kernels will run. "
          "`mlx_lfm2.info` tells which are active.", file=sys.stderr)


def extension_build():
    """The extension and its optional build step, or nothing when MLX is not importable (a build
    without isolation; pip's isolated build installs the pinned MLX first)."""
    try:
        from mlx.extension import CMakeBuild, CMakeExtension
    except ImportError as error:
        skipped(f"MLX is not importable at build time: {error}")
        return {}

    class OptionalCMakeBuild(CMakeBuild):
        def run(self) -> None:
            try:
                super().run()
            except Exception as error:  # noqa: BLE001  any build failure leaves the pure-MLX package
                if REQUIRED:
                    raise
                skipped(str(error))

    return {
        "ext_modules": [CMakeExtension("mlx_lfm2._cpu_ext", sourcedir="mlx_lfm2/kernels/cpu_ext")],
        "cmdclass": {"build_ext": OptionalCMakeBuild},
    }


setup(**extension_build())
