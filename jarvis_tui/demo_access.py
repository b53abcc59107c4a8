"""The console's door to the demo platform (engines/demo): whether to offer it on the
first start, and starting it off the UI thread with the settings it writes read back."""

from dataclasses import dataclass

from engines.config import Settings
from engines.demo.first_start import nothing_to_back_up
from engines.demo.platform import DemoPlatform, Progress, start_demo
from engines.demo.settings_file import clear_overrides
from engines.plumbing.paths import default_demo_dir
from engines.settings_check import SettingsCheck
from jarvis_tui.engine_access import check_settings

__all__ = ["DemoReady", "default_demo_dir", "demo_wanted", "start_demo_platform"]


def demo_wanted(settings: Settings) -> bool:
    """Settings that load as written and name nothing that could be backed up."""
    return not settings.problems and nothing_to_back_up(settings)


@dataclass(frozen=True)
class DemoReady:
    platform: DemoPlatform
    check: SettingsCheck  # its settings, read as a reload reads them


def start_demo_platform(progress: Progress) -> DemoReady:
    """Start (or find running) the demo in its default folder; its settings then win over
    this process's environment, for the console and the jobs it starts alike."""
    platform = start_demo(None, progress)
    clear_overrides()
    return DemoReady(platform, check_settings(platform.env_file))
