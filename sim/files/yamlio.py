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

__all__ = [
    "LoadedYaml",
    "format_loc",
    "load_yaml",
    "validate_file",
    "validate_loaded",
    "yaml_data",
]

M = TypeVar("M", bound=BaseModel)
Loc = Sequence[int | str]


#: Deepest nesting of mappings and sequences accepted (a scenario needs about eight).
MAX_DEPTH = 64
#: Largest file read, in bytes (a generated city of 20,000 estates is about 7.5 MB).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Most values a file may hold once its aliases are expanded (``*anchor`` repeats a whole part).
MAX_NODES = 20_000_000


class _Problem(Exception):
    """A value the file cannot mean (a bad date, a duplicate key...): its line and, filled in on the
    way out, the keys and indexes that lead to it."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem
        self.loc: list[int | str] = []


class _MarkingLoader(yaml.SafeLoader):
    """SafeLoader that records the line of each mapping key and sequence item, refuses duplicate
    keys, nesting deeper than :data:`MAX_DEPTH` and values Python cannot hold."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[tuple[int, Hashable], int] = {}
        self._depth = 0
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
                raise _Problem(line, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=True)
        own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        self.flatten_mapping(node)  # ``<<: *base`` first; the mapping's own keys override it
        merged = len(node.value) - own
        mapping: dict[Any, Any] = {}
        first: dict[Any, int] = {}
        for i, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, Hashable):
                raise _Problem(line, "a key must be a plain value, not a list or a mapping")
            if i >= merged and key in first:
                problem = _Problem(line, f"duplicate key (first at line {first[key]})")
                problem.loc.append(key if isinstance(key, int | str) else str(key))
                raise problem
            if i >= merged:
                first[key] = line
            try:
                mapping[key] = self.construct_object(value_node, deep=True)
            except _Problem as exc:
                exc.loc.insert(0, key if isinstance(key, int | str) else str(key))
                raise
            self.lines[(id(mapping), key)] = line
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        if not isinstance(node, yaml.SequenceNode):
            return super().construct_sequence(node, deep=True)
        seq: list[Any] = []
        for i, item in enumerate(node.value):
            try:
                seq.append(self.construct_object(item, deep=True))
            except _Problem as exc:
                exc.loc.insert(0, i)
                raise
            self.lines[(id(seq), i)] = item.start_mark.line + 1
        return seq

    def construct_int(self, node: yaml.ScalarNode) -> int:
        try:
            value: int = self.construct_yaml_int(node)
        except ValueError:
            digits = sum(c.isdigit() for c in str(node.value))
            raise _Problem(node.start_mark.line + 1, f"number too long ({digits} digits)") from None
        return value

    def construct_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return self.construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise _Problem(
                node.start_mark.line + 1, f"not a date: {str(node.value)[:40]!r} ({exc})"
            ) from None


_MarkingLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _MarkingLoader.construct_mapping
)
_MarkingLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _MarkingLoader.construct_sequence
)
_MarkingLoader.add_constructor("tag:yaml.org,2002:int", _MarkingLoader.construct_int)
_MarkingLoader.add_constructor("tag:yaml.org,2002:timestamp", _MarkingLoader.construct_timestamp)


def _expanded_size(root: yaml.Node) -> int:
    """How many values ``root`` stands for once aliases are expanded (counting stops past
    :data:`MAX_NODES`): a few anchors nested ten deep can stand for billions."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes.get(id(c), 0) for c in children))
    return sizes[id(root)]


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
    """Read and parse; a missing file, a syntax error, a duplicate key, a value that cannot be
    (``2026-02-30``), nesting too deep or a file too large is a :class:`BadInput` with its line."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise BadInput(f"{p}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise BadInput(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{p}: cannot read: {exc}") from None
    loader = _MarkingLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and loader.aliases and _expanded_size(node) > MAX_NODES:
            raise BadInput(f"{p}: aliases expand to more than {MAX_NODES:,} values")
        data = loader.construct_document(node) if node is not None else None
    except _Problem as exc:
        field = f" {format_loc(exc.loc)}:" if exc.loc else ""
        raise BadInput(f"{p}:{exc.line}:{field} {exc.problem}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise BadInput(f"{p}{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{p}: YAML error: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # a backstop: nesting is refused well before the stack runs out
        raise BadInput(f"{p}: nested too deep") from None
    finally:
        loader.dispose()
    return LoadedYaml(p, data, loader.lines)


def yaml_data(path: Path) -> Any:
    """The data of a YAML file pmsim wrote itself (checked as strictly as any other file);
    ``FileNotFoundError`` when it is missing, for the caller to say what that means."""
    if not path.is_file():
        raise FileNotFoundError(path)
    return load_yaml(path).data


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
