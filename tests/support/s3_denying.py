"""A loopback HTTP proxy to the test S3 server that answers S3's 403 AccessDenied to the
bucket sub-resources it is told to deny (`("GET", "logging")` is GetBucketLogging), as
AWS does for credentials whose policy lacks that permission, and passes everything else
(moto enforces no policies of its own)."""

from collections.abc import Iterable

from tests.support.s3_proxy import ACCESS_DENIED, FORWARD, Answer, Request, S3Proxy


class DenyingS3Proxy(S3Proxy):
    def __init__(self, upstream_url: str, denied: Iterable[tuple[str, str]]) -> None:
        self.denied = frozenset(denied)
        self.refused: list[tuple[str, str]] = []  # what it answered 403 to, in order
        super().__init__(upstream_url)

    def decide(self, request: Request) -> Answer | None:
        refused = {(request.method, name) for name in request.query} & self.denied
        if not refused:
            return FORWARD
        self.refused.extend(sorted(refused))
        return ACCESS_DENIED
