#!/usr/bin/python3
"""Side-by-side benchmark: the same non-streamed chat, direct to the LM Studio emulator and through
each gateway (nginx, Portkey, lmgate over gRPC per driver, lmgate's HTTP ingress when it is
built), driven by h2load so that the load generator costs little next to what it measures.
Cluster mode (issue 14) gets two rows of its own: one API-key tenant with a quota (so every call
takes the quota path) on an embedded lmgate, and the same tenant on an lmgate with
cluster.redis_url pointing at a redis-server the script starts on a free loopback port (the shared
quota check: a Lua script in Redis per call); the report adds Redis's own CPU per call.

Every path gets the same upstream (one emulator process, ttft 0, as fast as possible, N-token
answers). For each path and rate: h2load --rps (open loop, one request in flight per connection)
with a per-request log, from which p50/p99/p99.9 are computed; the gateway's CPU is read from
/proc (utime + stime of its processes) around the run and divided by the requests served. Then a
closed loop (c connections, back to back) gives capacity. 'added' = path − direct at the same
percentile and rate. Prints a markdown report (and writes it with --report).

Run it through tests/bench/peers/run.sh, which builds the binaries and installs the peers.
"""
import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

MODEL = "qwen/qwen3-4b"
# The benchmark tenant's key (loopback only) and a quota it never reaches: every call takes the
# quota path (check + stream permit + release) and none is refused.
BENCH_KEY = "peer-bench-7c1e9a4f2b6d"
BENCH_QUOTA = {"requests_per_minute": 1000000000, "concurrent_streams": 1000000}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30.0, expect=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                body = r.read().decode()
                if expect is None or expect in body:
                    return
                last = body[:200]
        except Exception as e:  # noqa: BLE001 - any failure means "not up yet"
            last = str(e)
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout}s: {last}")


def wait_tcp(port, timeout=30.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = ""
            if getattr(proc, "log_path", None):
                with open(proc.log_path) as f:
                    tail = f.read()[-2000:]
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode} before listening on "
                               f"{port}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def proc_cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except OSError:
            pass
    return total / CLK_TCK


def proc_rss_mb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def children_of(pid):
    out = [pid]
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.append(int(p))
        except OSError:
            pass
    return out


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[i]


class Path:
    """One way to reach the upstream: a URL, a request body, headers, and the processes to meter."""

    def __init__(self, name, url, body, headers, h2, pids_fn, store_pids_fn=None):
        self.name, self.url, self.body, self.headers, self.h2 = name, url, body, headers, h2
        self.pids_fn = pids_fn  # () -> pids of the gateway (empty for direct)
        # () -> pids of the state store the gateway uses (redis-server in cluster mode), metered
        # apart from the gateway.
        self.store_pids_fn = store_pids_fn


def run_h2load(path, body_file, n, clients, rps, log_file):
    cmd = ["h2load", "-n", str(n), "-c", str(clients), "-m", "1", "-t", "1", "-d", body_file,
           "--log-file", log_file]
    if not path.h2:
        cmd.append("--h1")
    if rps:
        cmd += ["--rps", str(rps)]
    for h in path.headers:
        cmd += ["-H", h]
    cmd.append(path.url)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"h2load failed for {path.name}: {r.stderr or r.stdout}")
    return r.stdout


