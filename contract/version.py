"""The one version of the project (pyproject.toml reads it; `ioc-edge --version`, `ioc-central --version`)."""

__version__ = "0.2.0.dev0"


def program(module: str, script: str) -> str:
    """The name a CLI was started by, for its usage line: `python -m edge` or `ioc-edge`."""
    import sys

    return f"python -m {module}" if not sys.argv or sys.argv[0].endswith("__main__.py") else script
