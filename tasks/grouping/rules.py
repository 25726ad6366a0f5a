"""User fingerprint rules (YAML, not code) to split or merge problems.

```yaml
rules:
  - match: {message_regex: "Connection (refused|reset)", app: "payments-.*"}   # all conditions must hold
    fingerprint: ["payments-connectivity"]            # merge: every match is one problem
    name: "Payments cannot reach a dependency"        # optional title/template shown in reports
  - match: {error_type: "java.lang.OutOfMemoryError"}
    fingerprint: ["{{ default }}", "{{ app }}"]       # split: the default grouping, once per application
```
Conditions (regular expressions, full match for `app`, search for the others): `message_regex`, `error_type`,
`app`, `namespace`. Fingerprint parts: literals, `{{ default }}`, `{{ app }}`, `{{ error_type }}`,
`{{ namespace }}`, `{{ version }}`. The first matching rule wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError
from core.yaml_file import read_yaml

CONDITIONS = ("message_regex", "error_type", "app", "namespace")
VARIABLES = {"{{ app }}": "app", "{{ error_type }}": "error_type", "{{ namespace }}": "namespace",
             "{{ version }}": "version"}
DEFAULT = "{{ default }}"


@dataclass
class Rule:
    conditions: dict[str, re.Pattern]
    fingerprint: list[str]
    name: str | None = None

    def matches(self, event, error_type: str | None) -> bool:
        for key, pattern in self.conditions.items():
            if key == "message_regex":
                if not pattern.search(event.message):
                    return False
            elif key == "error_type":
                if not pattern.search(error_type or event.error_type or ""):
                    return False
            elif not pattern.fullmatch(getattr(event, key) or ""):
                return False
        return True


@dataclass
class FingerprintRules:
    rules: list[Rule] = field(default_factory=list)

    def match(self, event, error_type: str | None) -> Rule | None:
        for rule in self.rules:
            if rule.matches(event, error_type):
                return rule
        return None


def parse_rules(data: object, origin: str = "fingerprint rules") -> FingerprintRules:
    if data is None:
        return FingerprintRules()
    items = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConfigError(f"{origin}: expected a list under `rules:`")
    rules = []
    for i, item in enumerate(items, 1):
        where = f"{origin}, rule {i}"
        if not isinstance(item, dict) or "match" not in item or "fingerprint" not in item:
            raise ConfigError(f"{where}: each rule needs `match:` and `fingerprint:`")
        match = item["match"]
        if not isinstance(match, dict) or not match:
            raise ConfigError(f"{where}: `match:` must map conditions ({', '.join(CONDITIONS)}) to regexes")
        conditions = {}
        for key, value in match.items():
            if key not in CONDITIONS:
                raise ConfigError(f"{where}: unknown condition {key!r}; use {', '.join(CONDITIONS)}")
            try:
                conditions[key] = re.compile(str(value))
            except re.error as exc:
                raise ConfigError(f"{where}: bad regular expression for {key}: {exc}") from None
        fp = item["fingerprint"]
        if isinstance(fp, str):
            fp = [fp]
        if not isinstance(fp, list) or not fp or not all(isinstance(p, str) for p in fp):
            raise ConfigError(f"{where}: `fingerprint:` must be a non-empty list of strings")
        rules.append(Rule(conditions=conditions, fingerprint=fp, name=item.get("name")))
    return FingerprintRules(rules)


def load_fingerprint_rules(path: Path | str) -> FingerprintRules:
    return parse_rules(read_yaml(path, "fingerprint rules"), str(path))
