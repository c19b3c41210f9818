#!/usr/bin/env bash
# Failure drills against the cluster `scripts/cluster.sh up` started. Under a
# steady load of writes through HAProxy (each acknowledged id recorded), it
#   1. kills one crm-server instance with SIGKILL (HAProxy must route around it),
#   2. restarts PgBouncer,
#   3. stops the replica,
# restoring each after, then reads every acknowledged customer back through
# HAProxy: one missing is a lost write and fails the drill. Readers run beside
# the writers (their GETs are answered by the replica, or by the primary when
# it lags or is down); a failed read counts as a client error. Prints, per
# drill, the requests, the errors clients saw and the seconds until writes
# succeeded again. --quick shortens every phase (CI).
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${CRM_CLUSTER_DIR:-/tmp/crm-cluster}
PHASE=6
[ "${1:-}" = "--quick" ] && PHASE=3
[ -s "$STATE/client.json" ] || { echo "drill: no cluster; run scripts/cluster.sh up first" >&2; exit 2; }
eval "$(bash scripts/cluster.sh env)"
bash scripts/cluster.sh status

export STATE PHASE CRM_BASE_URL
exec python3 - <<'PY'
import json, os, subprocess, sys, threading, time, urllib.request, urllib.error, base64

state, phase, base = os.environ["STATE"], float(os.environ["PHASE"]), os.environ["CRM_BASE_URL"]
client = json.load(open(f"{state}/client.json"))

def token():
    auth = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    req = urllib.request.Request(f"{base}/oauth/token/", data=b"grant_type=client_credentials&scope=crm%3Aread+crm%3Awrite",
                                 headers={"Authorization": f"Basic {auth}"})
    for _ in range(50):
        try:
            return json.load(urllib.request.urlopen(req, timeout=5))["access_token"]
        except Exception:
            time.sleep(0.2)
    sys.exit("drill: cannot get a token")

# HAProxy sends each token to one instance (read-your-writes with the
# replica), so the drill's requests use several tokens to reach every one.
toks = [token() for _ in range(8)]
def headers(n):
    return {"Authorization": f"Bearer {toks[n % len(toks)]}", "Content-Type": "application/json"}
H = headers(0)

def call(method, path, body=None, h=None):
    req = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode() if body is not None else None,
                                 headers=h or H, method=method)
    r = urllib.request.urlopen(req, timeout=10)
    raw = r.read()
    return r.status, (json.loads(raw) if raw else None)

# A short API scenario first, through HAProxy, both instances and PgBouncer in
# transaction mode (statements unprepared): writes, reads in read-only
# REPEATABLE READ transactions, a list page with its count, a delete. Each
# request is repeated so that both instances and several pooled server
# connections serve it.
# Each client reads its own writes at once, though GETs go to the replica.
for n in range(len(toks)):
    h = headers(n)
    st, c = call("POST", "/api/crm/customer/", {"full_name": "scenario", "tags": ["vip"]}, h)
    assert st == 201, st
    cid = c["id"]
    assert call("GET", f"/api/crm/customer/{cid}/", h=h)[1]["full_name"] == "scenario"
    assert call("PATCH", f"/api/crm/customer/{cid}/", {"note": "called back"}, h)[1]["note"] == "called back"
    assert call("GET", f"/api/crm/customer/{cid}/", h=h)[1]["note"] == "called back"
    st, page = call("GET", "/api/crm/customer/?tag=vip&page_size=5", h=h)
    assert st == 200 and page["count"] >= 1, page
    assert call("DELETE", f"/api/crm/customer/{cid}/", h=h)[0] == 204
    try:
        call("GET", f"/api/crm/customer/{cid}/", h=h)
        raise AssertionError("deleted customer still readable")
    except urllib.error.HTTPError as e:
        assert e.code == 404, e.code
print("scenario through HAProxy and PgBouncer (transaction mode): passed")

