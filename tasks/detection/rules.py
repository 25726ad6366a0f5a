"""Detection rules from YAML (users change thresholds and severity without code); defaults ship alongside."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from core.errors import ConfigError
from core.yaml_file import read_yaml

LEVELS = ("critical", "high", "medium", "low")


@dataclass
class SeverityRule:
    name: str
    level: str
    kinds: set[str] | None = None
    min_count: int = 0
    min_ratio: float = 0.0
    min_apps: int = 0
    error_type: re.Pattern | None = None
    template: re.Pattern | None = None

    def matches(self, *, kind: str, count: int, ratio: float, apps: int, error_type: str | None, text: str) -> bool:
        if self.kinds is not None and kind not in self.kinds:
            return False
        if count < self.min_count or ratio < self.min_ratio or apps < self.min_apps:
            return False
        if self.error_type is not None and not self.error_type.search(error_type or ""):
            return False
        return self.template is None or bool(self.template.search(text))


@dataclass
class DetectionRules:
    thresholds: dict[str, float] = field(default_factory=dict)
    alerting: dict[str, float] = field(default_factory=dict)
    severity: list[SeverityRule] = field(default_factory=list)

    def t(self, name: str) -> float:
        return self.thresholds[name]

    def serious_min_count(self, error_type: str | None, text: str) -> int | None:
        """For errors a critical rule names by type or text (OOM, exhausted pools): the count that matters,
        so a handful of them is a peak even when it is far below the usual spike thresholds."""
        for rule in self.severity:
            if rule.level != "critical" or (rule.error_type is None and rule.template is None):
                continue
            if rule.error_type is not None and not rule.error_type.search(error_type or ""):
                continue
            if rule.template is not None and not rule.template.search(text):
                continue
            return max(rule.min_count, 1)
        return None

    def classify(self, **facts) -> tuple[str, str]:
        """(level, rule name) of the first matching severity rule."""
        for rule in self.severity:
            if rule.matches(**facts):
                return rule.level, rule.name
        return "low", "default"


def _parse(data: dict, origin: str, base: DetectionRules | None = None) -> DetectionRules:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping with thresholds/alerting/severity")
    unknown = set(data) - {"thresholds", "alerting", "severity"}
    if unknown:
        raise ConfigError(f"{origin}: unknown section(s) {', '.join(sorted(unknown))}")
    rules = DetectionRules(dict(base.thresholds) if base else {}, dict(base.alerting) if base else {},
                           list(base.severity) if base else [])
    for section in ("thresholds", "alerting"):
        values = data.get(section) or {}
        target = getattr(rules, section)
        for key, value in values.items():
            if base is not None and key not in target:
                raise ConfigError(f"{origin}: unknown {section} setting {key!r}")
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"{origin}: {section}.{key} must be a number")
            target[key] = float(value)
    if "severity" in data:
        rules.severity = []
        for i, item in enumerate(data["severity"] or [], 1):
            where = f"{origin}: severity rule {i}"
            if not isinstance(item, dict) or item.get("level") not in LEVELS:
                raise ConfigError(f"{where}: needs level: one of {', '.join(LEVELS)}")
            try:
                rules.severity.append(SeverityRule(
                    name=str(item.get("name", f"rule {i}")), level=item["level"],
                    kinds=set(item["kinds"]) if item.get("kinds") else None,
                    min_count=int(item.get("min_count", 0)), min_ratio=float(item.get("min_ratio", 0)),
                    min_apps=int(item.get("min_apps", 0)),
                    error_type=re.compile(item["error_type"]) if item.get("error_type") else None,
                    template=re.compile(item["template"]) if item.get("template") else None))
            except (re.error, ValueError, TypeError) as exc:
                raise ConfigError(f"{where}: {exc}") from None
    return rules


def default_rules() -> DetectionRules:
    text = resources.files("tasks.detection").joinpath("default_rules.yaml").read_text()
    return _parse(yaml.safe_load(text), "default detection rules")


def load_detection_rules(path: Path | str | None) -> DetectionRules:
    """Defaults, overridden by the user's file (only the keys it sets; `severity` replaces the list)."""
    base = default_rules()
    if path is None:
        return base
    return _parse(read_yaml(path, "detection rules") or {}, str(path), base)
