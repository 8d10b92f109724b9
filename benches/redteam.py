#!/usr/bin/env python3
"""Red-team run of `image-config-webhook serve`: each attack of the reliability issue at full
size, against a fresh server, with a well-behaved client running alongside. Python 3 standard
library only; use benches/redteam.sh, which builds the binary and makes the certificates.

Environment:
  BIN       the binary (default target/release/image-config-webhook; not built here)
  CERT_DIR  a directory with ca.crt, tls.crt, tls.key (default: made with `BIN certs` in a temp dir)
  DURATION  seconds per attack (default 10; 3 for a quick check)
  ONLY      comma-separated attack names (default: all; `ONLY=list` prints the names)
  KEEP_LOGS a directory to copy the server logs to (default: none; they are deleted)

Everything stays on loopback: the server listens on 127.0.0.1, the good client connects from
127.0.0.1 and the attackers from 127.0.0.2-127.0.0.20 (the server allows 128 connections per
client address). Every loop is bounded in count and in time; servers and helper processes are
ended by their pid when an attack ends, and die with this process (PR_SET_PDEATHSIG).

Output: a Markdown table on stdout, one row per attack; progress on stderr.
"""

import collections
import concurrent.futures
import ctypes
import json
import multiprocessing
import os
import re
import resource
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

MIB = 1024 * 1024
MAX_BODY = 7 * MIB  # the server's MAX_BODY_BYTES
SMALL_BODY = 256 * 1024  # the server's SMALL_BODY_BYTES
MAX_CONNECTIONS = 1024  # --max-connections default
PROBE_MAX = 64  # limit::PROBE_MAX_CONNECTIONS

HOST = "127.0.0.1"
GOOD_IP = "127.0.0.1"
ATTACK_IPS = [f"127.0.0.{i}" for i in range(2, 21)]
CLK_TCK = os.sysconf("SC_CLK_TCK")

DURATION = float(os.environ.get("DURATION", "10"))
if not 0 < DURATION <= 600:
    sys.exit("DURATION must be in (0, 600] seconds")
BIN = os.environ.get("BIN", "target/release/image-config-webhook")
if os.sep in BIN:
    BIN = os.path.abspath(BIN)
CERT_DIR = os.environ.get("CERT_DIR", "")

OPEN_WEBHOOK = 'image_config_webhook_connections_open{listener="webhook"}'
IN_FLIGHT = "image_config_webhook_requests_in_flight"
REVIEWS_RUNNING = "image_config_webhook_reviews_running"

MP = multiprocessing.get_context("fork")


def log(msg):
    sys.stderr.write(f"[redteam {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def die_with_parent():
    """Linux: this process gets SIGKILL when the one that started it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:
        pass


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 over TLS or plain TCP, by hand (keep-alive, Content-Length and chunked answers)
# ---------------------------------------------------------------------------------------------

_CTX = None


def tls_ctx():
    global _CTX
    if _CTX is None:
        _CTX = ssl.create_default_context(cafile=os.path.join(CERT_DIR, "ca.crt"))
    return _CTX


def tcp(port, src=None, timeout=10.0, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        if src:
            s.bind((src, 0))
        s.connect((HOST, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    except BaseException:
        s.close()
        raise


def tls(port, src=None, timeout=10.0, rcvbuf=None):
    s = tcp(port, src, timeout, rcvbuf)
    try:
        return tls_ctx().wrap_socket(s, server_hostname="localhost")
    except BaseException:
        s.close()
        raise


class Http:
    """One connection; answers are read in order."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def stale(self):
        """Whether the server has closed this idle connection (as Go's transport notices with its
        background read before reusing one): then a client opens a new one instead."""
        if self.buf:
            return True
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            if not poller.poll(0):
                return False
        except (OSError, ValueError):
            return True
        try:
            self.sock.setblocking(False)
            return self.sock.recv(1) == b""  # EOF; unexpected data also makes it unusable
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except (OSError, ssl.SSLError):
            return True
        finally:
            try:
                self.sock.settimeout(15.0)
            except OSError:
                pass

    def _more(self, deadline):
        if time.monotonic() > deadline:
            raise TimeoutError("answer deadline")
        d = self.sock.recv(1 << 18)
        if not d:
            raise ConnectionError("closed by the server")
        self.buf += d

    def post(self, path, body, extra=""):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n"
        ).encode()
        self.sock.sendall(head)
        self.sock.sendall(body)

    def response(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            if len(self.buf) > 65536:
                raise ValueError("answer head too long")
            self._more(deadline)
        head = bytes(self.buf[:i]).decode("latin-1")
        del self.buf[: i + 4]
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n:
                self._more(deadline)
            body = bytes(self.buf[:n])
            del self.buf[:n]
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            out = bytearray()
            for _ in range(1_000_000):
                while self.buf.find(b"\r\n") < 0:
                    self._more(deadline)
                j = self.buf.find(b"\r\n")
                size = int(bytes(self.buf[:j]).split(b";")[0], 16)
                del self.buf[: j + 2]
                while len(self.buf) < size + 2:
                    self._more(deadline)
                out += self.buf[:size]
                del self.buf[: size + 2]
                if size == 0:
                    break
            body = bytes(out)
        else:
            try:
                for _ in range(100_000):
                    self._more(deadline)
            except ConnectionError:
                pass
            body = bytes(self.buf)
            self.buf.clear()
        return status, headers, body


def http_get(port, path, timeout=2.0, src=None):
    s = tcp(port, src, timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        return Http(s).response(timeout)
    finally:
        s.close()


def scrape(pport, timeout=3.0):
    status, _, body = http_get(pport, "/metrics", timeout)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    out = {}
    for line in body.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def classify(e):
    if isinstance(e, ssl.SSLError):
        return "tls " + (e.reason or type(e).__name__).lower()
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, BrokenPipeError):
        return "broken pipe"
    if isinstance(e, TimeoutError):
        return "timeout"
    if isinstance(e, ConnectionError):
        return "closed"
    return type(e).__name__


# ---------------------------------------------------------------------------------------------
# Reviews
# ---------------------------------------------------------------------------------------------


def review(uid, spec, op="CREATE", old_spec=None, metadata=None, name="cluster"):
    def obj(s):
        return {
            "apiVersion": "config.openshift.io/v1",
            "kind": "Image",
            "metadata": metadata or {"name": name},
            "spec": s,
        }

    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "config.openshift.io", "version": "v1", "kind": "Image"},
            "resource": {"group": "config.openshift.io", "version": "v1", "resource": "images"},
            "name": name,
            "operation": op,
            "userInfo": {"username": "system:admin", "groups": ["system:masters"]},
            "object": obj(spec),
            "oldObject": None if old_spec is None else obj(old_spec),
            "dryRun": False,
        },
    }


def dumps(v):
    return json.dumps(v, separators=(",", ":")).encode()


def fit(make, target, lo=1, hi=16):
    """The body make(n) of the largest n with len(make(n)) <= target (make grows with n)."""
    while len(make(hi)) <= target:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if len(make(mid)) <= target:
            lo = mid
        else:
            hi = mid
    return make(lo), lo


