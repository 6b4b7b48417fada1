"""Build of the optional C relay loop; everything else is in pyproject.toml.

``optional=True``: without a C compiler the package still installs and the
engine runs the same relay in Python (sipspeak/media/fastpath.py), slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sipspeak.media._rtpfast",
            sources=["sipspeak/media/_rtpfast.c"],
            extra_compile_args=[
                "-O2",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
                "-Wno-missing-field-initializers",
                "-Wno-cast-function-type",
            ],
            optional=True,
        )
    ]
)
