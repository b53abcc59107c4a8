"""The slow-down of an address that keeps sending wrong tokens, on a fixed clock."""

import time

from jarvis_tui.api.auth import FIRST_DELAY_S, FREE_FAILURES, MAX_DELAY_S, WINDOW_S, FailureThrottle
from tests.support.api_server import ApiServer
from tests.support.files_env import make_files_env


class FixedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_delay_doubles_after_the_free_failures_up_to_its_cap() -> None:
    clock = FixedClock()
    throttle = FailureThrottle(clock=clock)
    delays = []
    for _ in range(FREE_FAILURES + 8):
        delays.append(throttle.delay_for("10.0.0.1"))
        throttle.failed("10.0.0.1")
    assert delays[:FREE_FAILURES] == [0.0] * FREE_FAILURES
    assert delays[FREE_FAILURES] == FIRST_DELAY_S
    assert delays[FREE_FAILURES + 1] == FIRST_DELAY_S * 2
    assert delays[-1] == MAX_DELAY_S
    assert throttle.delay_for("10.0.0.2") == 0.0  # another address is not slowed


def test_success_or_a_quiet_window_forgives() -> None:
    clock = FixedClock()
    throttle = FailureThrottle(clock=clock)
    for _ in range(FREE_FAILURES + 3):
        throttle.failed("a")
        throttle.failed("b")
    throttle.succeeded("a")
    assert throttle.delay_for("a") == 0.0
    assert throttle.delay_for("b") > 0
    clock.now += WINDOW_S + 1
    assert throttle.delay_for("b") == 0.0


def test_a_real_server_slows_a_guessing_address(tmp_path) -> None:
    env = make_files_env(tmp_path)
    env.set(JARVIS_API_TOKEN="t" * 40)
    with ApiServer(env.env_file) as server, server.client(token="g" * 40) as guesser:
        for _ in range(FREE_FAILURES):
            assert guesser.get("/api/openapi.json").status_code == 401
        started = time.monotonic()
        assert guesser.get("/api/openapi.json").status_code == 401
        assert time.monotonic() - started >= FIRST_DELAY_S  # a lower bound only
        with server.client(token=None) as anyone:
            assert anyone.get("/api/live").status_code == 200
