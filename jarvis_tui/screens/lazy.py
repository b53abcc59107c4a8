"""The panes after the dashboard, imported when first shown: a faster first paint."""

from textual.screen import Screen


def catalog_screen() -> Screen:
    from jarvis_tui.screens.catalog import CatalogScreen

    return CatalogScreen()


def jobs_screen() -> Screen:
    from jarvis_tui.screens.jobs import JobsScreen

    return JobsScreen()


def alerts_screen() -> Screen:
    from jarvis_tui.screens.alerts import AlertsScreen

    return AlertsScreen()


def settings_screen() -> Screen:
    from jarvis_tui.screens.settings import SettingsScreen

    return SettingsScreen()
