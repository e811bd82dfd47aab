"""Builds the optional C++ CPU extension (mlx_lfm2/kernels/cpu_ext); pyproject.toml has the rest.

Without a C++ compiler or CMake the build is skipped with a warning and the package installs
with MLX's own kernels. MLX_LFM2_REQUIRE_EXTENSION=1 makes a failed build an error instead.
"""

import os
import sys

from mlx.extension import CMakeBuild, CMakeExtension
from setuptools import setup


class OptionalCMakeBuild(CMakeBuild):
    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # noqa: BLE001  any build failure leaves the pure-MLX package
            if os.environ.get("MLX_LFM2_REQUIRE_EXTENSION") == "1":
                raise
            print(f"warning: mlx_lfm2's CPU extension was not built ({error}); "
                  "MLX's own kernels will run. `python -m mlx_lfm2 --info` tells which are active.", file=sys.stderr)


setup(
    ext_modules=[CMakeExtension("mlx_lfm2._cpu_ext", sourcedir="mlx_lfm2/kernels/cpu_ext")],
    cmdclass={"build_ext": OptionalCMakeBuild},
)
