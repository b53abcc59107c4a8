"""The demo's Redis data: signed-in sessions, the music-generation and mail queues, a
playback event stream, cached summaries and a weekly chart (and rate limits in db 1).
Fixed, so every demo holds the same keys; every expiry is days away, so none lapses
while the demo is tried."""

import hashlib
import json

from engines.servers.redis import RedisServer

DAY_S = 86_400
SESSIONS = 40
GENERATION_JOBS = 12
PLAYBACK_EVENTS = 80
CACHED_SUMMARIES = 30
CHART_TRACKS = 50
RATE_LIMITED_USERS = 25


def _token(number: int) -> str:
    return hashlib.sha256(f"demo-session-{number}".encode()).hexdigest()[:32]


def seed_redis(server: RedisServer) -> None:
    server.flush()
    with server.client() as client:
        # A backup reads the snapshot as a replica would: no 5 s wait for more replicas.
        client.config_set("repl-diskless-sync-delay", 0)
        pipe = client.pipeline(transaction=False)
        for n in range(1, SESSIONS + 1):
            key = f"session:{_token(n)}"
            pipe.hset(
                key,
                mapping={
                    "user_id": n * 3 % 120 + 1,
                    "signed_in_at": f"2026-04-{1 + n % 28:02d}T08:{n % 60:02d}:00Z",
                    "user_agent": ("Jarvis iOS 4.2", "Firefox 138", "Jarvis Android 4.1")[n % 3],
                },
            )
            pipe.expire(key, 7 * DAY_S)
        for n in range(1, GENERATION_JOBS + 1):
            job = {"job": n, "user_id": n * 7 % 120 + 1, "prompt": "a calm piano piece", "bpm": 72}
            pipe.rpush("queue:music-generation", json.dumps(job))
        for n in range(1, 6):
            mail = {"to": f"user{n}@jarvis.example", "kind": "weekly digest"}
            pipe.rpush("queue:mail", json.dumps(mail))
        for n in range(1, PLAYBACK_EVENTS + 1):
            fields = {"user_id": n % 120 + 1, "track_id": n % 240 + 1, "event": "play"}
            pipe.xadd("events:playback", fields, id=f"{1_777_000_000_000 + n * 1000}-0")
        for n in range(1, CACHED_SUMMARIES + 1):
            key = f"cache:conversation:{n}:summary"
            pipe.set(key, f"Conversation {n}: planned the day, queued music.", ex=3 * DAY_S)
        chart = {f"track:{n}": (n * 53) % 997 for n in range(1, CHART_TRACKS + 1)}
        pipe.zadd("chart:tracks:weekly", chart)
        pipe.sadd("online:users", *range(1, 31))
        pipe.execute()
    with server.client(1) as limits:
        pipe = limits.pipeline(transaction=False)
        for n in range(1, RATE_LIMITED_USERS + 1):
            pipe.set(f"ratelimit:api:user:{n}", n % 17, ex=DAY_S)
        pipe.execute()
