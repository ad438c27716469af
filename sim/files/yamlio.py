"""YAML in, one-line errors out: load a file remembering where every key and item sits.

Validation errors from pydantic carry a location path (``grids.0.estates.3.company``); with the line
table kept here they become ``seeds/x.yaml:42: grids[0].estates[3].company: <problem>``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sim.errors import BadInput

__all__ = ["LoadedYaml", "format_loc", "load_yaml", "validate_file", "validate_loaded"]

M = TypeVar("M", bound=BaseModel)
Loc = Sequence[int | str]


class _MarkingLoader(yaml.SafeLoader):
    """SafeLoader that records the line of each mapping key and sequence item."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[tuple[int, Hashable], int] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=True)
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable):
                self.lines[(id(mapping), key)] = key_node.start_mark.line + 1
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        seq = super().construct_sequence(node, deep=True)
        for i, item in enumerate(node.value):
            self.lines[(id(seq), i)] = item.start_mark.line + 1
        return seq


_MarkingLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _MarkingLoader.construct_mapping
)
_MarkingLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _MarkingLoader.construct_sequence
)


class LoadedYaml:
    """The parsed data of one file plus the line of each key and item."""

    def __init__(self, path: Path, data: Any, lines: dict[tuple[int, Hashable], int]) -> None:
        self.path = path
        self.data = data
        self._lines = lines

    def line_of(self, loc: Loc) -> int | None:
        """The line of the deepest part of ``loc`` that exists in the file."""
        node: Any = self.data
        line: int | None = None
        for part in loc:
            if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            ):
                line = self._lines.get((id(node), part), line)
                node = node[part]  # type: ignore[index]
            else:
                break
        return line

    def error(self, loc: Loc, problem: str, label: Callable[[Loc], str] | None = None) -> BadInput:
        line = self.line_of(loc)
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        field = label(loc) if label is not None else (format_loc(loc) or "(top level)")
        return BadInput(f"{where}: {field}: {problem}")


def format_loc(loc: Loc) -> str:
    """``("grids", 0, "estates", 3)`` -> ``grids[0].estates[3]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_yaml(path: str | Path) -> LoadedYaml:
    """Read and parse; a missing file or a syntax error is a :class:`BadInput` with its line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{p}: cannot read: {exc}") from None
    loader = _MarkingLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise BadInput(f"{p}{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{p}: YAML error: {exc}") from None
    finally:
        loader.dispose()
    return LoadedYaml(p, data, loader.lines)


def validate_loaded(
    loaded: LoadedYaml, model: type[M], label: Callable[[Loc], str] | None = None
) -> M:
    """Validate parsed data against ``model``; the first error becomes one line."""
    if not isinstance(loaded.data, dict):
        raise BadInput(f"{loaded.path}: expected a mapping at the top level")
    try:
        return model.model_validate(loaded.data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = _clean_loc(loaded.data, err["loc"])
        problem = err["msg"]
        if err["type"] == "extra_forbidden":
            problem = f"unknown key {loc[-1]!r}" if loc else "unknown key"
        raise loaded.error(loc, problem, label) from None


def _clean_loc(data: Any, loc: Sequence[int | str]) -> list[int | str]:
    """Drop what pydantic adds that is not in the file: union tags such as ``repeat`` in
    ``condition.repeat.within``."""
    out: list[int | str] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part not in node and i + 1 < len(loc) and loc[i + 1] in node:
            continue
        out.append(part)
        node = _child(node, part)
    return out


def _child(node: Any, part: int | str) -> Any:
    """``node[part]`` when the file has it, else None."""
    if (isinstance(node, dict) and part in node) or (
        isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
    ):
        return node[part]  # type: ignore[index]
    return None


def validate_file(path: str | Path, model: type[M]) -> M:
    return validate_loaded(load_yaml(path), model)
