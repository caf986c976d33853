"""Build: the Cython preprocessing kernel and the protobuf/gRPC modules.

The .proto files live under the path their Python modules are imported from
(protos/roiclass/v1 -> roiclass.v1); build_py generates *_pb2.py, *_pb2.pyi
and *_pb2_grpc.py next to them, as grpcio's own packages do.
"""
import os
import platform
import sys
import sysconfig
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Command, Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE / "protos"


class GenerateProtos(Command):
    """Generate Python protobuf + gRPC modules (with .pyi) from protos/."""

    description = "generate roiclass.v1 and roiclass.inference from protos/"
    user_options = []

    def initialize_options(self):
        pass

    def finalize_options(self):
        pass

    def run(self):
        import google.rpc  # googleapis-common-protos ships google/rpc/*.proto
        import grpc_tools
        from grpc_tools import protoc

        well_known = Path(grpc_tools.__file__).parent / "_proto"
        googleapis = Path(list(google.rpc.__path__)[0]).parent.parent
        protos = sorted(PROTO_ROOT.rglob("*.proto"))
        for proto in protos:
            args = [
                "grpc_tools.protoc",
                f"-I{PROTO_ROOT}",
                f"-I{googleapis}",
                f"-I{well_known}",
                f"--python_out={PROTO_ROOT}",
                f"--pyi_out={PROTO_ROOT}",
                f"--grpc_python_out={PROTO_ROOT}",
                str(proto.relative_to(PROTO_ROOT)),
            ]
            if protoc.main(args) != 0:
                raise RuntimeError(f"protoc failed on {proto}")


class BuildPy(build_py):
    def run(self):
        self.run_command("generate_protos")
        super().run()


def _openmp_flags():
    if os.environ.get("ROICLASS_NO_OPENMP") or sys.platform == "darwin":
        return [], []
    if sysconfig.get_platform().startswith("win"):
        return ["/openmp"], []
    return ["-fopenmp"], ["-fopenmp"]


def _x86_64():
    return platform.machine().lower() in ("x86_64", "amd64") and not sysconfig.get_platform().startswith("win")


def extensions():
    """The kernel, built for x86-64-v2 (SSE4.1: every x86-64 CPU since 2009,
    NumPy 2's own baseline) and, on x86-64, once more for x86-64-v3 (AVX2 +
    FMA); roiclass.ext picks the v3 build where the CPU has it.
    ROICLASS_ISA=baseline builds one plain module for the compiler's default."""
    compile_omp, link_omp = _openmp_flags()
    # -g0: Python's CFLAGS add -g, which made each module ~3 MB of debug info;
    # function symbols stay (perf, py-spy --native); the ASan build keeps -g.
    flags = ["-O3", "-g0", "-ffast-math", "-fno-finite-math-only"]
    builds = {"_preprocess": []}
    if _x86_64() and os.environ.get("ROICLASS_ISA") != "baseline":
        # explicit -m flags rather than -march=x86-64-v2/-v3 (GCC >= 11 only),
        # and for v3 exactly the features roiclass.ext checks at import
        v2 = ["-msse4.2", "-mpopcnt"]
        builds = {"_preprocess": v2, "_preprocess_avx2": v2 + ["-mavx2", "-mfma"]}
    sanitize = os.environ.get("ROICLASS_SANITIZE")
    if sanitize:  # e.g. ROICLASS_SANITIZE=address, see ext/README.md
        flags = ["-O1", "-g", f"-fsanitize={sanitize}", "-fno-omit-frame-pointer"]
        link_omp = link_omp + [f"-fsanitize={sanitize}"]
    exts = [
        Extension(
            f"roiclass.ext.{name}",
            sources=[f"ext/{name}.pyx"],
            depends=[str(p.relative_to(HERE)) for p in sorted((HERE / "ext").glob("*.h"))],
            include_dirs=[numpy.get_include(), "ext"],
            extra_compile_args=flags + isa + compile_omp,
            extra_link_args=link_omp,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for name, isa in builds.items()
    ]
    return cythonize(
        exts,
        compile_time_env={"HAVE_OPENMP": bool(compile_omp)},
        # the kernel's .pxd files (cimported as top-level _interp, _kernel, ...)
        include_path=[str(HERE / "ext")],
        compiler_directives={"language_level": 3},
    )


# Each built-in model folder is a data-only package of roiclass.models.
MODEL_PACKAGES = sorted(
    f"roiclass.models.{d.name}" for d in (HERE / "models").iterdir() if d.is_dir() and d.name.isidentifier()
)
MODEL_FILES = ["*.toml", "*.txt", "*.png", "*.jpg", "*.md", "*/*.onnx"]


def subpackages(package: str, folder: str) -> list[str]:
    """`package` and every folder with an __init__.py below `folder`, so a new
    subpackage (server/engine, server/interceptors, ...) ships in the wheel."""
    root = HERE / folder
    return [package] + sorted(
        ".".join((package, *d.relative_to(root).parts)) for d in root.rglob("*")
        if d.is_dir() and (d / "__init__.py").is_file()
    )


setup(
    package_dir={
        "roiclass.v1": "protos/roiclass/v1",
        "roiclass.inference": "protos/roiclass/inference",
        "roiclass.server": "server",
        "roiclass.client": "client",
        "roiclass.geo": "geo",
        "roiclass.ext": "ext",
        "roiclass.models": "models",
    },
    packages=[
        "roiclass.v1",
        "roiclass.inference",
        *subpackages("roiclass.server", "server"),
        *subpackages("roiclass.client", "client"),
        *subpackages("roiclass.geo", "geo"),
        "roiclass.ext",
        "roiclass.models",
        *MODEL_PACKAGES,
    ],
    package_data={
        "roiclass.v1": ["*.proto", "*.pyi"],
        "roiclass.inference": ["*.proto", "*.pyi"],
        "roiclass.ext": ["*.pxd", "*.pyx", "*.h"],
        **{pkg: MODEL_FILES for pkg in MODEL_PACKAGES},
    },
    exclude_package_data={"roiclass.ext": ["*.c", "*.html"]},
    ext_modules=extensions(),
    cmdclass={"generate_protos": GenerateProtos, "build_py": BuildPy},
    zip_safe=False,
)
