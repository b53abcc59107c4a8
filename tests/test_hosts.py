"""engines/plumbing/hosts.py: which hosts are this machine (plain SMTP, an API without
its token are allowed only there)."""

import pytest

from engines.plumbing.hosts import is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("::", False),
        ("mail.example.com", False),  # never resolved: a name may point anywhere
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_only_localhost_and_loopback_addresses_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
