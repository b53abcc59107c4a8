"""Doors to the test S3 server: a loopback HTTP proxy that passes reads through and
answers every write with S3's 403 AccessDenied, as a bucket does for credentials that
may only read (moto enforces no policies of its own); with `misreport_checksums`, it
passes writes too and reports a wrong SHA-256 on every HEAD, as a server that stored
other bytes would; with `cut_bodies`, it passes writes and cuts that many object bodies
off half-way (the connection drops mid-download)."""

import threading

from tests.support.s3_proxy import ACCESS_DENIED, FORWARD, Answer, Cut, Request, Response, S3Proxy

_WRONG_SHA256 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # of no bytes at all
_WRITES = ("PUT", "POST", "DELETE")


class ReadOnlyS3Proxy(S3Proxy):
    def __init__(
        self, upstream_url: str, *, misreport_checksums: bool = False, cut_bodies: int = 0
    ) -> None:
        self._misreport = misreport_checksums
        self._writes_pass = misreport_checksums or cut_bodies > 0
        self.cuts_left = cut_bodies
        self._lock = threading.Lock()
        super().__init__(upstream_url)

    def decide(self, request: Request) -> Answer | None:
        return FORWARD if self._writes_pass or request.method not in _WRITES else ACCESS_DENIED

    def deliver(self, request: Request, response: Response) -> Cut | None:
        if self._misreport:
            response.headers = [
                (name, _WRONG_SHA256 if name.lower() == "x-amz-checksum-sha256" else value)
                for name, value in response.headers
            ]
        with self._lock:
            cut = self.cuts_left > 0 and response.status == 206 and len(response.payload) > 1
            self.cuts_left -= cut
        return Cut() if cut else None
