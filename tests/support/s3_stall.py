"""A loopback proxy to the test S3 server that passes every request through, except
the first GET of an object whose key contains `stall_on`: it sends that body's first
half and then holds the connection open until released (a download hanging
mid-object, for a process to be killed during it), or with `hang=False` closes the
connection there (a download cut off mid-object)."""

import threading

from tests.support.s3_proxy import Cut, Request, Response, S3Proxy


class StallingS3Proxy(S3Proxy):
    def __init__(self, upstream_url: str, stall_on: str, *, hang: bool = True) -> None:
        self.stall_on = stall_on
        self.hang = hang
        self.stalled = threading.Event()  # set once a body hangs half-sent
        self.release = threading.Event()
        self._lock = threading.Lock()
        super().__init__(upstream_url)

    def deliver(self, request: Request, response: Response) -> Cut | None:
        with self._lock:
            if (
                request.method != "GET"
                or self.stall_on not in request.path
                or len(response.payload) <= 1
                or self.stalled.is_set()
            ):
                return None
            self.stalled.set()
        return Cut(hold=self.release if self.hang else None)

    def close(self) -> None:
        self.release.set()
        super().close()