def with_list(template_review, items_json):
    """Replaces the string "@@LIST@@" in a review by a raw JSON list (fast for huge lists)."""
    t = dumps(template_review)
    return t.replace(b'"@@LIST@@"', items_json)


UID_MARK = b"GOODUID0000000000"  # 17 bytes, replaced by good-%012d

GOOD_SPEC = {
    "additionalTrustedCA": {"name": "registry-cas"},
    "allowedRegistriesForImport": [
        {"domainName": "quay.io", "insecure": False},
        {"domainName": "registry.redhat.io", "insecure": False},
        {"domainName": "*.corp.example.com", "insecure": False},
    ],
    "externalRegistryHostnames": ["registry.apps.example.com"],
    "registrySources": {
        "allowedRegistries": [
            "quay.io",
            "registry.redhat.io",
            "image-registry.openshift-image-registry.svc:5000",
            "*.corp.example.com",
            "mirror.example.com",
        ],
        "insecureRegistries": ["mirror.example.com"],
        "containerRuntimeSearchRegistries": ["registry.corp.example.com"],
    },
}


def good_template():
    """A typical UPDATE of the cluster Image (allowed), about 4 KB: kubectl's last-applied
    annotation and managedFields make up most of a real object's size."""
    old = json.loads(json.dumps(GOOD_SPEC))
    old["registrySources"]["allowedRegistries"] = old["registrySources"]["allowedRegistries"][:4]
    applied = {"apiVersion": "config.openshift.io/v1", "kind": "Image",
               "metadata": {"annotations": {}, "name": "cluster"}, "spec": GOOD_SPEC}
    md = {
        "name": "cluster",
        "uid": "7c6a1ba6-5b2c-4a0b-9d55-6b1f4c1e2a11",
        "resourceVersion": "48213",
        "generation": 3,
        "creationTimestamp": "2026-01-12T09:14:03Z",
        "annotations": {
            "include.release.openshift.io/self-managed-high-availability": "true",
            "release.openshift.io/create-only": "true",
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied, separators=(",", ":")) + "\n",
        },
        "managedFields": [
            {"manager": "kubectl-client-side-apply", "operation": "Update",
             "apiVersion": "config.openshift.io/v1", "time": "2026-02-03T16:40:27Z",
             "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                          "f:spec": {"f:additionalTrustedCA": {".": {}, "f:name": {}},
                                     "f:allowedRegistriesForImport": {},
                                     "f:registrySources": {".": {}, "f:allowedRegistries": {}}}}},
        ],
    }
    r = review(UID_MARK.decode(), GOOD_SPEC, op="UPDATE", old_spec=old, metadata=md)
    return dumps(r)


GOOD = good_template()


def good_body(i):
    return GOOD.replace(UID_MARK, b"good-%012d" % (i % 10**12))


def verdict_ok(status, body, uid):
    if status != 200:
        return False, f"HTTP {status}"
    try:
        resp = json.loads(body)["response"]
    except Exception:
        return False, "bad JSON"
    if resp.get("uid") != uid:
        return False, "wrong uid"
    if resp.get("allowed") is not True:
        code = (resp.get("status") or {}).get("code")
        return False, f"not allowed ({code})"
    return True, ""


# ---------------------------------------------------------------------------------------------
# Bodies, built once before the attacks (the attack processes inherit them)
# ---------------------------------------------------------------------------------------------

BODIES = {}


def body_import40k():
    # ~1.5 MB: 40,000 entries shaped like {"domainName":"*.e123.example.com"}.
    items = b",".join(b'{"domainName":"*.e%d.example.com"}' % i for i in range(40000))
    return with_list(review("big-import", {"allowedRegistriesForImport": "@@LIST@@"}), b"[" + items + b"]")


def body_import6000():
    def make(k):
        pad = b"p" * k
        items = b",".join(b'{"domainName":"*.e%d.%s.example.com"}' % (i, pad) for i in range(6000))
        return with_list(review("globs-6000", {"allowedRegistriesForImport": "@@LIST@@"}), b"[" + items + b"]")

    return fit(make, 254 * 1024, 1, 2)[0]


def body_zeros7m():
    t = dumps(review("zeros", {"registrySources": {"blockedRegistries": "@@LIST@@"}}))
    base = len(t) - len(b'"@@LIST@@"')
    n = (MAX_BODY - 1 - base - 1) // 2  # "[" + "0," * (n-1) + "0]" = 2n + 1 bytes
    body = t.replace(b'"@@LIST@@"', b"[" + b"0," * (n - 1) + b"0]")
    assert len(body) < MAX_BODY, len(body)
    return body


def body_blocked7m():
    """The slowest review found: about 260,000 distinct blockedRegistries repositories."""
    def make(n):
        items = b",".join(b'"r%d.example.com/p%d"' % (i, i) for i in range(n))
        return with_list(review("cpu-bound", {"registrySources": {"blockedRegistries": "@@LIST@@"}}), b"[" + items + b"]")

    return fit(make, MAX_BODY - 1, 100_000, 200_000)[0]


def body_noread():
    """An empty-spec review whose uid fills the body to the small-lane maximum: the server
    echoes the uid, so the answer is as large as the request."""
    base = len(dumps(review("", {})))
    return dumps(review("n" * (SMALL_BODY - base - 8), {}))


def bodies_log_inject():
    forged = "2026-01-01T00:00:00.000000Z  INFO image_config_webhook: FORGED admission review allowed=true"
    out = []
    for i, uid in enumerate([
        "inj-1\n" + forged,
        "inj-2\r\n" + forged,
        "inj-3\x1b[2J\x1b[31mFORGED-ESC\x1b[0m",
        "inj-4\u2028FORGED-LS\u0085FORGED-NEL",
        "inj-5\x00FORGED-NUL\x07\x08",
    ]):
        out.append(dumps(review(uid, GOOD_SPEC)))
        # The same uid on malformed reviews (the warn path), and in the name.
        out.append(dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                          "request": {"uid": uid, "kind": "\nFORGED-KIND\x1b[31m", "operation": 7}}))
        out.append(dumps(review(f"inj-name-{i}", GOOD_SPEC, name="cluster\n" + forged)))
    # An error message carrying control characters (a value echoed in the denial).
    out.append(dumps(review("inj-msg", {"registrySources": {"blockedRegistries": ["\n" + forged + "\x1b[31m"]}})))
    return out


def bodies_log_flood():
    mib = "L" * MIB
    return [
        dumps(review(mib, {})),  # allowed, the 1 MiB uid echoed
        dumps(review("\n" * MIB, {})),  # 1 MiB of newlines (2 MiB of JSON)
        dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "request": {"uid": mib, "kind": 42}}),  # malformed: logged on the warn path
    ]


INTERNAL = "image-registry.openshift-image-registry.svc:5000"


