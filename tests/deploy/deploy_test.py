#!/usr/bin/python3
"""Checks of deploy/ that need no Docker engine, cluster, Helm or systemd instance.

    deploy_test.py LMGATE_BIN HELM_RENDER_BIN [unittest test names...]

Runs from the Bazel runfiles root (paths like deploy/k8s/deployment.yaml). Uses Debian's
python3-yaml. What each class proves:
  ManifestsTest     every YAML/JSON file in deploy/ parses; the Kubernetes sidecar example is wired
                    up (probes, keys Secret, ConfigMap mount, ports, grace period, resources); no
                    Secret is shipped, and the documented `kubectl create secret` makes every key.
  ClusterOverlayTest deploy/k8s/cluster adds one Redis and points every sidecar at it (the
                    patched container passes --check_config, and fails it without the password).
  HelmChartTest     the chart, rendered by tests/deploy/helm_render (Helm's template engine: Go
                    text/template + sprig), yields the same lmgate config as the ConfigMap and the
                    same lmgate container as the sidecar; it ships no key (an existing Secret, or
                    every key given in values, else it does not render).
  CheckConfigTest   `lmgate --check_config` accepts every config shipped in deploy/ (with freshly
                    generated keys) and refuses them without the keys, or with placeholder/weak ones;
                    it prints the effective config as JSON (every key, flags applied, no
                    secret) and refuses what a start refuses (TLS files, metrics_listen without
                    a port, syntax errors with line:column, duplicate keys, negative counts).
  ConfigDocTest     deploy/CONFIG.md documents every key services/config.cc accepts, with a default.
  DockerfileTest    the runtime stage installs the package of every shared library lmgate needs;
                    the build stage installs the build packages of deploy/setup.sh.
  SystemdUnitTest   `systemd-analyze verify` accepts the unit (run against the built binary).
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

LMGATE = None
HELM_RENDER = None

K8S_DIR = "deploy/k8s"
CHART_DIR = "deploy/helm/lmgate"


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def strip_json_comments(text):
    """lmgate configs are JSON with // comments (outside strings)."""
    out, i, in_str = [], 0, False
    while i < len(text):
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def yaml_docs(path):
    return [d for d in yaml.safe_load_all(read(path)) if d is not None]


def k8s_objects():
    objs = {}
    for name in sorted(os.listdir(K8S_DIR)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            for d in yaml_docs(os.path.join(K8S_DIR, name)):
                objs[(d["kind"], d["metadata"]["name"])] = d
    return objs


def render_chart(chart_dir=CHART_DIR):
    return subprocess.run([HELM_RENDER, chart_dir, "lmgate"], capture_output=True, text=True)


def helm_objects(chart_dir=CHART_DIR):
    r = render_chart(chart_dir)
    if r.returncode != 0:
        raise AssertionError(f"helm_render {chart_dir}: {r.stderr}")
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(r.stdout) if d}


