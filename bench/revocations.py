#!/usr/bin/env python3
"""Revocation latency with two replicas (run by bench/auth.sh).

usage: revocations.py BASE_A BASE_B ADMIN_KEY B_PID_FILE LABEL

For each trial: create a key on A, have both replicas verify it twice (so both hold it in
memory), then time the call that ends it on A — answered once B has dropped it too (the
revocation barrier) — and check that B refuses the key at once. Every path that ends a key at
once is timed: DELETE with an admin key and by the key itself, a leak report of a live key and
of a key revoked just before, a roll without grace and one with a grace (whose barrier is for
the old key's new expiry), and a leak report of 100 keys. Then a few revocations with B frozen
(SIGSTOP): answered after at most a lease. Prints one line per scenario.

The servers must trust 127.0.0.1 as a proxy (server.trusted_proxies): each leak report comes
from an address of its own, so that the per-address throttle on reports is not what is timed.
"""
import http.client
import json
import os
import signal
import statistics
import sys
import time
from urllib.parse import urlparse

TRIALS = 200
PATH_TRIALS = 100
MANY = 100
MANY_TRIALS = 5
FROZEN_TRIALS = 3


class Client:
    def __init__(self, base):
        url = urlparse(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    def call(self, method, path, key, body=None, forwarded_for=None):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        res = self.conn.getresponse()
        payload = res.read()
        return res.status, payload


def new_key(a, admin):
    status, payload = a.call("POST", "/api/v1/me/api-keys/", admin, {"name": "victim", "scopes": ["read"]})
    assert status == 201, (status, payload)
    created = json.loads(payload)
    return created["key"], created["id"]


def held_by_both(a, b, key):
    for replica in (a, b):
        for _ in range(2):
            status, _ = replica.call("GET", "/api/v1/me/api-keys/ping/", key)
            assert status == 200, status


def revoke(a, admin, key_id):
    started = time.perf_counter()
    status, payload = a.call("DELETE", f"/api/v1/me/api-keys/{key_id}/", admin)
    took = (time.perf_counter() - started) * 1000
    assert status == 204, (status, payload)
    return took


def timed(call):
    started = time.perf_counter()
    status, payload = call()
    return (time.perf_counter() - started) * 1000, status, payload


REPORTS = 0


def report(a, keys):
    global REPORTS
    REPORTS += 1
    address = f"198.51.{100 + REPORTS // 250}.{REPORTS % 250 + 1}"
    took, status, payload = timed(
        lambda: a.call("POST", "/api/v1/keys/report-leak/", None, {"keys": keys}, address)
    )
    assert status == 202, (status, payload)
    return took


def roll(a, admin, key_id, grace):
    took, status, payload = timed(
        lambda: a.call("POST", f"/api/v1/me/api-keys/{key_id}/roll/", admin, {"grace_seconds": grace})
    )
    assert status == 201, (status, payload)
    return took


def end_by(path, a, admin, key, key_id):
    """Ends the key by `path`; the time of the call that must wait for the barrier."""
    if path == "delete-admin":
        return revoke(a, admin, key_id)
    if path == "delete-self":
        return revoke(a, key, key_id)
    if path == "leak-live":
        return report(a, [key])
    if path == "leak-revoked":
        revoke(a, admin, key_id)
        return report(a, [key])
    if path == "roll-0":
        return roll(a, admin, key_id, 0)
    if path == "roll-grace":
        return roll(a, admin, key_id, 3600)
    raise ValueError(path)


def line(label, name, latencies):
    print(
        f"revocation {label} {name} n={len(latencies)} p50={statistics.median(latencies):.1f}ms "
        f"p99={percentile(latencies, 99):.1f}ms max={max(latencies):.1f}ms",
        flush=True,
    )


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    base_a, base_b, admin, b_pid_file, label = sys.argv[1:6]
    a, b = Client(base_a), Client(base_b)
    b_pid = int(open(b_pid_file).read().strip())
    latencies = []
    for _ in range(TRIALS):
        key, key_id = new_key(a, admin)
        held_by_both(a, b, key)
        latencies.append(revoke(a, admin, key_id))
        status, _ = b.call("GET", "/api/v1/me/api-keys/ping/", key)
        assert status == 401, f"B accepted a revoked key: {status}"
    line(label, "two-up", latencies)
    for path in ("delete-admin", "delete-self", "leak-live", "leak-revoked", "roll-0", "roll-grace"):
        latencies = []
        for _ in range(PATH_TRIALS):
            key, key_id = new_key(a, admin)
            held_by_both(a, b, key)
            latencies.append(end_by(path, a, admin, key, key_id))
            status, _ = b.call("GET", "/api/v1/me/api-keys/ping/", key)
            # A roll with a grace leaves the old key working until then.
            want = 200 if path == "roll-grace" else 401
            assert status == want, f"{path}: B answered {status}"
        line(label, path, latencies)
    latencies = []
    for _ in range(MANY_TRIALS):
        keys = []
        for _ in range(MANY):
            key, _ = new_key(a, admin)
            keys.append(key)
        for key in keys[:3]:
            held_by_both(a, b, key)
        latencies.append(report(a, keys))
        for key in keys[:3]:
            status, _ = b.call("GET", "/api/v1/me/api-keys/ping/", key)
            assert status == 401, f"leak-100: B answered {status}"
    line(label, f"leak-{MANY}", latencies)
    frozen = []
    for _ in range(FROZEN_TRIALS):
        key, key_id = new_key(a, admin)
        held_by_both(a, b, key)
        os.kill(b_pid, signal.SIGSTOP)
        try:
            frozen.append(revoke(a, admin, key_id))
        finally:
            os.kill(b_pid, signal.SIGCONT)
        b = Client(base_b)
        status, _ = b.call("GET", "/api/v1/me/api-keys/ping/", key)
        assert status == 401, f"the thawed replica accepted a revoked key: {status}"
    print(
        f"revocation {label} one-frozen n={FROZEN_TRIALS} "
        + " ".join(f"{t:.0f}ms" for t in frozen)
    )


if __name__ == "__main__":
    main()
