#!/usr/bin/env python3
"""An adversarial pass against a running crm-server, as a stranger without a
token would make it (plus one bearer token for the NUL sweep), on loopback.

    python3 scripts/adversarial.py --base http://127.0.0.1:8000 --pid PID \
        [--token TOKEN] [--methods 20000] [--slow 1000] [--slow-seconds 15]

Prints one line per attack with what it measured: the server's RSS (from
/proc/PID/status) and the size of /metrics before and after made-up methods;
how many of N slow-body connections were still open after the body
deadline; whether a plain request was answered meanwhile; and the status of
every NUL-bearing input (any 5xx is a finding). Exits 1 on a finding.
"""

import argparse
import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def raw(host, port, data, timeout=5.0):
    """Sends raw bytes, returns the first response line (or '')."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        try:
            return s.recv(256).split(b"\r\n", 1)[0].decode("latin-1")
        except OSError:
            return ""


def status(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--token")
    ap.add_argument("--methods", type=int, default=20000)
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--slow-seconds", type=float, default=15)
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.base)
    host, port = u.hostname, u.port
    findings = []

    # 1. Made-up methods: memory and /metrics must not grow with them.
    metrics_before = len(status(args.base + "/metrics")[1])
    rss_before = rss_kb(args.pid)
    for i in range(args.methods):
        name = f"M{i}" if i % 100 else "X" * 4096
        raw(host, port, f"{name} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    metrics_after = len(status(args.base + "/metrics")[1])
    rss_after = rss_kb(args.pid)
    print(f"methods: {args.methods} made-up methods; RSS {rss_before} -> {rss_after} kB; "
          f"/metrics {metrics_before} -> {metrics_after} bytes")
    if metrics_after > metrics_before + 4096:
        findings.append("made-up methods grew /metrics")

    # 2. Slow bodies: every one must be answered (408) or closed by the deadline.
    conns = []
    for _ in range(args.slow):
        try:
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"POST /oauth/token/ HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: 100\r\n\r\n")
            conns.append(s)
        except OSError:
            break
    opened = len(conns)
    t0 = time.time()
    answered = None
    while time.time() - t0 < args.slow_seconds:
        for s in conns:
            try:
                s.send(b"a")
            except OSError:
                pass
        if answered is None:
            try:
                code, _ = status(args.base + "/healthz")
                answered = (code, round(time.time() - t0, 1))
            except Exception:  # noqa: BLE001 - a refusal is what we measure
                pass
        time.sleep(1)
    still_open = 0
    for s in conns:
        s.setblocking(False)
        try:
            data = s.recv(64)
            if data and b" 408 " not in data:
                still_open += 1
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
        s.close()
    print(f"slow bodies: {opened} opened, {still_open} still open after {args.slow_seconds}s "
          f"without a 408; /healthz meanwhile: {answered}")
    if still_open:
        findings.append("slow bodies held past the deadline")
    if answered is None or answered[0] != 200:
        findings.append("a plain request was not answered during the slow-body attack")

    # 3. NUL in every text input.
    nul = "a\u0000b"
    form = {"grant_type": "client_credentials", "client_id": nul, "client_secret": nul}
    for path in ["/oauth/token/", "/oauth/introspect/", "/oauth/revoke_token/"]:
        body = urllib.parse.urlencode({**form, "token": nul}).encode()
        code, _ = status(args.base + path, "POST", body,
                         {"Content-Type": "application/x-www-form-urlencoded"})
        print(f"nul: POST {path} -> {code}")
        if code >= 500:
            findings.append(f"NUL on {path} -> {code}")
    if args.token:
        auth = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
        for field in ["full_name", "email", "mobile", "note", "avatar", "referral_code",
                      "multipass_identifier", "gender", "birthday"]:
            code, _ = status(args.base + "/api/crm/customer/", "POST",
                             json.dumps({field: nul}).encode(), auth)
            if code >= 500 or code == 201:
                findings.append(f"NUL in {field} -> {code}")
        for param in ["search", "tag", "email", "mobile", "ordering", "id__in", "segment"]:
            code, _ = status(args.base + f"/api/crm/customer/?{param}=a%00b", "GET", None, auth)
            if code >= 500:
                findings.append(f"NUL in ?{param} -> {code}")
        print("nul: customer fields and filters checked")

    print("findings:", findings or "none")
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
