"""Reading a user's YAML file with one clear error line (which file, what is wrong)."""

from __future__ import annotations

from pathlib import Path

import yaml

from core.errors import ConfigError


def read_yaml(path: Path | str, what: str, error: type[Exception] = ConfigError) -> object:
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} are not valid YAML: {str(exc).splitlines()[0]}") from None
