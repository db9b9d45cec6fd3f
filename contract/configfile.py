"""Loading a YAML config file into a pydantic model with errors a person can act on.

Shared by edge and central so both report a bad file the same way: the file, the key path,
what was expected and what was found.
"""

from __future__ import annotations

import difflib
import types
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError

from contract.yaml_safe import (
    MAX_CONFIG_BYTES,
    MAX_SECRET_BYTES,
    FileProblem,
    read_regular_file,
    safe_load,
    short_repr,
)

M = TypeVar("M", bound=BaseModel)


def _file_name(value: Path) -> Path:
    # The OS cannot name a file with a NUL: say so at load time, not as a ValueError on first use.
    if "\x00" in str(value):
        raise ValueError("a path cannot contain a NUL character")
    return value


ConfigPath = Annotated[Path, AfterValidator(_file_name)]
"""A file or folder named in a config file."""


class ConfigError(Exception):
    """A config file that cannot be used; str() is the message to show, without a traceback."""


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _candidates(tp: Any) -> list[Any]:
    """The types a value of annotation `tp` may have: Optional, unions and Annotated taken apart."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _candidates(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [c for arg in get_args(tp) for c in _candidates(arg)]
    return [tp]


def _step(tp: Any, part: str | int) -> list[Any]:
    """The types found one key (or index) below a value of type `tp`."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if isinstance(part, str):
            for name, field in tp.model_fields.items():
                if part in (name, field.alias):
                    return _candidates(field.annotation)
            if part == tp.__name__:  # a union member's tag in the location
                return [tp]
        return []
    origin, args = get_origin(tp), get_args(tp)
    if origin in (list, set, frozenset, tuple) and args and isinstance(part, int):
        if origin is tuple and args[-1] is not Ellipsis:
            return _candidates(args[part]) if part < len(args) else []
        return _candidates(args[0])
    if origin is dict and len(args) == 2:
        return _candidates(args[1])
    return []


def valid_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys a config may have at location `loc` (the key path of the mapping) of `model`."""
    found: list[Any] = [model]
    for part in loc:
        found = [t for tp in found for t in _step(tp, part)]
    keys: set[str] = set()
    for tp in found:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            keys |= {field.alias or name for name, field in tp.model_fields.items()}
    return sorted(keys)


def _did_you_mean(model: type[BaseModel] | None, loc: tuple[str | int, ...]) -> str:
    """For an unknown key: the nearest valid key at that place, if one is near enough."""
    if model is None or not loc or not isinstance(loc[-1], str):
        return ""
    near = difflib.get_close_matches(loc[-1], valid_keys(model, loc[:-1]), n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


def format_validation_error(path: Path | str, err: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line per problem: the file, the key path, what was expected and what was found; an unknown
    key gets the nearest valid key of `model` at that place ("did you mean 'max_stop_seconds'?")."""
    lines = [f"{path}: invalid config ({err.error_count()} problem{'s' if err.error_count() != 1 else ''})"]
    for e in err.errors(include_url=False):
        # Drop pydantic's internal union/function tags from the location.
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        got = e.get("input")
        got_text = "" if e["type"] == "missing" else f" (got {_short(got)})"
        hint = _did_you_mean(model, loc) if e["type"] == "extra_forbidden" else ""
        lines.append(f"  {path}: {_key_path(loc)}: {e['msg']}{got_text}{hint}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    # Bounded: repr() of an aliased YAML value would build the whole expansion first.
    return short_repr(value, 80)


def read_yaml(path: Path | str) -> Any:
    p = Path(path)
    try:
        # Only a regular file under a size cap: a FIFO, /dev/zero or /dev/urandom fails at once.
        text = read_regular_file(p, max_bytes=MAX_CONFIG_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except FileProblem as e:
        raise ConfigError(f"{p}: cannot read config file: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read config file: {e}") from None
    except ValueError as e:  # a path no file can have, e.g. with a NUL byte
        raise ConfigError(f"{str(p)!r}: not a usable file name: {e}") from None
    try:
        # Depth and alias-expansion caps (billion laughs, 5,000-deep nesting).
        return safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{p}: not valid YAML: {where}{problem}") from None


def secret_file_problem(config: Path | str, key: str, file: Path) -> None:
    """Raise a ConfigError naming `config` and `key` unless `file` (a password or CA file the
    config names) is a regular file under MAX_SECRET_BYTES."""
    try:
        read_regular_file(file, max_bytes=MAX_SECRET_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{config}: {key}: no such file {file}") from None
    except (OSError, FileProblem) as e:
        raise ConfigError(f"{config}: {key}: cannot read {file}: {e}") from None


def load_config(path: Path | str, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of keys to values, got {type(data).__name__}")
    try:
        return model.model_validate(data, context={"config_file": Path(path), **(context or {})})
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e, model)) from None