def chart_with_values(**key_secret):
    """A copy of the chart whose values.yaml has keySecret replaced by `key_secret`."""
    tmp = os.path.join(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")), "lmgate")
    shutil.copytree(CHART_DIR, tmp)
    values = yaml_docs(os.path.join(tmp, "values.yaml"))[0]
    values["keySecret"] = key_secret
    with open(os.path.join(tmp, "values.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(values, f)
    return tmp


def chart_with(**overrides):
    """A copy of the chart whose values.yaml has the top-level `overrides` applied."""
    tmp = os.path.join(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")), "lmgate")
    shutil.copytree(CHART_DIR, tmp)
    values = yaml_docs(os.path.join(tmp, "values.yaml"))[0]
    values.update(overrides)
    with open(os.path.join(tmp, "values.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(values, f)
    return tmp


def apply_json_patch(obj, ops):
    """The `add` operations of a JSON patch (RFC 6902) — all the cluster overlay uses."""
    for op in ops:
        assert op["op"] == "add", op
        *path, last = op["path"].lstrip("/").split("/")
        target = obj
        for part in path:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if last == "-":
            target.append(op["value"])
        else:
            target[last] = op["value"]
    return obj


# Keys lmgate refuses (placeholders, short, low variety); none of them may be shipped usable.
WEAK_KEYS = ["replace-me-app-key", "changeme-changeme-1", "example-key-0123456789",
             "aaaaaaaaaaaaaaaaaaaa", "short"]


def config_of(configmap):
    return json.loads(configmap["data"]["lmgate.json"])


def pod_containers(deployment):
    spec = deployment["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}


def key_envs(config):
    return [k["key_env"] for k in config.get("keys", []) if "key_env" in k]


class ManifestsTest(unittest.TestCase):
    def test_every_yaml_and_json_file_parses(self):
        seen = 0
        for root, _, files in os.walk("deploy"):
            for name in files:
                path = os.path.join(root, name)
                if "/templates/" in path:
                    continue  # Go templates; HelmChartTest parses what they render
                if name.endswith((".yaml", ".yml")):
                    self.assertTrue(yaml_docs(path), path)
                    seen += 1
                elif name.endswith(".json"):
                    json.loads(strip_json_comments(read(path)))
                    seen += 1
        self.assertGreaterEqual(seen, 7)

    def test_kustomization_lists_every_manifest(self):
        k = yaml_docs(os.path.join(K8S_DIR, "kustomization.yaml"))[0]
        manifests = sorted(n for n in os.listdir(K8S_DIR)
                           if n.endswith(".yaml") and n != "kustomization.yaml")
        self.assertEqual(sorted(k["resources"]), manifests)

    def test_sidecar_is_wired_to_config_secret_and_probes(self):
        objs = k8s_objects()
        config = config_of(objs[("ConfigMap", "lmgate-config")])
        deployments = [o for (kind, _), o in objs.items() if kind == "Deployment"]
        self.assertEqual(len(deployments), 1)
        dep = deployments[0]
        pod = dep["spec"]["template"]["spec"]
        containers = pod_containers(dep)
        gate, app = containers["lmgate"], containers["app"]
        port = int(config["listen"].rsplit(":", 1)[1])

        # Native sidecar: an init container that keeps running.
        self.assertIn(gate, pod["initContainers"])
        self.assertEqual(gate["restartPolicy"], "Always")
        # gRPC health: liveness on service "", readiness on lmgate.v1.Inference.
        self.assertEqual(gate["livenessProbe"]["grpc"], {"port": port, "service": ""})
        self.assertEqual(gate["readinessProbe"]["grpc"],
                         {"port": port, "service": "lmgate.v1.Inference"})
        self.assertEqual(gate["startupProbe"]["grpc"]["port"], port)
        ports = {p["name"]: p["containerPort"] for p in gate["ports"]}
        self.assertEqual(ports["grpc"], port)
        self.assertEqual(ports["metrics"], int(config["metrics_listen"].rsplit(":", 1)[1]))
        # The config file the args name is the ConfigMap, mounted.
        mount = next(m for m in gate["volumeMounts"] if m["name"] == "lmgate-config")
        self.assertIn(f"--config={mount['mountPath']}/lmgate.json", gate["args"])
        volume = next(v for v in pod["volumes"] if v["name"] == "lmgate-config")
        self.assertEqual(volume["configMap"]["name"], "lmgate-config")
        # Every key_env of the config comes from the Secret, which has it.
        env = {e["name"]: e for e in gate["env"]}
        self.assertTrue(key_envs(config))
        for var in key_envs(config):
            ref = env[var]["valueFrom"]["secretKeyRef"]
            self.assertEqual((ref["name"], ref["key"]), ("lmgate-keys", var))
        # The app reaches lmgate on loopback with a key lmgate knows.
        app_env = {e["name"]: e for e in app["env"]}
        self.assertEqual(app_env["LMGATE_ADDR"]["value"], f"127.0.0.1:{port}")
        self.assertIn(app_env["LMGATE_API_KEY"]["valueFrom"]["secretKeyRef"]["key"],
                      key_envs(config))
        # Running streams can finish (drain delay, then shutdown grace) before the kubelet kills
        # the pod, and the drain lasts until the readiness probe has seen NOT_SERVING.
        self.assertGreater(pod["terminationGracePeriodSeconds"],
                           config["drain_delay_seconds"] + config["shutdown_grace_seconds"])
        ready = gate["readinessProbe"]
        self.assertGreaterEqual(config["drain_delay_seconds"],
                                ready["periodSeconds"] * ready["failureThreshold"])
        for c in containers.values():
            self.assertTrue(c["resources"]["requests"], c["name"])
            self.assertTrue(c["resources"]["limits"], c["name"])
        self.assertTrue(gate["securityContext"]["runAsNonRoot"])


    def test_no_key_secret_is_shipped_and_the_docs_create_every_key(self):
        """`kubectl apply -k` after the documented `kubectl create secret` must not replace the
        keys (a shipped Secret did, with the accepted placeholder replace-me-app-key)."""
        kinds = [kind for (kind, _) in k8s_objects()]
        self.assertNotIn("Secret", kinds)
        config = config_of(k8s_objects()[("ConfigMap", "lmgate-config")])
        for doc in ("deploy/README.md", os.path.join(K8S_DIR, "kustomization.yaml")):
            text = read(doc).replace("\\\n", " ")
            cmd = re.search(r"kubectl create secret generic lmgate-keys([^\n]*)", text)
            self.assertIsNotNone(cmd, doc)
            literals = dict(re.findall(r'--from-literal=(\w+)="?([^"\s]+)', cmd.group(1)))
            for var in key_envs(config):
                self.assertEqual(literals.get(var), "$(openssl", f"{doc}: {var}")


class ClusterOverlayTest(unittest.TestCase):
    """deploy/k8s/cluster: the sidecars of the 2-replica example share one Redis."""

    def test_every_sidecar_gets_the_redis_and_check_config_accepts_it(self):
        overlay_dir = os.path.join(K8S_DIR, "cluster")
        k = yaml_docs(os.path.join(overlay_dir, "kustomization.yaml"))[0]
        self.assertEqual(k["resources"], ["..", "redis.yaml"])
        objs = {(d["kind"], d["metadata"]["name"]): d
                for d in yaml_docs(os.path.join(overlay_dir, "redis.yaml"))}
        svc = objs[("Service", "lmgate-redis")]
        base = k8s_objects()
        dep = next(o for (kind, _), o in base.items() if kind == "Deployment")
        self.assertGreater(dep["spec"]["replicas"], 1, "the overlay exists for several lmgates")
        (patch,) = k["patches"]
        self.assertEqual(patch["target"], {"kind": "Deployment", "name": dep["metadata"]["name"]})
        gate = pod_containers(apply_json_patch(dep, yaml.safe_load(patch["patch"])))["lmgate"]
        url = next(a for a in gate["args"] if a.startswith("--redis_url="))
        self.assertEqual(url, f"--redis_url=redis://{svc['metadata']['name']}:"
                              f"{svc['spec']['ports'][0]['port']}")
        self.assertIn("--redis_password_env=LMGATE_REDIS_PASSWORD", gate["args"])
        env = {e["name"]: e for e in gate["env"]}
        ref = env["LMGATE_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        self.assertEqual(ref, {"name": "lmgate-redis", "key": "LMGATE_REDIS_PASSWORD"})
        # lmgate accepts what the patched sidecar runs, and refuses it without the password.
        config = base[("ConfigMap", "lmgate-config")]["data"]["lmgate.json"]
        path = os.path.join(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")), "lmgate.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(config)
        keys = {v: secrets.token_hex(24) for v in key_envs(json.loads(config))}
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LMGATE_")}
        args = [LMGATE, f"--config={path}", "--check_config"] + [
            a for a in gate["args"] if not a.startswith("--config=")]
        r = subprocess.run(args, env={**clean, **keys, "LMGATE_REDIS_PASSWORD": "pw"},
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        printed = json.loads(r.stdout)["cluster"]
        self.assertEqual(printed["redis_url"], "redis://lmgate-redis:6379/0")
        self.assertEqual(printed["redis_password_env"], "LMGATE_REDIS_PASSWORD")
        r = subprocess.run(args, env={**clean, **keys}, capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("LMGATE_REDIS_PASSWORD, which is unset", r.stderr)
        # The kubectl command creating the password is in the overlay's header.
        self.assertIn("kubectl create secret generic lmgate-redis "
                      "--from-literal=LMGATE_REDIS_PASSWORD=\"$(openssl rand -hex 24)\"",
                      read(os.path.join(overlay_dir, "kustomization.yaml")))


class HelmChartTest(unittest.TestCase):
    def setUp(self):
        self.k8s = k8s_objects()
        self.helm = helm_objects()

    def test_default_values_render_the_configmap_config(self):
        want = config_of(self.k8s[("ConfigMap", "lmgate-config")])
        self.assertEqual(config_of(self.helm[("ConfigMap", "lmgate-config")]), want)
        values = yaml_docs(os.path.join(CHART_DIR, "values.yaml"))[0]
        self.assertEqual(values["config"], want)

    def test_lmgate_container_matches_the_sidecar(self):
        sidecar = pod_containers(next(o for (k, _), o in self.k8s.items() if k == "Deployment"))
        chart = pod_containers(self.helm[("Deployment", "lmgate")])
        want, got = sidecar["lmgate"], chart["lmgate"]
        for field in ("args", "ports", "env", "startupProbe", "livenessProbe", "readinessProbe",
                      "resources", "securityContext"):
            self.assertEqual(got[field], want[field], field)
        self.assertEqual(self.helm[("Deployment", "lmgate")]["spec"]["template"]["spec"]
                         ["terminationGracePeriodSeconds"], 40)

    def test_rendered_objects_reference_each_other(self):
        pod = self.helm[("Deployment", "lmgate")]["spec"]["template"]["spec"]
        self.assertEqual(pod["volumes"][0]["configMap"]["name"], "lmgate-config")
        # By default the chart uses the Secret the docs create, and makes no key itself.
        self.assertNotIn("Secret", [kind for (kind, _) in self.helm])
        config = config_of(self.helm[("ConfigMap", "lmgate-config")])
        env = {e["name"]: e for e in pod_containers(self.helm[("Deployment", "lmgate")])
               ["lmgate"]["env"]}
        for var in key_envs(config):
            self.assertEqual(env[var]["valueFrom"]["secretKeyRef"]["name"], "lmgate-keys")
        svc = self.helm[("Service", "lmgate")]
        labels = self.helm[("Deployment", "lmgate")]["spec"]["template"]["metadata"]["labels"]
        self.assertTrue(set(svc["spec"]["selector"].items()) <= set(labels.items()))


    def test_chart_without_an_existing_secret_needs_every_key(self):
        r = render_chart(chart_with_values(existingSecret="", values={}))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("keySecret.values.LMGATE_KEY_APP is not set", r.stderr)
        keys = {"LMGATE_KEY_APP": secrets.token_hex(24), "LMGATE_KEY_OPS": secrets.token_hex(24)}
        objs = helm_objects(chart_with_values(existingSecret="", values=keys))
        self.assertEqual(objs[("Secret", "lmgate-keys")]["stringData"], keys)


    def test_cluster_values_pass_redis_and_replicas_need_it(self):
        r = render_chart(chart_with(replicaCount=3))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("replicaCount > 1 needs cluster.redisUrl", r.stderr)
        objs = helm_objects(chart_with(replicaCount=3, cluster={
            "redisUrl": "redis://redis.example.internal:6379", "redisPasswordSecret": "lmgate-redis"}))
        dep = objs[("Deployment", "lmgate")]
        self.assertEqual(dep["spec"]["replicas"], 3)
        gate = pod_containers(dep)["lmgate"]
        self.assertEqual(gate["args"], ["--config=/etc/lmgate/lmgate.json",
                                        "--redis_url=redis://redis.example.internal:6379",
                                        "--redis_password_env=LMGATE_REDIS_PASSWORD"])
        env = {e["name"]: e for e in gate["env"]}
        self.assertEqual(env["LMGATE_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"],
                         {"name": "lmgate-redis", "key": "LMGATE_REDIS_PASSWORD"})


class CheckConfigTest(unittest.TestCase):
    def shipped_configs(self):
        """(name, JSON path, environment with freshly generated keys) of every config in deploy/.
        No shipped file holds a usable key: the keys are made here as the docs say."""
        tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        k8s = k8s_objects()
        helm = helm_objects()
        configs = [("deploy/lmgate.json", "deploy/lmgate.json")]
        systemd = "deploy/systemd/lmgate.json"
        configs.append((systemd, systemd))
        for name, cm in [("deploy/k8s/configmap.yaml", k8s[("ConfigMap", "lmgate-config")]),
                         ("helm template deploy/helm/lmgate", helm[("ConfigMap", "lmgate-config")])]:
            path = os.path.join(tmp, re.sub(r"\W+", "_", name) + ".json")
            with open(path, "w", encoding="utf-8") as f:
                f.write(cm["data"]["lmgate.json"])
            configs.append((name, path))
        out = []
        for name, path in configs:
            config = json.loads(strip_json_comments(read(path)))
            out.append((name, path, {v: secrets.token_hex(24) for v in key_envs(config)}))
        return out

    def check(self, path, env):
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LMGATE_KEY")}
        return subprocess.run([LMGATE, f"--config={path}", "--check_config"],
                              env={**clean, **env}, capture_output=True, text=True)

    def test_lmgate_accepts_every_shipped_config(self):
        configs = self.shipped_configs()
        self.assertEqual(len(configs), 4)
        for name, path, env in configs:
            with self.subTest(config=name):
                r = self.check(path, env)
                self.assertEqual(r.returncode, 0, f"{name}: {r.stderr}")
                self.assertIn("config OK", r.stderr)
                # Shipped configs log JSON (one object per line) for log collectors.
                self.assertEqual(json.loads(r.stdout).get("log_format"), "json", name)

    def test_placeholder_and_weak_keys_are_refused(self):
        systemd_env = dict(re.findall(r"^(\w+)=(.*)$", read("deploy/systemd/lmgate.env.example"),
                                      re.M))
        for name, path, env in self.shipped_configs():
            if not env:
                continue
            for weak in WEAK_KEYS + [systemd_env.get(next(iter(env)))]:
                with self.subTest(config=name, key=weak):
                    bad = dict(env)
                    bad[next(iter(env))] = weak
                    r = self.check(path, bad)
                    self.assertEqual(r.returncode, 2, f"{name} accepted {weak!r}")
                    self.assertIn("openssl rand -hex 24", r.stderr)
                    self.assertNotIn(weak, r.stderr)  # the key itself is never printed

    def test_configs_with_keys_fail_without_their_key_variables(self):
        for name, path, env in self.shipped_configs():
            if not env:
                continue
            with self.subTest(config=name):
                r = self.check(path, {})
                self.assertEqual(r.returncode, 2, name)
                self.assertIn("LMGATE_KEY_", r.stderr)

    def write(self, text):
        fd, path = tempfile.mkstemp(suffix=".json", dir=os.environ.get("TEST_TMPDIR"))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def run_check(self, text, *flags, env=None):
        path = self.write(text)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LMGATE_KEY")}
        r = subprocess.run([LMGATE, f"--config={path}", "--check_config", *flags],
                           env={**clean, **(env or {})}, capture_output=True, text=True)
        return path, r

    def test_prints_the_effective_config_with_flags_applied_and_no_secret(self):
        token, key = "sk-lm-abcd1234:tokensecretvalue", "key-value-0123456789abcdef"
        _, r = self.run_check(json.dumps({
            "lmstudio": {"api_token": token},
            "keys": [{"tenant": "app", "key_env": "LMGATE_KEY_APP"}],
            "worker_threads": 7}), "--worker_threads=9", "--log_level=debug",
            env={"LMGATE_KEY_APP": key})
        self.assertEqual(r.returncode, 0, r.stderr)
        for secret in (token, key, "tokensecretvalue"):
            self.assertNotIn(secret, r.stdout + r.stderr)
        printed = json.loads(r.stdout)
        self.assertEqual(printed["worker_threads"], 9)
        self.assertEqual(printed["log_level"], "debug")
        self.assertEqual(printed["lmstudio"]["api_token"], "<redacted>")
        self.assertEqual(printed["keys"][0]["key_env"], "LMGATE_KEY_APP")
        # Every top-level key services/config.cc accepts is printed.
        top = re.search(r'CheckKeys\(doc, "", \{([^}]*)\}', read("services/config.cc")).group(1)
        self.assertEqual(sorted(printed), sorted(re.findall(r'"(\w+)"', top)))
        # The token from the environment shows as its variable's name.
        _, r = self.run_check("{}", "--lmstudio_api_token_env=H8_TOKEN", env={"H8_TOKEN": token})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("tokensecretvalue", r.stdout)
        self.assertEqual(json.loads(r.stdout)["lmstudio"]["api_token_env"], "H8_TOKEN")

    def test_refuses_what_a_start_refuses(self):
        missing = os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), "no-such-dir", "x.pem")
        cases = [
            ({"tls": {"cert_file": missing, "key_file": missing}}, (),
             f"tls: cannot read {missing}"),
            ({"metrics_listen": "127.0.0.1"}, (), 'metrics_listen: "127.0.0.1" is not host:port'),
            ({}, ("--metrics_listen=0.0.0.0",), 'metrics_listen: "0.0.0.0" is not host:port'),
            ({"max_loaded_models": -1}, (), "max_loaded_models: must be >= 0"),
            ({"keys": [{"tenant": "a", "key_env": "H8_UNSET_KEY"}]}, (), "H8_UNSET_KEY"),
        ]
        for doc, flags, message in cases:
            with self.subTest(doc=doc, flags=flags):
                _, r = self.run_check(json.dumps(doc), *flags)
                self.assertEqual(r.returncode, 2, r.stdout)
                self.assertIn(message, r.stderr)
                self.assertEqual(r.stdout, "")
        # The same TLS file would stop a start with the same message and status.
        path = self.write(json.dumps(cases[0][0]))
        r = subprocess.run([LMGATE, f"--config={path}", "--listen=127.0.0.1:0",
                            "--metrics_listen="], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"tls: cannot read {missing}", r.stderr)

    def test_syntax_errors_and_duplicate_keys_name_file_line_and_column(self):
        path, r = self.run_check('{\n  "listen": "127.0.0.1:1",\n  "log_level": ,\n}\n')
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.startswith(f"lmgate: {path}:3:16: not valid JSON: "), r.stderr)
        path, r = self.run_check('{"lmstudio": {\n "url": "http://a:1",\n "url": "http://b:2"}}')
        self.assertEqual(r.returncode, 2)
        self.assertIn(f'{path}: duplicate key "url" at line 3 (in lmstudio; first at line 2)',
                      r.stderr)


class ConfigDocTest(unittest.TestCase):
    def test_config_md_lists_every_key_with_a_default(self):
        source = read("services/config.cc")
        accepted = set()
        for block in re.findall(r"CheckKeys\(\w+,\s*[^{;]*\{([^}]*)\}", source):
            accepted |= set(re.findall(r'"(\w+)"', block))
        self.assertGreater(len(accepted), 50)
        doc = read("deploy/CONFIG.md")
        rows = [line for line in doc.splitlines() if line.startswith("| `")]
        documented = set()
        for row in rows:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
            self.assertGreaterEqual(len(cells), 4, row)
            self.assertTrue(cells[1], f"no default in: {row}")
            # Key names in the first cell: `a.b.c`, `x`, `y.{p,q}`.
            for span in re.findall(r"`([^`]+)`", cells[0]):
                documented |= set(re.findall(r"\w+", span))
        self.assertEqual(sorted(accepted - documented), [], "keys missing from deploy/CONFIG.md")


class DockerfileTest(unittest.TestCase):
    def stages(self):
        stages, cur = [], None
        for line in read("deploy/Dockerfile").replace("\\\n", " ").splitlines():
            if line.startswith("FROM "):
                cur = {"from": line.split()[1], "apt": set()}
                stages.append(cur)
            elif cur is not None and "apt-get install" in line:
                words = line.split("apt-get install", 1)[1].split("&&")[0].split()
                cur["apt"] |= {w for w in words if not w.startswith("-")}
        return stages

    @staticmethod
    def packages_of(paths):
        """Debian packages owning `paths` (one dpkg -S call; it is slow). With merged /usr,
        dpkg may know a library under /lib instead of /usr/lib: both are asked."""
        alt = {p: re.sub(r"^/usr(?=/lib)", "", p) for p in paths}
        r = subprocess.run(["dpkg", "-S", *paths, *set(alt.values()) - set(paths)],
                           capture_output=True, text=True)
        owner = {}
        for line in r.stdout.splitlines():
            if ": " in line and not line.startswith("diversion"):
                pkg, path = line.split(": ", 1)
                owner[path] = pkg.split(":")[0].split(",")[0]
        missing = [p for p in paths if p not in owner and alt[p] not in owner]
        if missing:
            raise AssertionError(f"no Debian package owns {missing}")
        return {owner.get(p) or owner[alt[p]] for p in paths}

    def test_runtime_stage_has_every_needed_library(self):
        build, runtime = self.stages()
        self.assertTrue(build["from"].startswith("debian:bookworm"), build)
        self.assertTrue(runtime["from"].startswith("debian:bookworm"), runtime)
        dyn = subprocess.run(["readelf", "-d", LMGATE], check=True, capture_output=True,
                             text=True).stdout
        needed = re.findall(r"\(NEEDED\).*\[(.+?)\]", dyn)
        ldd = subprocess.run(["ldd", LMGATE], check=True, capture_output=True, text=True).stdout
        where = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        where.update({os.path.basename(p): p for p in re.findall(r"^\s*(/\S+) \(", ldd, re.M)})
        in_base_image = {"libc6", "libgcc-s1", "zlib1g", "libstdc++6"}
        packages = self.packages_of(sorted({os.path.realpath(where[lib]) for lib in needed}))
        # Under --config=asan / tsan lmgate also links the sanitizer's runtime (libasan8,
        # libubsan1, libtsan2); the image is built without a sanitizer and needs none.
        sanitizer_runtimes = {p for p in packages if re.fullmatch(r"lib(a|t|ub|l)san\d*", p)}
        missing = packages - runtime["apt"] - in_base_image - sanitizer_runtimes
        self.assertEqual(sorted(missing), [], "runtime stage lacks these packages")
        # Nothing beyond what lmgate links, besides certificates.
        self.assertEqual(sorted(runtime["apt"] - packages - {"ca-certificates"}), [])

    def test_build_stage_has_the_build_packages_of_setup_sh(self):
        build = self.stages()[0]
        setup = read("deploy/setup.sh")
        block = re.search(r"APT_PACKAGES=\(\n(.*?)\n\)", setup, re.S).group(1)
        listed = set(re.sub(r"#.*", "", block).split())
        test_only = ("golang", "libgtest", "libgmock", "libclang-rt")
        cxx = {p for p in listed if p.endswith("-dev") and not p.startswith(test_only)}
        cxx |= {"bazel-bootstrap", "protobuf-compiler", "protobuf-compiler-grpc"}
        self.assertEqual(sorted(cxx - build["apt"]), [])


class SystemdUnitTest(unittest.TestCase):
    def test_systemd_analyze_verify_accepts_the_unit(self):
        unit = read("deploy/systemd/lmgate.service")
        self.assertIn("ExecStart=/usr/local/bin/lmgate --config=/etc/lmgate/lmgate.json", unit)
        grace = json.loads(strip_json_comments(read("deploy/systemd/lmgate.json")))
        stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))
        self.assertGreater(stop, grace["shutdown_grace_seconds"])
        # verify checks that ExecStart's binary exists: point it at the one Bazel built.
        tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        path = os.path.join(tmp, "lmgate.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write(unit.replace("/usr/local/bin/lmgate", os.path.abspath(LMGATE)))
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("lmgate.service", r.stderr)  # no warnings about our unit
        # With the cli drop-in (lmgate.service.d/cli.conf) too.
        os.makedirs(os.path.join(tmp, "lmgate.service.d"))
        shutil.copy("deploy/systemd/lmgate-cli.conf",
                    os.path.join(tmp, "lmgate.service.d", "cli.conf"))
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("cli.conf", r.stderr)

    def test_the_cli_driver_is_enabled_only_where_the_sandbox_can_run_lms(self):
        # `lms` is a Node program: it needs a JIT and a writable HOME.
        unit = read("deploy/systemd/lmgate.service")
        self.assertIn("MemoryDenyWriteExecute=yes", unit)
        self.assertIn("DynamicUser=yes", unit)
        config = json.loads(strip_json_comments(read("deploy/systemd/lmgate.json")))
        self.assertNotIn("cli", config.get("drivers", ["sdk_ws", "rest", "openai", "cli"]))
        dropin = read("deploy/systemd/lmgate-cli.conf")
        self.assertIn("MemoryDenyWriteExecute=no", dropin)
        self.assertRegex(dropin, r"(?m)^Environment=HOME=/var/lib/lmgate$")
        self.assertRegex(dropin, r"(?m)^StateDirectory=lmgate$")
        self.assertRegex(dropin, r"(?m)^ProtectHome=read-only$")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    LMGATE, HELM_RENDER = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[3:])
