"""Rule files from disk: YAML -> :class:`rules.model.RuleFile` -> :class:`rules.ruleset.RuleSet`.

Every problem becomes one line naming the file, the line, the rule id and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rules.model import RuleFile
from rules.ruleset import RuleError, RuleSet
from sim.errors import BadInput
from sim.files.yamlio import LoadedYaml, format_loc, load_yaml, validate_loaded

__all__ = ["DEFAULT_RULES", "load_rules", "rules_from_loaded"]

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "seeds" / "rules" / "default.yaml"


def _rule_label(loaded: LoadedYaml, loc: Sequence[Any]) -> str:
    """``rules[3].condition.window`` -> ``rule 'clutter-lasting': condition.window``."""
    data = loaded.data
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(data, dict):
        rules = data.get("rules")
        if isinstance(rules, list) and 0 <= loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            rid = rules[loc[1]].get("id", f"#{loc[1] + 1}")
            rest = format_loc(loc[2:]) or "(rule)"
            return f"rule {rid!r}: {rest}"
    return format_loc(loc) or "(top level)"


def rules_from_loaded(loaded: LoadedYaml) -> RuleSet:
    try:
        spec = validate_loaded(loaded, RuleFile, label=lambda loc: _rule_label(loaded, loc))
        return RuleSet(spec)
    except RuleError as exc:
        line = loaded.line_of(exc.loc)
        where = f"{loaded.path}:{line}" if line is not None else str(loaded.path)
        raise BadInput(f"{where}: {_rule_label(loaded, exc.loc)}: {exc.message}") from None


def load_rules(path: str | Path) -> RuleSet:
    return rules_from_loaded(load_yaml(path))
