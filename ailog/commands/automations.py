"""`ailog automations`: the Prefect automations that alert Teams on the jobs themselves (idempotent)."""

from __future__ import annotations

from ailog.commands._prefect_env import prepare_prefect_env
from core.errors import ConfigError


def run(args) -> int:
    prepare_prefect_env()
    from prefect.blocks.webhook import Webhook
    from pydantic import SecretStr

    from ailog.ops.automations import apply_automations
    from blocks.settings import load_settings

    try:
        block = Webhook.load(args.webhook_block)
    except ValueError:
        teams = load_settings(use_blocks=False).teams
        if teams.webhook_url is None:
            raise ConfigError(f"no Prefect Webhook block {args.webhook_block!r} and no TEAMS_WEBHOOK_URL to create "
                              "it from") from None
        Webhook(method="POST", url=SecretStr(teams.webhook_url.get_secret_value())).save(args.webhook_block,
                                                                                      overwrite=True)
        block = Webhook.load(args.webhook_block)
    for line in apply_automations(block._block_document_id):
        print(line)
    return 0