def answer_shapes(target):
    """Candidate shapes that each make the engine find thousands of warnings or errors, sized to
    `target` bytes. Returns [(label, body, entries)]."""
    shapes = {
        "insecureRegistries single-label hosts (W9), CREATE":
            lambda n: dumps(review("big-answer", {"registrySources": {"insecureRegistries": [f"h{i}" for i in range(n)]}})),
        "insecureRegistries single-label hosts (W9), UPDATE old=new (R5 ratcheted)":
            lambda n: dumps(review("big-answer", {"registrySources": {"insecureRegistries": [f"h{i}" for i in range(n)]}},
                                   op="UPDATE", old_spec={"registrySources": {"insecureRegistries": [f"h{i}" for i in range(n)]}})),
        "containerRuntimeSearchRegistries docker.io repeated (W6, W7, R-dup)":
            lambda n: dumps(review("big-answer", {"registrySources": {"containerRuntimeSearchRegistries": ["docker.io"] * n}})),
        "insecureRegistries not in allowedRegistries (W4)":
            lambda n: dumps(review("big-answer", {"registrySources": {
                "allowedRegistries": ["quay.io", "registry.redhat.io", INTERNAL],
                "insecureRegistries": [f"i{i}.example.com" for i in range(n)]}})),
        "uppercase single-label hosts in insecure and search lists (W9, W10, P1)":
            lambda n: dumps(review("big-answer", {"registrySources": {
                "insecureRegistries": [f"H{i}" for i in range(n)],
                "containerRuntimeSearchRegistries": [f"S{i}" for i in range(n)]}})),
        "allowedRegistriesForImport long domainNames with colons (P2)":
            lambda n: dumps(review("big-answer", {"allowedRegistriesForImport": [
                {"domainName": f"a:b:{i}:" + "x" * 200} for i in range(n)]})),
    }
    out = []
    for label, make in shapes.items():
        body, n = fit(make, target, 1, 64)
        out.append((label, body, n))
    return out


# ---------------------------------------------------------------------------------------------
# The server under test
# ---------------------------------------------------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])  # KiB
    return out


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


LIVE = {"servers": [], "procs": []}


class Server:
    def __init__(self, name, args, workdir):
        self.wport = free_port()
        self.pport = free_port()
        self.log_path = os.path.join(workdir, f"{name}.log")
        cmd = [BIN, "serve", "--cert-dir", CERT_DIR, "--listen", f"{HOST}:{self.wport}",
               "--probe-addr", f"{HOST}:{self.pport}", *args]
        self.cmd = cmd
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
                                     preexec_fn=die_with_parent)
        LIVE["servers"].append(self)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if http_get(self.pport, "/readyz", 1.0)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server was not ready within 20 s")
            time.sleep(0.02)

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_tail(self, n=600):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(35)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.logf.close()
        if self in LIVE["servers"]:
            LIVE["servers"].remove(self)


