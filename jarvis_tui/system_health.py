"""The walkthrough's last step (the guide's `npm run health:check`), when the engine has it."""

import importlib.util

HEALTH_MODULE = "engines.health"


def health_check_available() -> bool:
    return importlib.util.find_spec(HEALTH_MODULE) is not None
