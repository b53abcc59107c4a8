"""The Redis restore wizard: the guide's restore-redis.sh (RDB or JSON, flush or merge)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Checkbox, Input, RadioButton, RadioSet, Static

from jarvis_tui.formatting import count
from jarvis_tui.restore_access import RedisRestoreOptions, redis_server_address
from jarvis_tui.screens.wizard import RestoreWizard
from jarvis_tui.widgets.marked_toggles import MarkedCheckbox, MarkedRadioButton
from jarvis_tui.widgets.wizard_step import WizardStep
from jarvis_tui.widgets.wizard_steps import restore_steps


@dataclass
class RedisPlan:
    offline: bool = False
    data_dir: str = ""
    from_json: bool = False
    flush: bool = False
    replace: bool = False
    db: int | None = None


class RedisTargetStep(WizardStep):
    TITLE = "Target"

    def compose(self) -> ComposeResult:
        yield Static("Where should the keys go?", classes="step-intro")
        with RadioSet(id="redis-target"):
            yield MarkedRadioButton("The running server (REDIS_URL)", id="redis-online", value=True)
            yield MarkedRadioButton(
                "A stopped server's data folder (RDB file, offline)", id="redis-offline"
            )
        with Horizontal(classes="field"):
            yield Static("Data folder ", classes="label")
            yield Input(compact=True, placeholder="/var/lib/redis", id="redis-data-dir")

    def enter(self) -> None:
        plan = self.wizard.plan
        self.query_one(
            "#redis-online", RadioButton
        ).label = f"The running server at {redis_server_address(self.wizard.console.settings)}"
        self.query_one("#redis-online", RadioButton).value = not plan.offline
        self.query_one("#redis-offline", RadioButton).value = plan.offline
        self.query_one("#redis-data-dir", Input).value = plan.data_dir
        self._explain()
        self.query_one(RadioSet).focus()

    @on(RadioSet.Changed, "#redis-target")
    def _changed(self) -> None:
        self._explain()

    def _offline(self) -> bool:
        return self.query_one("#redis-offline", RadioButton).value

    def _explain(self) -> None:
        self.query_one("#redis-data-dir", Input).disabled = not self._offline()

    def problem(self) -> str | None:
        if self._offline() and not self.query_one("#redis-data-dir", Input).value.strip():
            return "Name the stopped server's data folder (its `dir` setting)."
        return None

    def leave(self) -> None:
        plan = self.wizard.plan
        plan.offline = self._offline()
        plan.data_dir = self.query_one("#redis-data-dir", Input).value.strip()


class RedisOptionsStep(WizardStep):
    TITLE = "Options"

    def compose(self) -> ComposeResult:
        with RadioSet(id="redis-format"):
            yield MarkedRadioButton("From the RDB snapshot", id="redis-rdb", value=True)
            yield MarkedRadioButton(
                "From the JSON export (keeps TTLs; any Redis version)", id="redis-json"
            )
        yield MarkedCheckbox(
            compact=True,
            label="Flush: empty the target databases once the backup has loaded",
            id="redis-flush",
        )
        yield MarkedCheckbox(
            compact=True,
            label="Replace keys that already exist (without flush)",
            id="redis-replace",
        )
        with Horizontal(classes="field"):
            yield Static("Only database ", classes="label")
            yield Input(
                compact=True,
                placeholder="empty: every database in the backup",
                id="redis-db",
                type="integer",
            )

    def enter(self) -> None:
        plan = self.wizard.plan
        self.query_one("#redis-rdb", RadioButton).value = not plan.from_json
        self.query_one("#redis-json", RadioButton).value = plan.from_json
        self.query_one("#redis-flush", Checkbox).value = plan.flush
        self.query_one("#redis-replace", Checkbox).value = plan.replace
        self.query_one("#redis-db", Input).value = "" if plan.db is None else str(plan.db)
        self.query_one("#redis-format", RadioSet).focus()

    def problem(self) -> str | None:
        if (
            self.query_one("#redis-flush", Checkbox).value
            and self.query_one("#redis-replace", Checkbox).value
        ):
            return "Flush empties the target first, so replace has nothing to do: pick one."
        raw = self.query_one("#redis-db", Input).value.strip()
        if raw and (not raw.isdigit() or int(raw) > 15):
            return f"Only database must be a number from 0 to 15, got {raw}."
        return None

    def leave(self) -> None:
        plan = self.wizard.plan
        plan.from_json = self.query_one("#redis-json", RadioButton).value
        plan.flush = self.query_one("#redis-flush", Checkbox).value
        plan.replace = self.query_one("#redis-replace", Checkbox).value
        raw = self.query_one("#redis-db", Input).value.strip()
        plan.db = int(raw) if raw else None


class RedisRestoreWizard(RestoreWizard):
    KIND = "redis"
    TITLE = "Restore Redis"
    PLAN = RedisPlan

    def make_steps(self) -> list[WizardStep]:
        return restore_steps(RedisTargetStep(), RedisOptionsStep())

    def target_name(self) -> str:
        if self.plan.offline:
            return self.plan.data_dir
        return redis_server_address(self.console.settings)

    def engine_options(self, dry_run: bool) -> RedisRestoreOptions:
        plan = self.plan
        return RedisRestoreOptions(
            dry_run=dry_run,
            flush=plan.flush,
            from_json=plan.from_json,
            db=plan.db,
            replace=plan.replace,
            data_dir=Path(plan.data_dir) if plan.offline else None,
        )

    def destructive(self) -> bool:
        return self.plan.flush or self.plan.replace or self.plan.offline

    def consequence(self) -> Text:
        plan = self.plan
        source = "JSON export" if plan.from_json else "RDB snapshot"
        dbs = "every database" if plan.db is None else f"database {plan.db}"
        text = Text.assemble(
            "Load ",
            (dbs, "bold"),
            f" of the {source} of ",
            (str(self.reference), "bold"),
            " into ",
            (self.target_name(), "bold"),
            ".\n",
        )
        if plan.flush:
            text.append("The target databases are emptied once the backup has loaded.\n")
        elif plan.replace:
            text.append("Keys that already exist are replaced; others are kept.\n")
        else:
            text.append("Keys that already exist are kept; the backup's copies are skipped.\n")
        return text

    def next_steps(self) -> list[str]:
        if self.outcome != "succeeded":
            return [
                "The server was left as it was (the backup loads into a scratch server first); "
                "read the job log in Jobs (3), fix the cause and run the wizard again."
            ]
        if self.plan.offline:
            return [f"Start the Redis server that uses {self.plan.data_dir}."]
        return ["Restart the services that cache in Redis, so they start from the restored keys."]

    def describe_backup(self, metadata: dict[str, Any]) -> str:
        parts = [str(metadata.get("mode") or "")]
        for key in ("keys", "key_count"):
            if isinstance(metadata.get(key), int):
                parts.append(count(metadata[key], "key"))
                break
        if metadata.get("redis_version"):
            parts.append(f"Redis {metadata['redis_version']}")
        return " · ".join(p for p in parts if p)
