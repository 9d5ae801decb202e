#!/usr/bin/env python3
"""Revocation latency with two replicas (run by bench/auth.sh).

usage: revocations.py BASE_A BASE_B ADMIN_KEY B_PID_FILE LABEL

For each trial: create a key on A, have both replicas verify it twice (so both hold it in
memory), then time `DELETE` on A — answered once B has dropped it too (the revocation
barrier) — and check that B refuses the key at once. Then a few revocations with B frozen
(SIGSTOP): answered after at most auth.lease_ms. Prints one line per scenario.
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
FROZEN_TRIALS = 3


class Client:
    def __init__(self, base):
        url = urlparse(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    def call(self, method, path, key, body=None):
        headers = {"Authorization": f"Bearer {key}"}
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
    print(
        f"revocation {label} two-up n={TRIALS} p50={statistics.median(latencies):.1f}ms "
        f"p99={percentile(latencies, 99):.1f}ms max={max(latencies):.1f}ms"
    )
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