# Cross-instance: a token revoked through one instance is refused by every
# instance on the next request (tokens are checked in the database on each
# request, no per-process cache).
ports = dict(line.strip().split("=", 1) for line in open(f"{state}/ports.env") if "=" in line)
servers = [f"http://127.0.0.1:{v}" for k, v in sorted(ports.items()) if k.startswith("SERVER_PORT_")]
victim = token()
vh = {"Authorization": f"Bearer {victim}"}
for srv in servers:
    urllib.request.urlopen(urllib.request.Request(f"{srv}/api/crm/customer/?page_size=1", headers=vh), timeout=10)
auth = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
urllib.request.urlopen(urllib.request.Request(f"{servers[0]}/oauth/revoke_token/", data=f"token={victim}".encode(),
                                              headers={"Authorization": f"Basic {auth}"}), timeout=10)
for srv in servers + [base]:
    try:
        urllib.request.urlopen(urllib.request.Request(f"{srv}/api/crm/customer/?page_size=1", headers=vh), timeout=10)
        sys.exit(f"drill: FAILED, a token revoked through {servers[0]} is still accepted by {srv}")
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
print(f"token revoked through one instance: refused by all {len(servers)} and through HAProxy: passed")

# Cross-instance: webhook deliveries are made once. A receiver on 127.0.0.1
# records each webhook-id; customers created through HAProxy (so by every
# instance) must each reach it exactly once, whichever instance delivers.
import http.server, socketserver
got, got_lock = [], threading.Lock()
class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with got_lock:
            got.append(self.headers.get("webhook-id"))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