class Monitor(threading.Thread):
    """Samples the server's memory and CPU every 50 ms, and its connection gauges every 0.5 s."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv = srv
        self.halt = threading.Event()
        self.hwm = 0
        self.cpu = None
        self.max_conns = 0
        self.max_running = 0
        self.scrape_failures = 0

    def run(self):
        last_scrape = 0.0
        for _ in range(100_000):
            if self.halt.is_set():
                return
            try:
                st = proc_status(self.srv.pid)
                self.hwm = max(self.hwm, st["VmHWM"])
                self.cpu = proc_cpu(self.srv.pid)
            except (OSError, KeyError, IndexError, ValueError):
                return  # the process is gone
            if time.monotonic() - last_scrape >= 0.5:
                last_scrape = time.monotonic()
                try:
                    m = scrape(self.srv.pport, 1.0)
                    self.max_conns = max(self.max_conns, int(m.get(OPEN_WEBHOOK, 0)))
                    self.max_running = max(self.max_running, int(m.get(REVIEWS_RUNNING, 0)))
                except Exception:
                    self.scrape_failures += 1
            self.halt.wait(0.05)


# ---------------------------------------------------------------------------------------------
# The good client (its own process, so that the attackers' Python does not slow it)
# ---------------------------------------------------------------------------------------------


def good_client_main(wport, pport, go, stop, ready, q):
    die_with_parent()
    global _CTX
    _CTX = None
    events = []  # (wall time, kind, ok, latency s, reason)
    lock = threading.Lock()

    def record(kind, t, ok, lat, reason):
        if go.is_set():
            with lock:
                events.append((t, kind, ok, lat, reason))

    def reviews():
        conn = None
        for i in range(1_000_000):
            if stop.is_set():
                break
            t0 = time.monotonic()
            wall = time.time()
            uid = "good-%012d" % i
            if conn is not None and conn.stale():
                conn.close()
                conn = None
            try:
                if conn is None:
                    conn = Http(tls(wport, GOOD_IP, 15.0))
                conn.post("/validate?timeout=10s", good_body(i))
                status, headers, body = conn.response(15.0)
                ok, reason = verdict_ok(status, body, uid)
                if headers.get("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:
                ok, reason = False, classify(e)
                if conn is not None:
                    conn.close()
                    conn = None
            lat = time.monotonic() - t0
            if ok:
                ready.set()
            record("review", wall, ok, lat, reason)
            time.sleep(max(0.0, 0.02 - lat) if ok else 0.02)
        if conn is not None:
            conn.close()

    def healthz():
        for _ in range(1_000_000):
            if stop.is_set():
                break
            t0 = time.monotonic()
            wall = time.time()
            try:
                status, _, _ = http_get(pport, "/healthz", 1.0, GOOD_IP)
                lat = time.monotonic() - t0
                ok, reason = (status == 200 and lat <= 1.0), f"HTTP {status}"
            except Exception as e:
                lat = time.monotonic() - t0
                ok, reason = False, classify(e)
            record("healthz", wall, ok, lat, reason)
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))

    def fresh():
        # A new connection every 0.5 s: can a client that is not yet connected get in?
        for i in range(1_000_000):
            if stop.is_set():
                break
            t0 = time.monotonic()
            wall = time.time()
            uid = "good-%012d" % (900_000_000 + i)
            conn = None
            try:
                conn = Http(tls(wport, GOOD_IP, 5.0))
                conn.post("/validate?timeout=10s", good_body(900_000_000 + i))
                status, _, body = conn.response(10.0)
                ok, reason = verdict_ok(status, body, uid)
            except Exception as e:
                ok, reason = False, classify(e)
            finally:
                if conn is not None:
                    conn.close()
            lat = time.monotonic() - t0
            record("fresh", wall, ok, lat, reason)
            stop.wait(max(0.0, 0.5 - lat))

    threads = [threading.Thread(target=f, daemon=True) for f in (reviews, healthz, fresh)]
    for t in threads:
        t.start()
    stop.wait(3600)
    for t in threads:
        t.join(20)
    with lock:
        q.put(list(events))


def summarize_good(events, t_from=None, t_to=None):
    sel = [e for e in events if (t_from is None or e[0] >= t_from) and (t_to is None or e[0] < t_to)]
    out = {}
    for kind in ("review", "healthz", "fresh"):
        ev = [e for e in sel if e[1] == kind]
        oks = sorted(e[3] for e in ev if e[2])
        reasons = collections.Counter(e[4] for e in ev if not e[2])
        out[kind] = {"n": len(ev), "ok": len(oks), "lat": oks, "reasons": reasons}
    return out


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    return sorted_vals[min(len(sorted_vals) - 1, int(round(p * (len(sorted_vals) - 1))))]


# ---------------------------------------------------------------------------------------------
# Attack helpers (run in the attack process)
# ---------------------------------------------------------------------------------------------


class Ctx:
    def __init__(self, wport, pport, stop, sigterm_at):
        self.wport = wport
        self.pport = pport
        self.stop = stop
        self.sigterm_at = sigterm_at
        self.t0 = time.monotonic()
        self.deadline = self.t0 + DURATION

    def done(self):
        return self.stop.is_set() or time.monotonic() >= self.deadline

    def left(self):
        return max(0.0, self.deadline - time.monotonic())


def fmt_counter(c, limit=8):
    items = sorted(c.items(), key=lambda kv: -kv[1])[:limit]
    return ", ".join(f"{k} ×{v}" for k, v in items) if items else "none"


def kb(n):
    if n < 10240:
        return f"{n} B"
    if n >= MIB:
        return f"{n / MIB:.2f} MiB"
    return f"{n / 1024:.0f} KiB"


def hammer(A, threads, bodies, path="/validate?timeout=10s", ips=None, timeout=35.0,
           max_requests=100_000, split_at_sigterm=False):
    """`threads` keep-alive clients posting bodies (round-robin over `bodies`) back to back until
    the deadline; answers are read. Returns (outcomes, answer sizes, answers of each body kind)."""
    ips = ips or ATTACK_IPS
    res = collections.Counter()
    sizes = []
    lock = threading.Lock()

    def worker(k):
        conn = None
        ip = ips[k % len(ips)]
        for n in range(max_requests):
            if A.done():
                break
            body = bodies[(k + n) % len(bodies)]
            started = time.time()
            if conn is not None and conn.stale():
                conn.close()
                conn = None
            try:
                if conn is None:
                    conn = Http(tls(A.wport, ip, 10.0))
                conn.post(path, body)
                status, headers, answer = conn.response(timeout)
                outcome = f"HTTP {status}"
                with lock:
                    sizes.append(len(answer))
                if headers.get("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:
                outcome = classify(e)
                if conn is not None:
                    conn.close()
                    conn = None
                time.sleep(0.02)
            if split_at_sigterm and A.sigterm_at.value and started >= A.sigterm_at.value:
                outcome = "after SIGTERM: " + outcome
            elif split_at_sigterm and A.sigterm_at.value:
                outcome = "sent before SIGTERM: " + outcome
            with lock:
                res[outcome] += 1
        if conn is not None:
            conn.close()

    ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(A.left() + timeout + 10)
    return res, sizes


def hammer_notes(res, sizes, req_size):
    ans = f"answers {kb(min(sizes))}–{kb(max(sizes))}" if sizes else "no answers"
    return f"{sum(res.values())} requests of {kb(req_size)}: {fmt_counter(res)}; {ans}"


class Herd:
    """`n` connections spread over `ips`, each opened by `opener(ip)` and then held until the
    deadline. Connections the server closes are opened again (at most 128 per 0.25 s sweep and
    `max_opens` in all). watch="read": answers are read as they come (their statuses counted);
    watch="state": nothing is ever read, a close is seen from TCP_INFO."""

    def __init__(self, A, n, opener, ips, watch="read", max_opens=20_000, refill=True):
        self.A = A
        self.n = n
        self.opener = opener
        self.ips = ips
        self.watch = watch
        self.max_opens = max_opens
        self.refill = refill
        self.socks = [None] * n
        self.stats = collections.Counter()
        self.statuses = collections.Counter()
        self.lock = threading.Lock()
        self.attempts = 0
        self.held_max = 0
        self.held_min_after_fill = None
        self.fill_seconds = None

    def _open(self, i):
        if self.A.done():
            return None
        ip = self.ips[i % len(self.ips)]
        try:
            s = self.opener(ip)
        except Exception as e:
            with self.lock:
                self.stats["open failed: " + classify(e)] += 1
            return None
        with self.lock:
            self.stats["opened"] += 1
        if self.watch == "read":
            s.setblocking(False)
        return s

    def _open_many(self, idxs, pool):
        idxs = idxs[: max(0, self.max_opens - self.attempts)]
        self.attempts += len(idxs)
        for i, s in zip(idxs, pool.map(self._open, idxs)):
            self.socks[i] = s

    def _closed(self, s):
        if self.watch == "state":
            try:
                state = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
            except OSError:
                return True
            return state != 1  # TCP_ESTABLISHED
        for _ in range(64):
            try:
                d = s.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return False
            except (OSError, ValueError):
                return True
            if not d:
                return True
            for m in re.finditer(rb"HTTP/1\.1 (\d{3}) ", d):
                self.statuses[m.group(1).decode()] += 1
        return False

    def held(self):
        return sum(1 for s in self.socks if s is not None)

    def run(self):
        t = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            self._open_many(list(range(self.n)), pool)
            self.fill_seconds = time.monotonic() - t
            for _ in range(100_000):
                for i, s in enumerate(self.socks):
                    if s is not None and self._closed(s):
                        self.stats["closed by the server"] += 1
                        s.close()
                        self.socks[i] = None
                held = self.held()
                self.held_max = max(self.held_max, held)
                if self.held_min_after_fill is None or held < self.held_min_after_fill:
                    self.held_min_after_fill = held
                if self.A.done():
                    break
                self.A.stop.wait(min(0.25, self.A.left()))
                if self.refill and not self.A.done():
                    missing = [i for i, s in enumerate(self.socks) if s is None][:128]
                    if missing:
                        self._open_many(missing, pool)

    def close(self):
        for i, s in enumerate(self.socks):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
                self.socks[i] = None

    def notes(self):
        fill = f"{self.fill_seconds:.1f} s" if self.fill_seconds is not None else "?"
        parts = [
            f"{self.n} conns wanted, {self.attempts} opens tried (first fill {fill}); "
            f"held {self.held_min_after_fill}–{self.held_max}",
            fmt_counter(self.stats),
        ]
        if self.statuses:
            parts.append("answers seen: " + fmt_counter(collections.Counter({f"HTTP {k}": v for k, v in self.statuses.items()})))
        return "; ".join(parts)


def stall_opener(A, declared, query, sent):
    head = (f"POST /validate{query} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode()
    prefix = (b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"stall",'
              b'"object":{"spec":{"registrySources":{"blockedRegistries":[')
    prefix += b'"a.example.com",' * ((sent - len(prefix)) // 16)

    def open_(ip):
        s = tls(A.wport, ip, 5.0)
        s.sendall(head)
        s.sendall(prefix)
        return s

    return open_


# ---------------------------------------------------------------------------------------------
# The attacks. Each runs in its own process for DURATION seconds and returns its notes.
# ---------------------------------------------------------------------------------------------


def atk_baseline(A):
    A.stop.wait(A.left())
    return "no attack: the good client alone"


def atk_big_import(A):
    b = BODIES["import40k"]
    res, sizes = hammer(A, 2, [b], ips=ATTACK_IPS[:2])
    return "2 clients: " + hammer_notes(res, sizes, len(b))


def atk_import_6000(A):
    b = BODIES["import6000"]
    res, sizes = hammer(A, 8, [b], ips=ATTACK_IPS[:8])
    return "8 clients: " + hammer_notes(res, sizes, len(b))


def atk_zeros_7m(A):
    b = BODIES["zeros7m"]
    res, sizes = hammer(A, 2, [b], ips=ATTACK_IPS[:2])
    return f"2 clients, body {len(b)} B (limit {MAX_BODY}): " + hammer_notes(res, sizes, len(b))


def herd_attack(A, n, opener, ips=None, watch="read"):
    h = Herd(A, n, opener, ips or ATTACK_IPS, watch=watch)
    try:
        h.run()
    finally:
        h.close()
    return h.notes()


STALL_DECLARED = MAX_BODY - 1024


def atk_stall_7m(A):
    return ("declared 7 MiB−1 KiB, 64 KiB sent, ?timeout=10s: "
            + herd_attack(A, MAX_CONNECTIONS, stall_opener(A, STALL_DECLARED, "?timeout=10s", 65536)))


def atk_stall_7m_1h(A):
    return ("declared 7 MiB−1 KiB, 64 KiB sent, ?timeout=1h: "
            + herd_attack(A, MAX_CONNECTIONS, stall_opener(A, STALL_DECLARED, "?timeout=1h", 65536)))


def atk_stall_small_1h(A):
    return (f"declared {SMALL_BODY} B (the small-body maximum), 16 KiB sent, ?timeout=1h: "
            + herd_attack(A, MAX_CONNECTIONS, stall_opener(A, SMALL_BODY, "?timeout=1h", 16384)))


def atk_noread(A):
    body = BODIES["noread"]

    def open_(ip):
        s = tls(A.wport, ip, 5.0, rcvbuf=4096)
        Http(s).post("/validate?timeout=10s", body)
        return s

    return (f"each sends one {kb(len(body))} review whose uid the answer echoes (SO_RCVBUF 4 KiB) and never reads: "
            + herd_attack(A, MAX_CONNECTIONS, open_, watch="state"))


def atk_idle(A):
    answers = collections.Counter()
    lock = threading.Lock()

    def open_(ip):
        s = tls(A.wport, ip, 5.0)
        h = Http(s)
        h.post("/validate?timeout=10s", good_body(123))
        status, _, _ = h.response(10.0)
        with lock:
            answers[f"HTTP {status}"] += 1
        return s

    notes = herd_attack(A, MAX_CONNECTIONS, open_)
    return f"one review each, then idle ({fmt_counter(answers)}): " + notes


def probe_opener(A):
    def open_(ip):
        s = tcp(A.pport, ip, 3.0)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        Http(s).response(3.0)
        return s

    return open_


def atk_probe_one(A):
    return "96 keep-alive conns from 127.0.0.2 (one /healthz each): " + herd_attack(A, 96, probe_opener(A), ips=ATTACK_IPS[:1])


def atk_probe_many(A):
    return ("96 keep-alive conns from 127.0.0.2–.20 (one /healthz each): "
            + herd_attack(A, 96, probe_opener(A), ips=ATTACK_IPS))


def atk_timeout_flood(A):
    weird = ["99999999999999999999", "99999999999999999999h", "1e400", "-1s"]
    stalled = {}
    lock = threading.Lock()

    def stall(q):
        # A body that never completes, with the unparseable timeout: when is it cut off?
        t0 = time.monotonic()
        try:
            s = tls(A.wport, ATTACK_IPS[-1], 5.0)
            s.settimeout(45.0)
            h = Http(s)
            s.sendall((f"POST /validate?timeout={q} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                       f"Content-Length: 4096\r\n\r\n").encode() + b'{"apiVersion":')
            status, _, _ = h.response(45.0)
            out = f"HTTP {status} after {time.monotonic() - t0:.1f} s"
            h.close()
        except Exception as e:
            out = f"{classify(e)} after {time.monotonic() - t0:.1f} s"
        with lock:
            stalled[q] = out

    ts = [threading.Thread(target=stall, args=(q,), daemon=True) for q in weird]
    for t in ts:
        t.start()
    bodies = [good_body(i) for i in range(64)]
    res, sizes = hammer(A, 6, bodies, path="/validate?timeout=99999999999999999999", ips=ATTACK_IPS[:6])
    for t in ts:
        t.join(50)
    return ("6 keep-alive clients as fast as possible: " + hammer_notes(res, sizes, len(bodies[0]))
            + "; stalled bodies with ?timeout=" + ", ".join(f"{q}: {stalled.get(q, '?')}" for q in weird))


def atk_log_inject(A):
    bodies = BODIES["log_inject"]
    res, sizes = hammer(A, 2, bodies, ips=ATTACK_IPS[:2])
    return f"{len(bodies)} crafted reviews (newline, CR, ESC, U+2028, NUL in uid, name, kind, values), 2 clients: {fmt_counter(res)}"


def atk_log_flood(A):
    bodies = BODIES["log_flood"]
    res, sizes = hammer(A, 4, bodies, ips=ATTACK_IPS[:4], timeout=35.0)
    return (f"1 MiB uids (plain, newlines, malformed review), 4 clients as fast as possible: "
            + hammer_notes(res, sizes, len(bodies[0])))


def answer_attack(A, key):
    shapes = BODIES[key]
    tried = []
    best = None
    for label, body, n in shapes:
        if A.done():
            break
        conn = None
        try:
            conn = Http(tls(A.wport, ATTACK_IPS[0], 10.0))
            conn.post("/validate?timeout=10s", body)
            status, _, answer = conn.response(35.0)
            try:
                resp = json.loads(answer)["response"]
                w = len(resp.get("warnings") or [])
                causes = len(((resp.get("status") or {}).get("details") or {}).get("causes") or [])
                verdict = "allowed" if resp.get("allowed") else f"denied {resp.get('status', {}).get('code')}"
            except Exception:
                w, causes, verdict = 0, 0, "?"
            tried.append((len(answer), label, len(body), n, status, verdict, w, causes))
            if best is None or len(answer) > best[0]:
                best = (len(answer), body, label)
        except Exception as e:
            tried.append((0, label, len(body), n, classify(e), "", 0, 0))
        finally:
            if conn is not None:
                conn.close()
    notes = "shapes tried (request → answer): " + "; ".join(
        f"{label} ×{n}: {kb(size)} → {alen} B, HTTP {st} {verdict}, {w} warnings, {c} causes"
        for alen, label, size, n, st, verdict, w, c in tried)
    if best is not None:
        res, sizes = hammer(A, 2, [best[1]], ips=ATTACK_IPS[:2])
        notes = (f"largest answer: {best[2]}: request {len(best[1])} B → answer {best[0]} B "
                 f"(ratio {best[0] / len(best[1]):.4f}); repeated by 2 clients: {hammer_notes(res, sizes, len(best[1]))}. "
                 + notes)
    return notes


def atk_answer_237k(A):
    return answer_attack(A, "answers_237k")


def atk_answer_1_5m(A):
    return answer_attack(A, "answers_1_5m")


def atk_shutdown(A):
    b = BODIES["blocked7m"]
    res, sizes = hammer(A, 2, [b], path="/validate?timeout=30s", ips=ATTACK_IPS[:2], split_at_sigterm=True)
    return f"2 clients posting {kb(len(b))} CPU-bound reviews: {fmt_counter(res)}"


def atk_shutdown_stall(A):
    opener = stall_opener(A, 65536, "?timeout=1h", 1024)
    fate = []

    def watch(sock):
        # What the stalled upload gets, and when, counted from SIGTERM.
        try:
            sock.settimeout(70.0)
            status, _, _ = Http(sock).response(70.0)
            out = f"HTTP {status}"
        except Exception as e:
            out = classify(e)
        at = A.sigterm_at.value
        fate.append(f"{out} {time.time() - at:.1f} s after SIGTERM" if at else f"{out} before SIGTERM")

    held = []
    try:
        held.append(opener(ATTACK_IPS[-1]))
        note = "1 stalled upload (64 KiB declared, 1 KiB sent, ?timeout=1h) + "
    except Exception as e:
        note = f"stalled upload failed ({classify(e)}) + "
    watcher = None
    if held:
        watcher = threading.Thread(target=watch, args=(held[0],), daemon=True)
        watcher.start()
    try:
        notes = atk_shutdown(A)
        if watcher is not None:
            watcher.join(60)
        return note + notes + f"; the stalled upload got: {fate[0] if fate else 'nothing yet'}"
    finally:
        for s in held:
            s.close()


def attack_main(fn, wport, pport, go, stop, sigterm_at, q):
    die_with_parent()
    global _CTX
    _CTX = None
    go.wait(60)
    A = Ctx(wport, pport, stop, sigterm_at)
    try:
        notes = fn(A)
    except Exception:
        notes = "attack error: " + traceback.format_exc().strip().splitlines()[-1]
        sys.stderr.write(traceback.format_exc())
    q.put(notes)


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------

# name: (description, function, extra server flags, bodies needed, kind)
ATTACKS = collections.OrderedDict([
    ("baseline", ("no attack (reference)", atk_baseline, [], [], "")),
    ("big-import", ("1. 40,000 allowedRegistriesForImport globs (~1.5 MB), 2 concurrent, repeated",
                    atk_big_import, [], ["import40k"], "")),
    ("import-6000", ("2a. 6,000 import globs (~254 KiB), 8 concurrent, repeated", atk_import_6000, [], ["import6000"], "")),
    ("zeros-7m", ("2b. 7 MiB body of `[0,0,…]` in blockedRegistries, 2 concurrent, repeated",
                  atk_zeros_7m, [], ["zeros7m"], "")),
    ("stall-7m", ("3a. 1,024 conns (127.0.0.2–.20) declaring 7 MiB, 64 KiB sent, stalled", atk_stall_7m, [], [], "")),
    ("stall-7m-1h", ("3b. as 3a with `?timeout=1h`", atk_stall_7m_1h, [], [], "")),
    ("stall-small-1h", ("3c. as 3b declaring 256 KiB (small-body budget)", atk_stall_small_1h, [], [], "")),
    ("noread", ("3d. 1,024 conns that send a review and never read the answer", atk_noread, [], ["noread"], "")),
    ("idle-hoard", ("4. 1,024 conns (127.0.0.2–.20), one review each, then idle", atk_idle, [], [], "")),
    ("probe-one", ("5a. 96 idle keep-alive conns to the probe port from one address", atk_probe_one, [], [], "")),
    ("probe-many", ("5b. 96 idle keep-alive conns to the probe port from 19 addresses", atk_probe_many, [], [], "")),
    ("timeout-flood", ("6. `?timeout=99999999999999999999` flood (+ stalled bodies with odd timeouts)",
                       atk_timeout_flood, [], [], "")),
    ("log-inject", ("7a. log injection: control characters in uid, name, kind, values",
                    atk_log_inject, ["--log-format", "text", "--log-level", "info"], ["log_inject"], "log")),
    ("log-flood", ("7b. log flood: 1 MiB uids as fast as possible",
                   atk_log_flood, ["--log-format", "text", "--log-level", "info"], ["log_flood"], "log")),
    ("answer-237k", ("8a. ~237 KB request full of warnings/errors: answer size", atk_answer_237k, [], ["answers_237k"], "")),
    ("answer-1.5m", ("8b. ~1.5 MB request full of warnings/errors: answer size", atk_answer_1_5m, [], ["answers_1_5m"], "")),
    ("shutdown-30s", ("9a. SIGTERM during CPU-bound 7 MiB reviews, default --shutdown-timeout 30s",
                      atk_shutdown, [], ["blocked7m"], "sigterm")),
    ("shutdown-5s", ("9b. as 9a with --shutdown-timeout 5s", atk_shutdown, ["--shutdown-timeout", "5s"], ["blocked7m"], "sigterm")),
    ("shutdown-stall", ("9c. as 9a plus one stalled upload (`?timeout=1h`) in flight",
                        atk_shutdown_stall, [], ["blocked7m"], "sigterm")),
    ("shutdown-stall-5s", ("9d. as 9c with --shutdown-timeout 5s",
                           atk_shutdown_stall, ["--shutdown-timeout", "5s"], ["blocked7m"], "sigterm")),
])

BUILDERS = {
    "import40k": body_import40k,
    "import6000": body_import6000,
    "zeros7m": body_zeros7m,
    "blocked7m": body_blocked7m,
    "noread": body_noread,
    "log_inject": bodies_log_inject,
    "log_flood": bodies_log_flood,
    "answers_237k": lambda: answer_shapes(237 * 1000),
    "answers_1_5m": lambda: answer_shapes(1_500_000),
}


# ---------------------------------------------------------------------------------------------
# One attack against a fresh server
# ---------------------------------------------------------------------------------------------


def metric_deltas(m0, m1):
    def delta(key):
        return m1.get(key, 0.0) - m0.get(key, 0.0)

    parts = []
    rej = collections.Counter()
    conn_rej = collections.Counter()
    codes = collections.Counter()
    for key in set(m0) | set(m1):
        d = delta(key)
        if not d:
            continue
        if key.startswith("image_config_webhook_requests_rejected_total{"):
            rej[re.search(r'reason="([^"]*)"', key).group(1)] += int(d)
        elif key.startswith("image_config_webhook_connections_rejected_total{"):
            lab = dict(re.findall(r'(\w+)="([^"]*)"', key))
            conn_rej[f"{lab.get('listener')}/{lab.get('reason')}"] += int(d)
        elif key.startswith("image_config_webhook_requests_total{"):
            lab = dict(re.findall(r'(\w+)="([^"]*)"', key))
            codes[lab.get("code", "?")] += int(d)
    if codes:
        parts.append("requests_total by code: " + ", ".join(f"{k} +{v}" for k, v in sorted(codes.items())))
    parts.append("requests_rejected: " + (", ".join(f"{k} +{v}" for k, v in sorted(rej.items())) or "none"))
    parts.append("connections_rejected: " + (", ".join(f"{k} +{v}" for k, v in sorted(conn_rej.items())) or "none"))
    return "; ".join(parts)


def measure_recovery(srv, idle_rss):
    """After the attack: how long until the webhook's open connections (and requests in flight,
    reviews running) are back to 0 and VmRSS stops moving (range over 1 s within 1 MiB or 2%);
    then whether a fresh client is served."""
    t0 = time.monotonic()
    samples = []
    conns_at = None
    settled_at = None
    last = {}
    for _ in range(1000):
        t = time.monotonic() - t0
        if t > 60:
            break
        try:
            rss = proc_status(srv.pid)["VmRSS"]
        except (OSError, KeyError):
            return "the server is gone"
        try:
            m = scrape(srv.pport, 2.0)
            busy = m.get(OPEN_WEBHOOK, 0) + m.get(IN_FLIGHT, 0) + m.get(REVIEWS_RUNNING, 0)
            last = m
        except Exception:
            busy = None
        samples.append((t, rss))
        if busy == 0:
            conns_at = t if conns_at is None else conns_at
        else:
            conns_at = None
        window = [r for tt, r in samples if tt >= t - 1.0]
        if (conns_at is not None and t >= 1.0 and len(window) >= 5
                and max(window) - min(window) <= max(1024, 0.02 * max(window))):
            settled_at = t
            break
        time.sleep(0.1)
    rss_now = samples[-1][1] if samples else 0
    if conns_at is None:
        out = (f"NOT settled in 60 s (open {last.get(OPEN_WEBHOOK)}, in flight {last.get(IN_FLIGHT)}, "
               f"running {last.get(REVIEWS_RUNNING)})")
    elif settled_at is None:
        out = f"conns 0 after {conns_at:.1f} s; RSS still moving after 60 s ({rss_now / 1024:.0f} MiB)"
    else:
        out = (f"conns 0 after {conns_at:.1f} s; RSS settled after {settled_at:.1f} s at "
               f"{rss_now / 1024:.0f} MiB (idle {idle_rss / 1024:.0f})")
    t1 = time.monotonic()
    conn = None
    try:
        conn = Http(tls(srv.wport, GOOD_IP, 5.0))
        conn.post("/validate?timeout=10s", good_body(777))
        status, _, body = conn.response(10.0)
        ok, reason = verdict_ok(status, body, "good-%012d" % 777)
        out += f"; fresh client {'served' if ok else 'FAILED: ' + reason} ({(time.monotonic() - t1) * 1000:.0f} ms)"
    except Exception as e:
        out += f"; fresh client FAILED: {classify(e)}"
    finally:
        if conn is not None:
            conn.close()
    return out


def check_log(text):
    """Did anything request-derived start a log line of its own, or reach the terminal raw?"""
    lines = text.split(b"\n")
    forged_starts = sum(1 for l in lines if l.lstrip(b"\r").startswith((b"2026-01-01T00:00:00", b"FORGED")))
    raw_esc = text.count(b"\x1b")
    raw_cr = text.count(b"\r")
    raw_nul = text.count(b"\x00")
    u2028 = text.count("\u2028".encode())
    escaped = text.count(b"\\n") + text.count(b"\\u{1b}")
    return (f"log check: {len(lines) - 1} lines; lines starting with forged text {forged_starts}; "
            f"raw ESC {raw_esc}, CR {raw_cr}, NUL {raw_nul}, U+2028 {u2028}; escaped \\n/\\u{{1b}} {escaped}")


def run_attack(name, workdir):
    desc, fn, flags, _, kind = ATTACKS[name]
    log(f"{name}: {desc}")
    row = {"name": name, "desc": desc}
    srv = Server(name, flags, workdir)
    procs = []
    mon = None
    try:
        idle_rss = proc_status(srv.pid)["VmRSS"]
        m0 = scrape(srv.pport)
        go, stop, ready, astop = MP.Event(), MP.Event(), MP.Event(), MP.Event()
        sigterm_at = MP.Value("d", 0.0)
        gq, aq = MP.Queue(), MP.Queue()
        good = MP.Process(target=good_client_main, args=(srv.wport, srv.pport, go, stop, ready, gq), daemon=True)
        good.start()
        procs.append(good)
        LIVE["procs"].append(good)
        if not ready.wait(15):
            raise RuntimeError("the good client was never served before the attack")
        attacker = MP.Process(target=attack_main, args=(fn, srv.wport, srv.pport, go, astop, sigterm_at, aq), daemon=True)
        attacker.start()
        procs.append(attacker)
        LIVE["procs"].append(attacker)

        with open(f"/proc/{srv.pid}/clear_refs", "w") as f:
            f.write("5")
        cpu0 = proc_cpu(srv.pid)
        log0 = srv.log_size()
        mon = Monitor(srv)
        mon.start()
        t_start = time.time()
        go.set()

        exit_note = None
        if kind == "sigterm":
            # SIGTERM once a large review is running (at least 1 s in, at most DURATION).
            t_begin = time.monotonic()
            for _ in range(10_000):
                elapsed = time.monotonic() - t_begin
                if elapsed >= DURATION:
                    break
                try:
                    if elapsed >= min(1.0, DURATION / 3) and scrape(srv.pport, 1.0).get(REVIEWS_RUNNING, 0) >= 1:
                        break
                except Exception:
                    pass
                time.sleep(0.05)
            cpu_at_sig = proc_cpu(srv.pid)
            t_sig = time.monotonic()
            sigterm_at.value = time.time()
            srv.proc.send_signal(signal.SIGTERM)
            try:
                rc = srv.proc.wait(60)
                exit_note = f"exited {time.monotonic() - t_sig:.2f} s after SIGTERM (rc {rc})"
            except subprocess.TimeoutExpired:
                srv.proc.kill()
                rc = srv.proc.wait(5)
                exit_note = f"NOT exited 60 s after SIGTERM: SIGKILLed (rc {rc})"
            log(f"{name}: {exit_note}")
            astop.set()
            row["cpu"] = (mon.cpu or cpu_at_sig) - cpu0
        try:
            notes = aq.get(timeout=DURATION + 120)
        except Exception:
            notes = "the attack did not report in time"
        astop.set()
        attacker.join(30)
        if attacker.is_alive():
            attacker.kill()
            attacker.join(5)
        t_end = time.time()
        stop.set()
        try:
            events = gq.get(timeout=45)
        except Exception:
            events = []
        good.join(10)
        if good.is_alive():
            good.kill()
            good.join(5)

        if srv.alive():
            row["cpu"] = proc_cpu(srv.pid) - cpu0
            hwm_attack = proc_status(srv.pid)["VmHWM"]
        else:
            hwm_attack = mon.hwm
        max_conns = mon.max_conns
        max_running = mon.max_running

        # For a shutdown, the good client's figures are those up to SIGTERM (a stopping server
        # refuses new connections by design); what it saw after is in the recovery column.
        g = summarize_good(events, t_start, sigterm_at.value if sigterm_at.value else t_end)
        if kind == "sigterm" and sigterm_at.value:
            before = summarize_good(events, t_start, sigterm_at.value)["review"]
            after_all = summarize_good(events, sigterm_at.value, t_end)
            after, hz_after = after_all["review"], after_all["healthz"]
            exit_note += (f"; good client before SIGTERM {before['ok']}/{before['n']}, after "
                          f"{after['ok']}/{after['n']} ({fmt_counter(after['reasons'], 3)}); "
                          f"/healthz after SIGTERM {hz_after['ok']}/{hz_after['n']} OK")
        row["good"] = g
        if srv.alive():
            row["recovery"] = measure_recovery(srv, idle_rss)
            row["hwm"] = max(hwm_attack, proc_status(srv.pid)["VmHWM"])
            try:
                m1 = scrape(srv.pport)
                deltas = metric_deltas(m0, m1)
            except Exception as e:
                deltas = f"metrics unavailable ({classify(e)})"
        else:
            row["recovery"] = exit_note or "the server died"
            row["hwm"] = hwm_attack
            deltas = "metrics: the server has exited"
        row["idle_rss"] = idle_rss
        log_bytes = srv.log_size() - log0
        extra = [notes, f"max open webhook conns {max_conns}, max reviews running {max_running}", deltas,
                 f"server log +{log_bytes} B ({log_bytes / DURATION / 1024:.1f} KiB/s)"]
        if kind == "log":
            with open(srv.log_path, "rb") as f:
                f.seek(log0)
                extra.append(check_log(f.read()))
        if g["review"]["reasons"]:
            extra.append("good-client failures: " + fmt_counter(g["review"]["reasons"], 4))
        if g["fresh"]["reasons"]:
            extra.append("fresh-connection failures: " + fmt_counter(g["fresh"]["reasons"], 4))
        if g["healthz"]["reasons"]:
            extra.append("/healthz failures: " + fmt_counter(g["healthz"]["reasons"], 4))
        row["notes"] = "; ".join(extra)
    finally:
        if mon is not None:
            mon.halt.set()
            mon.join(5)
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
            if p in LIVE["procs"]:
                LIVE["procs"].remove(p)
        srv.stop()
    return row


def cell(s):
    return str(s).replace("|", "/").replace("\n", " ")


def format_row(row):
    if "error" in row:
        return f"| `{row['name']}` {cell(row['desc'])} | – | – | – | – | – | – | ERROR: {cell(row['error'])} |"
    g = row["good"]
    r = g["review"]
    f = g["fresh"]
    h = g["healthz"]
    succ = f"{100.0 * r['ok'] / r['n']:.1f}% ({r['ok']}/{r['n']})" if r["n"] else "no requests"
    succ += f"; fresh conns {f['ok']}/{f['n']}"
    p50, p99 = pct(r["lat"], 0.5), pct(r["lat"], 0.99)
    lat = f"{p50 * 1000:.1f} / {p99 * 1000:.1f} ms" if p50 is not None else "–"
    hz = f"{h['n'] - h['ok']}/{h['n']}"
    rss = f"{row['hwm'] / 1024:.0f} (idle {row['idle_rss'] / 1024:.0f})"
    cpu = f"{row.get('cpu', 0):.2f}"
    return (f"| `{row['name']}` {cell(row['desc'])} | {succ} | {lat} | {hz} | {rss} | {cpu} | "
            f"{cell(row['recovery'])} | {cell(row['notes'])} |")


HEADER = ("| attack | good-client success | good p50 / p99 | /healthz failures | peak RSS (MiB) | server CPU (s) "
          "| recovery | notes (metric deltas, answer sizes) |\n|---|---|---|---|---|---|---|---|")


def cleanup():
    for p in list(LIVE["procs"]):
        try:
            if p.is_alive():
                p.kill()
                p.join(5)
        except Exception:
            pass
    for s in list(LIVE["servers"]):
        try:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(5)
        except Exception:
            pass


def main():
    global CERT_DIR
    names = list(ATTACKS)
    only = os.environ.get("ONLY", "").strip()
    if only == "list":
        for n, (d, *_rest) in ATTACKS.items():
            print(f"{n}\t{d}")
        return 0
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in names if n not in ATTACKS]
        if unknown:
            sys.exit(f"unknown attack(s) {unknown}; known: {', '.join(ATTACKS)}")
    if not os.access(BIN, os.X_OK):
        sys.exit(f"no executable at BIN={BIN}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # 1,024 attack connections in one process, and as many in the server (which inherits this).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    workdir = tempfile.mkdtemp(prefix="redteam-")
    try:
        if not CERT_DIR:
            CERT_DIR = os.path.join(workdir, "certs")
            subprocess.run([BIN, "certs", "--out", CERT_DIR], check=True, stdout=subprocess.DEVNULL)
        log(f"good review: {len(GOOD)} B; DURATION {DURATION:g} s; attacks: {', '.join(names)}")
        needed = sorted({b for n in names for b in ATTACKS[n][3]})
        for b in needed:
            t = time.monotonic()
            BODIES[b] = BUILDERS[b]()
            v = BODIES[b]
            size = len(v) if isinstance(v, bytes) else sum(len(x[1] if isinstance(x, tuple) else x) for x in v)
            log(f"built {b}: {size} B in {time.monotonic() - t:.1f} s")
        rows = []
        for name in names:
            t = time.monotonic()
            try:
                row = run_attack(name, workdir)
            except Exception as e:
                traceback.print_exc()
                row = {"name": name, "desc": ATTACKS[name][0], "error": f"{type(e).__name__}: {e}"}
            rows.append(row)
            log(f"{name} done in {time.monotonic() - t:.0f} s: {format_row(row)}")
        print(f"Red-team run: DURATION {DURATION:g} s per attack; {os.cpu_count()} cores; fresh server per attack "
              f"(`serve` defaults + --probe-addr); good client: one keep-alive HTTPS connection from 127.0.0.1 posting "
              f"a {len(GOOD)} B allowed UPDATE to /validate?timeout=10s every 20 ms, a new connection with one review "
              f"every 0.5 s (\"fresh conns\"), GET /healthz on the probe port every 100 ms (new connection, 1 s timeout).")
        print()
        print(HEADER)
        for row in rows:
            print(format_row(row))
        sys.stdout.flush()
        keep = os.environ.get("KEEP_LOGS")
        if keep:
            os.makedirs(keep, exist_ok=True)
            for fn in os.listdir(workdir):
                if fn.endswith(".log"):
                    shutil.copy(os.path.join(workdir, fn), keep)
        return 0
    finally:
        cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