def parse_log(log_file):
    lat, bad = [], 0
    with open(log_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            status, dur = int(parts[1]), int(parts[2])
            if status != 200:
                bad += 1
            lat.append(dur)
    lat.sort()
    return lat, bad


def measure(path, body_file, n, clients, rps):
    pids = path.pids_fn()
    store = path.store_pids_fn() if path.store_pids_fn else []
    cpu0 = proc_cpu_seconds(pids)
    store0 = proc_cpu_seconds(store)
    with tempfile.NamedTemporaryFile(suffix=".log", delete=False) as tf:
        log_file = tf.name
    t0 = time.time()
    out = run_h2load(path, body_file, n, clients, rps, log_file)
    elapsed = time.time() - t0
    cpu = proc_cpu_seconds(pids) - cpu0
    store_cpu = proc_cpu_seconds(store) - store0
    lat, bad = parse_log(log_file)
    os.unlink(log_file)
    ok = len(lat) - bad
    rate = None
    for line in out.splitlines():
        if line.startswith("finished in"):
            # "finished in 1.00s, 200.00 req/s, 1.2MB/s"
            rate = float(line.split(",")[1].split()[0])
    return {
        "n": len(lat), "errors": bad + (n - len(lat)), "p50": percentile(lat, 0.50),
        "p99": percentile(lat, 0.99), "p999": percentile(lat, 0.999),
        "cpu_us_per_call": (cpu / ok * 1e6) if (pids and ok) else None,
        "store_cpu_us_per_call": (store_cpu / ok * 1e6) if (store and ok) else None,
        "req_s": rate if rate is not None else (len(lat) / elapsed if elapsed else 0),
        "rss_mb": proc_rss_mb(pids) if pids else None,
    }


def chat_json(answer_tokens):
    return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": answer_tokens, "stream": False})


def grpc_chat_body(protoc, proto_root, driver):
    text = (f'model: "{MODEL}" messages {{ role: "user" content: "hi" }} '
            f"driver: {driver} no_deltas: true quiet: true")
    r = subprocess.run([protoc, f"-I{proto_root}", "--encode=lmgate.v1.ChatRequest",
                        "lmgate/v1/inference.proto"], input=text.encode(), capture_output=True,
                       check=True)
    msg = r.stdout
    return b"\x00" + len(msg).to_bytes(4, "big") + msg


def verify_grpc(port, body, key=None):
    """h2load sees HTTP 200 for every gRPC call; check once that the call really ends OK."""
    import grpc  # Debian's python3-grpcio
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_stream("/lmgate.v1.Inference/Chat", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
        metadata = [("x-api-key", key)] if key else None
        replies = list(call(body[5:], timeout=30, metadata=metadata))
        if not replies:
            raise RuntimeError("lmgate answered the benchmark's Chat with no message")


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, name, cmd, **kw):
        log = open(os.path.join(self.logdir, f"{name}.log"), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                             **kw)
        p.log_path = log.name
        self.procs.append((name, p))
        return p

    def stop_all(self):
        """SIGTERM to every process; returns {name: exit status} (-9 when it had to be killed)."""
        for name, p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        codes = {}
        for name, p in reversed(self.procs):
            try:
                codes[name] = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                codes[name] = -9
        return codes


def fmt(v, digits=0):
    if v is None:
        return "—"
    if isinstance(v, float) and v != v:
        return "—"
    return f"{v:,.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lmgate", required=True)
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--protoc", default="protoc")
    ap.add_argument("--proto_root", required=True)
    ap.add_argument("--portkey_dir", default="", help="npm dir holding @portkey-ai/gateway")
    ap.add_argument("--redis_server", default="redis-server",
                    help="for the cluster-mode row; not found = that row is not measured")
    ap.add_argument("--rates", default="200,1000,2000")
    ap.add_argument("--seconds", type=float, default=10, help="per open-loop rate")
    ap.add_argument("--closed_requests", type=int, default=20000)
    ap.add_argument("--closed_clients", type=int, default=8)
    ap.add_argument("--answer_tokens", type=int, default=8)
    ap.add_argument("--paths", default="", help="comma list; empty = all available")
    ap.add_argument("--report", default="")
    ap.add_argument("--short", action="store_true", help="CI: a second per path, figures only")
    args = ap.parse_args()
    if args.short:
        args.rates, args.seconds, args.closed_requests = "200", 1, 400

    procs = Procs()
    procs.logdir = tempfile.mkdtemp(prefix="lmgate-peer-bench-",
                                    dir=os.environ.get("TEST_TMPDIR"))
    lines = []

    def out(s=""):
        lines.append(s)
        print(s, flush=True)

    try:
        emu_port = free_port()
        procs.start("emulator", [args.emulator, f"--port={emu_port}", "--ttft_ms=0",
                                 "--tokens_per_second=0", "--parallel=1000000",
                                 f"--min_response_tokens={args.answer_tokens}",
                                 f"--max_response_tokens={args.answer_tokens}"])
        wait_http(f"http://127.0.0.1:{emu_port}/v1/models")
        emu = f"http://127.0.0.1:{emu_port}"

        # lmgate (gRPC + the HTTP ingress if this build has one).
        grpc_port, http_port = free_port(), free_port()
        config = {
            "listen": f"127.0.0.1:{grpc_port}", "lmstudio": {"url": emu},
            "drivers": ["sdk_ws", "rest", "openai"], "default_model": MODEL,
            "metrics_listen": "", "log_level": "warn",
            "admission": {"concurrency_per_model": 1000000, "max_queue_per_model": 1000000},
            "models": {MODEL: {"context_length": 40960, "keep_loaded": True}},
        }
        help_text = subprocess.run([args.lmgate, "--helpfull"], capture_output=True,
                                   text=True).stdout
        has_ingress = "http_listen" in help_text
        if has_ingress:
            config["http_listen"] = f"127.0.0.1:{http_port}"
        cfg = os.path.join(procs.logdir, "lmgate.json")
        with open(cfg, "w") as f:
            json.dump(config, f)
        lmgate = procs.start("lmgate", [args.lmgate, f"--config={cfg}"])
        wait_tcp(grpc_port, proc=lmgate)
        # The model is loaded (keep_loaded) before any path is measured: wait for it.
        deadline = time.time() + 30
        while time.time() < deadline:
            with urllib.request.urlopen(f"{emu}/api/v0/models/{MODEL}") as r:
                if json.loads(r.read()).get("state") == "loaded":
                    break
            time.sleep(0.05)

        # The quota rows: the same tenant and quota on an embedded lmgate and on one in cluster
        # mode, sharing the quota through a redis-server of their own.
        quota_config = dict(config, keys=[dict(tenant="bench", roles=["inference"],
                                               key_sha256=hashlib.sha256(
                                                   BENCH_KEY.encode()).hexdigest(),
                                               **BENCH_QUOTA)])
        quota_config.pop("http_listen", None)

        def start_lmgate(name, extra):
            port = free_port()
            c = dict(quota_config, listen=f"127.0.0.1:{port}", **extra)
            path = os.path.join(procs.logdir, f"{name}.json")
            with open(path, "w") as f:
                json.dump(c, f)
            p = procs.start(name, [args.lmgate, f"--config={path}"])
            wait_tcp(port, proc=p)
            return p, port

        embedded_q, embedded_q_port = start_lmgate("lmgate-quota", {})
        redis = cluster_q = None
        redis_bin = subprocess.run(["which", args.redis_server], capture_output=True,
                                   text=True).stdout.strip()
        if redis_bin:
            redis_port = free_port()
            redis = procs.start("redis", [redis_bin, "--port", str(redis_port), "--bind",
                                          "127.0.0.1", "--save", "", "--appendonly", "no"])
            wait_tcp(redis_port, proc=redis)
            cluster_q, cluster_q_port = start_lmgate(
                "lmgate-cluster", {"cluster": {"redis_url": f"redis://127.0.0.1:{redis_port}"}})

        nginx_port = free_port()
        nginx_conf = os.path.join(procs.logdir, "nginx.conf")
        with open(nginx_conf, "w") as f:
            # As root nginx hands its temp dirs to "nobody", which a sandbox's user namespace
            # may not map; the worker keeps the benchmark's user instead.
            if os.geteuid() == 0:
                f.write("user root;\n")
            f.write(f"""daemon off; worker_processes 1; pid {procs.logdir}/nginx.pid;
error_log {procs.logdir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {procs.logdir};
  proxy_temp_path {procs.logdir}; fastcgi_temp_path {procs.logdir};
  uwsgi_temp_path {procs.logdir}; scgi_temp_path {procs.logdir};
  upstream emu {{ server 127.0.0.1:{emu_port}; keepalive 64; }}
  server {{ listen 127.0.0.1:{nginx_port};
    location / {{ proxy_pass http://emu; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_buffering off; }} }} }}
""")
        nginx = None
        if subprocess.run(["which", "nginx"], capture_output=True).returncode == 0:
            nginx = procs.start("nginx", ["nginx", "-c", nginx_conf, "-p", procs.logdir, "-e",
                                           os.path.join(procs.logdir, "nginx-error.log")])
            wait_tcp(nginx_port, proc=nginx)
        portkey = None
        pk_port = free_port()
        pk_js = os.path.join(args.portkey_dir, "node_modules/@portkey-ai/gateway/build/"
                             "start-server.js") if args.portkey_dir else ""
        if pk_js and os.path.exists(pk_js):
            portkey = procs.start("portkey", ["node", pk_js, f"--port={pk_port}", "--headless"],
                                  env=dict(os.environ, NODE_ENV="production"))
            wait_http(f"http://127.0.0.1:{pk_port}/", expect="hey")

        body_dir = procs.logdir
        json_body = os.path.join(body_dir, "chat.json")
        with open(json_body, "w") as f:
            f.write(chat_json(args.answer_tokens))
        grpc_bodies = {}
        for drv in ("DRIVER_OPENAI", "DRIVER_SDK"):
            p = os.path.join(body_dir, f"{drv}.bin")
            with open(p, "wb") as f:
                f.write(grpc_chat_body(args.protoc, args.proto_root, drv))
            grpc_bodies[drv] = p

        for p in grpc_bodies.values():
            with open(p, "rb") as f:
                verify_grpc(grpc_port, f.read())
        with open(grpc_bodies["DRIVER_OPENAI"], "rb") as f:
            body = f.read()
            verify_grpc(embedded_q_port, body, BENCH_KEY)
            if cluster_q:
                verify_grpc(cluster_q_port, body, BENCH_KEY)

        jh = ["content-type: application/json"]
        gh = ["content-type: application/grpc", "te: trailers"]
        paths = [(Path("direct to the emulator", f"{emu}/v1/chat/completions", json_body, jh,
                       False, lambda: []))]
        if nginx:
            paths.append(Path("nginx reverse proxy (Debian nginx-light)",
                              f"http://127.0.0.1:{nginx_port}/v1/chat/completions", json_body,
                              jh, False, lambda: children_of(nginx.pid)))
        if portkey:
            paths.append(Path("Portkey gateway 1.15.2 (npm, Node)",
                              f"http://127.0.0.1:{pk_port}/v1/chat/completions", json_body,
                              jh + ["x-portkey-provider: openai",
                                    f"x-portkey-custom-host: {emu}/v1",
                                    "authorization: Bearer bench"], False,
                              lambda: children_of(portkey.pid)))
        lm_pids = lambda: [lmgate.pid]  # noqa: E731
        paths.append(Path("lmgate gRPC, driver openai",
                          f"http://127.0.0.1:{grpc_port}/lmgate.v1.Inference/Chat",
                          grpc_bodies["DRIVER_OPENAI"], gh, True, lm_pids))
        paths.append(Path("lmgate gRPC, driver sdk_ws",
                          f"http://127.0.0.1:{grpc_port}/lmgate.v1.Inference/Chat",
                          grpc_bodies["DRIVER_SDK"], gh, True, lm_pids))
        kh = gh + [f"x-api-key: {BENCH_KEY}"]
        paths.append(Path("lmgate gRPC, tenant with a quota, embedded",
                          f"http://127.0.0.1:{embedded_q_port}/lmgate.v1.Inference/Chat",
                          grpc_bodies["DRIVER_OPENAI"], kh, True, lambda: [embedded_q.pid]))
        if cluster_q:
            paths.append(Path("lmgate gRPC, cluster mode (Redis)",
                              f"http://127.0.0.1:{cluster_q_port}/lmgate.v1.Inference/Chat",
                              grpc_bodies["DRIVER_OPENAI"], kh, True, lambda: [cluster_q.pid],
                              lambda: [redis.pid]))
        if has_ingress:
            paths.append(Path("lmgate HTTP ingress (/v1, driver auto)",
                              f"http://127.0.0.1:{http_port}/v1/chat/completions", json_body,
                              jh, False, lm_pids))
        if args.paths:
            want = args.paths.split(",")
            paths = [p for p in paths if any(w in p.name for w in want) or p is paths[0]]

        rates = [int(r) for r in args.rates.split(",")]
        results = {}
        for path in paths:
            # Warm-up: connections, the driver's sockets, caches.
            measure(path, path.body, 200, 4, 0)
            for rate in rates:
                clients = max(1, rate // 100)
                n = int(rate * args.seconds)
                results[(path.name, rate)] = measure(path, path.body, n, clients, rate / clients)
            results[(path.name, "closed")] = measure(path, path.body, args.closed_requests,
                                                     args.closed_clients, 0)

        out(f"# lmgate peer benchmark ({'--short' if args.short else 'full'})")
        out()
        out(f"Machine: {os.cpu_count()} cores, load average at end "
            f"{os.getloadavg()[0]:.2f}. Upstream: one emulator process (ttft 0, as fast as "
            f"possible, {args.answer_tokens}-token answers). Load: h2load, one request in flight "
            f"per connection, HTTP/1.1 JSON for the HTTP paths, h2c gRPC (ChatRequest no_deltas, "
            f"quiet) for lmgate. 'added' = path − direct at the same percentile. CPU: utime+stime "
            f"of the gateway's processes from /proc over the run ÷ requests served.")
        out()
        direct = paths[0].name
        for rate in rates:
            out(f"## open loop at {rate} req/s ({int(rate * args.seconds)} requests)")
            out()
            out("| path | p50 µs | p99 µs | p99.9 µs | added p50 | added p99 | added p99.9 "
                "| gateway CPU µs/call | errors |")
            out("|---|---|---|---|---|---|---|---|---|")
            d = results[(direct, rate)]
            for path in paths:
                r = results[(path.name, rate)]
                added = [None if path.name == direct else r[k] - d[k]
                         for k in ("p50", "p99", "p999")]
                out(f"| {path.name} | {fmt(r['p50'])} | {fmt(r['p99'])} | {fmt(r['p999'])} | "
                    + " | ".join("0" if a is None else f"{a:+,.0f}" for a in added)
                    + f" | {fmt(r['cpu_us_per_call'])} | {r['errors']} |")
            out()
        out(f"## closed loop, c={args.closed_clients}, {args.closed_requests} requests")
        out()
        out("| path | req/s | vs direct | gateway CPU µs/call | RSS MB after | errors |")
        out("|---|---|---|---|---|---|")
        dc = results[(direct, "closed")]["req_s"]
        for path in paths:
            r = results[(path.name, "closed")]
            out(f"| {path.name} | {fmt(r['req_s'])} | {r['req_s'] / dc:.2f} | "
                f"{fmt(r['cpu_us_per_call'])} | {fmt(r['rss_mb'], 1)} | {r['errors']} |")
        out()
        for path in paths:
            if path.store_pids_fn:
                r = results[(path.name, "closed")]
                out(f"{path.name}: redis-server CPU {fmt(r['store_cpu_us_per_call'])} µs/call "
                    f"(closed loop; not in the gateway CPU column). Both quota rows: tenant "
                    f"with requests_per_minute {BENCH_QUOTA['requests_per_minute']:,} and "
                    f"concurrent_streams {BENCH_QUOTA['concurrent_streams']:,}, driver openai.")
                out()
        missing = []
        if not nginx:
            missing.append("nginx (apt-get install nginx-light)")
        if not portkey:
            missing.append("Portkey (tests/bench/peers/run.sh installs it with npm ci)")
        if not cluster_q:
            missing.append(f"cluster mode ({args.redis_server} not found: apt-get install "
                           "redis-server)")
        if not has_ingress:
            missing.append("lmgate's HTTP ingress (this build has no --http_listen)")
        if missing:
            out("Not measured: " + "; ".join(missing) + ".")
        total_errors = sum(r["errors"] for r in results.values())
        if args.report:
            with open(args.report, "w") as f:
                f.write("\n".join(lines) + "\n")
        for p in (lmgate, embedded_q, cluster_q):
            if p is not None and p.poll() is not None:
                print(f"{p.args[0]} exited early ({p.returncode}); logs in {procs.logdir}",
                      file=sys.stderr)
                return 1
        # Every path must have served: a path whose every call failed measured nothing.
        for path in paths:
            r = results[(path.name, "closed")]
            if r["errors"] >= r["n"]:
                print(f"every call failed on {path.name}; logs in {procs.logdir}",
                      file=sys.stderr)
                return 1
        if total_errors:
            print(f"{total_errors} calls failed (see the errors columns); logs in "
                  f"{procs.logdir}", file=sys.stderr)
        status = 0
    finally:
        codes = procs.stop_all()
    # lmgate must exit cleanly on SIGTERM (under ASan this is where a leak or corruption shows).
    for name in ("lmgate", "lmgate-quota", "lmgate-cluster"):
        if codes.get(name, 0) != 0:
            print(f"{name} exited {codes[name]} on SIGTERM; log in {procs.logdir}/{name}.log",
                  file=sys.stderr)
            return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