class Threaded(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
receiver = Threaded(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
st, hook = call("POST", "/api/crm/webhook/",
                {"url": f"http://127.0.0.1:{receiver.server_address[1]}/hook", "events": ["customer.created"]})
assert st == 201, st
hooked = 60
for n in range(hooked):
    assert call("POST", "/api/crm/customer/", {"full_name": f"hooked {n}"})[0] == 201
deadline = time.monotonic() + 60
while time.monotonic() < deadline and len(set(got)) < hooked:
    time.sleep(0.2)
time.sleep(2)  # anything still under way lands
with got_lock:
    seen = list(got)
twice = sorted({i for i in seen if seen.count(i) > 1})
if len(set(seen)) != hooked or twice:
    sys.exit(f"drill: FAILED, webhooks: {len(set(seen))} of {hooked} events delivered, twice: {twice[:10]}")
call("DELETE", f"/api/crm/webhook/{hook['id']}/")
receiver.shutdown()
print(f"webhook deliveries through {len(servers)} instances: {hooked} events, each delivered once: passed")

acked, acked_at, events, kinds, lock = [], [], [], [], threading.Lock()   # events: (t, ok)
reads = [0, 0, 0]   # GETs made, failed, answered 404 (a stale read)
stop = threading.Event()
seq = [0]
MAX_LAG = 1.0    # the servers' CRM_REPLICA_MAX_LAG_MS

def writer(n):
    h = headers(n)
    while not stop.is_set():
        with lock:
            seq[0] += 1
            k = seq[0]
        body = json.dumps({"full_name": f"drill {n}-{k}"}).encode()
        t = time.monotonic()
        try:
            r = urllib.request.urlopen(urllib.request.Request(f"{base}/api/crm/customer/", data=body, headers=h, method="POST"), timeout=10)
            cid = json.load(r)["id"]
            with lock:
                acked.append(cid); acked_at.append(time.monotonic()); events.append((t, True))
        except urllib.error.HTTPError as e:
            with lock:
                events.append((t, False)); kinds.append((t, str(e.code)))
            time.sleep(0.05)
        except Exception as e:
            with lock:
                events.append((t, False)); kinds.append((t, type(e).__name__))
            time.sleep(0.05)

def reader(n):
    # Customers acknowledged more than the lag limit ago: a server answers
    # from the replica only when it is less far behind than that, so each
    # must be found.
    import random
    h = headers(n)
    while not stop.is_set():
        with lock:
            ready = [cid for cid, at in zip(acked, acked_at) if at < time.monotonic() - MAX_LAG - 0.5]
        if not ready:
            time.sleep(0.05)
            continue
        cid = random.choice(ready[-500:])
        t = time.monotonic()
        try:
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/crm/customer/{cid}/", headers=h), timeout=10).read()
            with lock:
                reads[0] += 1; events.append((t, True))
        except Exception as e:
            with lock:
                reads[0] += 1; reads[1] += 1; events.append((t, False))
                reads[2] += getattr(e, "code", None) == 404
                kinds.append((t, f"GET:{getattr(e, 'code', type(e).__name__)}"))
            time.sleep(0.05)

def cluster(*args):
    subprocess.run(["bash", "scripts/cluster.sh", *args], check=True, stdout=subprocess.DEVNULL)

def drill(name, fault, restore):
    with lock:
        start = len(events)
    time.sleep(phase / 2)
    t0 = time.monotonic()
    fault()
    time.sleep(phase)
    restore()
    time.sleep(phase / 2)
    with lock:
        evs = events[start:]
        kinds_seen = sorted({k for t, k in kinds if t >= t0 - phase / 2})
    errs = [t for t, ok in evs if not ok]
    after = [t for t, ok in evs if t >= t0]
    if errs:
        last_err = max(errs)
        recovered = next((t for t, ok in evs if ok and t > last_err), None)
        secs = (recovered - t0) if recovered else float("nan")
    else:
        secs = 0.0
    print(f"drill {name:<18} requests {len(evs):>5}  client errors {len(errs):>4}  seconds to recover {secs:5.2f}  {' '.join(kinds_seen)}")
    with lock:
        kinds.clear()
    return {"drill": name, "requests": len(evs), "errors": len(errs), "recover_seconds": round(secs, 2)}

threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(4)]
threads += [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(4, 6)]
for t in threads: t.start()
results = []
results.append(drill("kill server1", lambda: cluster("stop-server", "1", "KILL"), lambda: cluster("start-server", "1")))
results.append(drill("restart pgbouncer", lambda: cluster("restart-pgbouncer"), lambda: None))
results.append(drill("stop replica", lambda: cluster("stop-replica"), lambda: cluster("start-replica")))
stop.set()
for t in threads: t.join()

# Every acknowledged write must be there: read each back through HAProxy.
def present(cid):
    for attempt in range(3):
        try:
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/crm/customer/{cid}/", headers=H), timeout=10)
            return True
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return False
            time.sleep(0.2)
        except Exception:
            time.sleep(0.2)
    return False

from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(8) as pool:
    missing = [cid for cid, ok in zip(acked, pool.map(present, acked)) if not ok]
print(f"acknowledged writes {len(acked)}, read back {len(acked) - len(missing)}, lost {len(missing)}")

# The readers' GETs were answered by the replica (and by the primary while
# it was stopped), as each instance's metrics count them.
routed = {"replica": 0, "primary": 0}
for srv in servers:
    try:
        text = urllib.request.urlopen(f"{srv}/metrics", timeout=10).read().decode()
    except Exception:
        continue
    for line in text.splitlines():
        for target in routed:
            prefix = f'db_replica_routed_reads_total{{target="{target}"}} '
            if line.startswith(prefix):
                routed[target] += int(float(line[len(prefix):]))
print(f"reads {reads[0]}, failed {reads[1]} (of which not found {reads[2]}); answered by the replica {routed['replica']}, by the primary {routed['primary']}")
json.dump({"drills": results, "acknowledged": len(acked), "lost": len(missing), "reads": reads[0],
           "reads_failed": reads[1], "routed": routed}, open(f"{state}/drill.json", "w"))
if missing:
    sys.exit(f"drill: FAILED, acknowledged writes lost: {missing[:20]}")
if reads[2]:
    sys.exit(f"drill: FAILED, {reads[2]} reads did not find a customer acknowledged before the lag limit")
replica_drill = next(r for r in results if r["drill"] == "stop replica")
if replica_drill["errors"]:
    sys.exit(f"drill: FAILED, clients saw {replica_drill['errors']} errors while the replica was stopped")
if routed["replica"] == 0:
    sys.exit("drill: FAILED, no read was answered by the replica")
print("drill: passed")
PY
