#!/usr/bin/env python3
"""Validates deploy/kubernetes without a cluster (run by tests/e2e/kubernetes.rs).

Renders the kustomize base, the production overlay and the overlay with the gateway-http-api
component the way kustomize does for what these manifests use (resources, components,
strategic-merge patches, images, namespace, labels, secretGenerator), then checks:

- every object against the Kubernetes JSON schemas (kubernetes-validate, strict: unknown fields
  are errors), KEDA objects against the schema of the fields they use;
- every Deployment and the Job run the repository's image with `gathering <subcommand>`, a
  subcommand the binary has (`gathering --help`), named after the Deployment;
- every environment variable the manifests set (ConfigMap, Secrets, `env`) is one that a
  service receiving it reads (the variable names in the Rust sources);
- every probe's path is a route of the service, its port a container port, and that port the
  service's default listening port; Services point at existing named ports;
- termination grace periods cover the services' shutdown timeouts; every Deployment has
  probes, requests/limits and a PodDisruptionBudget;
- NetworkPolicies: ingress denied by default, only the edge's HTTP port (and the gateway's HTTP
  API with its component) reachable from anywhere, gRPC only from the services that call it;
- the KEDA triggers cover every executor queue with its concurrency as target.

`--dump FILE` writes what the Rust test checks against live processes and a real database:
probes (service, path, address variable, port) and the KEDA queries.
Exit status 1 with the list of problems when any check fails.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys

import jsonschema
import kubernetes_validate

from kustomize_subset import pod_containers, pod_spec, render

# The oldest Kubernetes the manifests support, and the newest the validator knows.
K8S_VERSIONS = ["1.29.0", "1.37.0"]
SERVICES = ["auth", "edge", "executor", "scheduler", "llm-gateway"]
# Listening-address variables of each service; their default ports are read from the sources.
ADDR_VARS = {
    "auth": ["AUTH_ADDR"],
    "edge": ["EDGE_ADDR"],
    "executor": ["EXECUTOR_ADMIN_ADDR"],
    "scheduler": ["SCHEDULER_ADMIN_ADDR"],
    "llm-gateway": ["LLM_GATEWAY_ADDR", "LLM_GATEWAY_HTTP_ADDR"],
}
# Ports that may be reachable from anywhere: the edge's API, and the gateway's HTTP API when
# the component opens it.
PUBLIC_PORTS = {("edge", 8000)}
PUBLIC_PORTS_WITH_GATEWAY_HTTP = {("edge", 8000), ("llm-gateway", 8001)}
# Who calls whom over gRPC (the services' *_URL settings).
GRPC_CALLERS = {"auth": {"edge"}, "llm-gateway": {"edge", "executor"}}

# The fields of KEDA's ScaledObject and TriggerAuthentication (keda.sh/v1alpha1) these
# manifests use; unknown fields are errors, as with the built-in kinds.
_TRIGGER = {
    "type": "object",
    "required": ["type", "metadata"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": ["postgresql"]},
        "name": {"type": "string"},
        "authenticationRef": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
        },
        "metadata": {
            "type": "object",
            "required": ["query", "targetQueryValue"],
            "additionalProperties": False,
            "properties": {
                k: {"type": "string"}
                for k in [
                    "query",
                    "targetQueryValue",
                    "activationTargetQueryValue",
                    "connectionFromEnv",
                ]
            },
        },
    },
}
_META = {"type": "object", "required": ["name"]}
KEDA_SCHEMAS = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": {"type": "string"},
                        },
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "advanced": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "restoreToOriginalReplicaCount": {"type": "boolean"},
                            # Validated as an autoscaling/v2 HPA behavior below.
                            "horizontalPodAutoscalerConfig": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "behavior": {"type": "object"},
                                },
                            },
                        },
                    },
                    "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER},
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "TriggerAuthentication"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {
                                k: {"type": "string"} for k in ["parameter", "name", "key"]
                            },
                        },
                    }
                },
            },
        },
    },
}


# ---------------------------------------------------------------------------------------------
# What the sources say


class Sources:
    def __init__(self, repo, binary):
        self.repo = pathlib.Path(repo)
        shared = list((self.repo / "shared").glob("*/src/**/*.rs"))
        self.read_by = {}
        for svc in SERVICES + ["gathering"]:
            files = list((self.repo / "services" / svc / "src").glob("**/*.rs")) + shared
            text = "\n".join(f.read_text() for f in files)
            self.read_by[svc] = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', text))
        gateway = self.text("services/llm-gateway/src/config.rs")
        providers = re.search(r"KNOWN_PROVIDERS[^=]*=\s*\[(.*?)\];", gateway, re.S)
        # `{NAME}_API_KEY` and `{NAME}_BASE_URL` of the catalogue's providers.
        for name in re.findall(r'"([a-z0-9_]+)"', providers.group(1) if providers else ""):
            for suffix in ("_API_KEY", "_BASE_URL"):
                if f'"{{upper}}{suffix}"' in gateway:
                    self.read_by["llm-gateway"].add(name.upper() + suffix)
        migrate = self.read_by["gathering"]
        self.read_by["migrate"] = migrate
        help_text = subprocess.run(
            [binary, "--help"], capture_output=True, text=True, check=True
        ).stdout
        commands = help_text.split("Commands:", 1)[1].split("Options:", 1)[0]
        self.subcommands = set(re.findall(r"^\s{2}([a-z][a-z-]*)\s", commands, re.M))
        self.routes = {
            "admin": set(re.findall(r'\.route\("([^"]+)"', self.text("shared/telemetry/src/admin.rs"))),
            "edge": set(re.findall(r'\.route\("([^"]+)"', self.text("services/edge/src/routes/health.rs"))),
        }
        self.default_ports = {}
        for svc, names in ADDR_VARS.items():
            config = self.text(f"services/{svc}/src/config.rs")
            for var in names:
                m = re.search(rf'"{var}",\s*\(\[[\d, ]+\],\s*(\d+)\)', config)
                if m is None and var == "LLM_GATEWAY_HTTP_ADDR":
                    m = re.search(r"\(\[0, 0, 0, 0\], (\d+)\)\.into\(\)\s*\};?\s*let http_addr", config)
                    m = m or re.search(r"\(\[0, 0, 0, 0\], (8\d{3})\)", config)
                if m is None:
                    raise SystemExit(f"no default port of {var} in services/{svc}/src/config.rs")
                self.default_ports[(svc, int(m.group(1)))] = var
        startup = self.text("services/edge/src/startup.rs")
        m = re.search(r"\.shutdown_timeout\((\d+)\)", startup)
        self.edge_drain_seconds = int(m.group(1)) if m else None

    def text(self, rel):
        return (self.repo / rel).read_text()


# ---------------------------------------------------------------------------------------------
# Checks


def check_schemas(name, objects, problems):
    for o in objects:
        where = f"{name}: {o.get('kind')}/{o.get('metadata', {}).get('name')}"
        if o.get("apiVersion", "").startswith("keda.sh/"):
            schema = KEDA_SCHEMAS.get(o["kind"])
            if schema is None:
                problems.append(f"{where}: no schema for this KEDA kind")
                continue
            for e in jsonschema.Draft202012Validator(schema).iter_errors(o):
                problems.append(f"{where}: {e.message} at {list(e.absolute_path)}")
            behavior = (
                o["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
            )
            if behavior:
                hpa = {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": "keda-hpa"},
                    "spec": {
                        "scaleTargetRef": {"kind": "Deployment", "name": "x"},
                        "maxReplicas": 1,
                        "behavior": behavior,
                    },
                }
                check_schemas(where + " behavior", [hpa], problems)
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(o, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{where} (Kubernetes {version}): {e.message} at {list(e.path)}")
            except Exception as e:  # schema not found and the like
                problems.append(f"{where} (Kubernetes {version}): {type(e).__name__} {e}")


def by_kind(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def check_workloads(name, objects, src, problems, secrets_external):
    configmaps = by_kind(objects, "ConfigMap")
    secrets = by_kind(objects, "Secret")
    deployments = by_kind(objects, "Deployment")
    jobs = by_kind(objects, "Job")
    if set(deployments) != set(SERVICES):
        problems.append(f"{name}: Deployments {sorted(deployments)}, expected {sorted(SERVICES)}")
    if not jobs:
        problems.append(f"{name}: no migration Job")
    # Variable -> the services it is delivered to.
    delivered = {}
    for o in list(deployments.values()) + list(jobs.values()):
        where = f"{name}: {o['kind']}/{o['metadata']['name']}"
        expected_cmd = "migrate" if o["kind"] == "Job" else o["metadata"]["name"]
        for c in pod_containers(o):
            image = c.get("image", "")
            if image.rsplit("/", 1)[-1].split(":")[0] != "gathering":
                problems.append(f"{where}: image {image!r} is not the gathering image")
            cmd = c.get("command", [])
            if cmd[:1] != ["gathering"] or len(cmd) != 2 or cmd[1] not in src.subcommands:
                problems.append(f"{where}: command {cmd} is not `gathering <one of {sorted(src.subcommands)}>`")
            elif cmd[1] != expected_cmd:
                problems.append(f"{where}: runs `gathering {cmd[1]}`, expected {expected_cmd}")
            service = cmd[1] if len(cmd) > 1 else "?"
            for e in c.get("env", []):
                delivered.setdefault(e["name"], set()).add(service)
            for ref in c.get("envFrom", []):
                if "configMapRef" in ref:
                    cm = configmaps.get(ref["configMapRef"]["name"])
                    keys = (cm or {}).get("data", {}).keys()
                else:
                    sec = secrets.get(ref["secretRef"]["name"])
                    keys = (sec or {}).get("stringData", {}).keys()
                    cm = sec
                if cm is None and not ("secretRef" in ref and secrets_external):
                    problems.append(f"{where}: envFrom {ref} names nothing in the manifests")
                for key in keys:
                    delivered.setdefault(key, set()).add(service)
    for var, services in sorted(delivered.items()):
        if not any(var in src.read_by.get(s, set()) for s in services):
            problems.append(
                f"{name}: {var} is set for {sorted(services)} but none of them reads it"
            )
    return deployments


def container_ports(deployment):
    ports = {}
    for c in pod_containers(deployment):
        for p in c.get("ports", []):
            ports[p.get("name", str(p["containerPort"]))] = p["containerPort"]
    return ports


def check_probes_and_services(name, objects, deployments, src, dump):
    problems = []
    env_overrides = {}
    for svc, d in deployments.items():
        ports = container_ports(d)
        for c in pod_containers(d):
            for e in c.get("env", []):
                env_overrides[(svc, e["name"])] = e.get("value", "")
        for number in ports.values():
            var = src.default_ports.get((svc, number))
            if var is None:
                problems.append(f"{name}: {svc} declares port {number}, which it does not listen on by default")
        spec = pod_spec(d)
        for c in pod_containers(d):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if p is None:
                    if probe != "startupProbe":
                        problems.append(f"{name}: {svc} has no {probe}")
                    continue
                get = p.get("httpGet")
                if get is None:
                    problems.append(f"{name}: {svc} {probe} is not an HTTP GET")
                    continue
                port = get["port"]
                number = ports.get(port) if isinstance(port, str) else port
                if number not in ports.values():
                    problems.append(f"{name}: {svc} {probe} port {port} is not a container port")
                    continue
                routes = src.routes["edge" if svc == "edge" else "admin"]
                if get["path"] not in routes:
                    problems.append(f"{name}: {svc} {probe} path {get['path']} is not one of {sorted(routes)}")
                var = src.default_ports.get((svc, number))
                if var:
                    dump["probes"].add((svc, probe, get["path"], var, number))
            res = c.get("resources", {})
            if not res.get("requests", {}).get("memory") or not res.get("limits", {}).get("memory"):
                problems.append(f"{name}: {svc} lacks memory requests/limits")
        if not spec.get("terminationGracePeriodSeconds"):
            problems.append(f"{name}: {svc} has no terminationGracePeriodSeconds")
    services = by_kind(objects, "Service")
    for sname, s in services.items():
        sel = s["spec"]["selector"]
        targets = [
            d for d in deployments.values()
            if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
        ]
        if not targets:
            problems.append(f"{name}: Service {sname} selects no Deployment")
        for p in s["spec"]["ports"]:
            for d in targets:
                tp = p.get("targetPort", p["port"])
                if (isinstance(tp, str) and tp not in container_ports(d)) or (
                    isinstance(tp, int) and tp not in container_ports(d).values()
                ):
                    problems.append(f"{name}: Service {sname} targets {tp}, not a port of {d['metadata']['name']}")
    covered = set()
    for pdb in by_kind(objects, "PodDisruptionBudget").values():
        sel = pdb["spec"]["selector"]["matchLabels"]
        covered |= {
            n for n, d in deployments.items()
            if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
        }
    for svc in sorted(set(deployments) - covered):
        problems.append(f"{name}: {svc} has no PodDisruptionBudget")
    return problems


def check_termination(name, objects, deployments, src):
    problems = []
    config = {}
    for cm in by_kind(objects, "ConfigMap").values():
        config.update(cm.get("data", {}))
    grace = lambda svc: deployments[svc]["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    executor_timeout = int(config.get("EXECUTOR_SHUTDOWN_TIMEOUT_SECONDS", "10"))
    # Running jobs get the timeout, then are released (one statement per job) and the heartbeat
    # is removed: 10 s of room.
    if grace("executor") < executor_timeout + 10:
        problems.append(
            f"{name}: executor terminationGracePeriodSeconds {grace('executor')} < "
            f"EXECUTOR_SHUTDOWN_TIMEOUT_SECONDS {executor_timeout} + 10"
        )
    edge_grace = int(config.get("EDGE_SHUTDOWN_GRACE_MS", "3000")) / 1000
    if src.edge_drain_seconds is None:
        problems.append("services/edge/src/startup.rs: no .shutdown_timeout(N) found")
    elif grace("edge") < edge_grace + src.edge_drain_seconds + 5:
        problems.append(
            f"{name}: edge terminationGracePeriodSeconds {grace('edge')} < EDGE_SHUTDOWN_GRACE_MS "
            f"({edge_grace} s) + the HTTP drain ({src.edge_drain_seconds} s) + 5"
        )
    return problems


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def check_network(name, objects, deployments, public):
    problems = []
    policies = list(by_kind(objects, "NetworkPolicy").values())
    deny = [
        p for p in policies
        if not p["spec"].get("ingress") and "Ingress" in p["spec"].get("policyTypes", [])
    ]
    for svc, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        if not any(selects(p["spec"]["podSelector"], labels) for p in deny):
            problems.append(f"{name}: no default-deny NetworkPolicy selects {svc}")
        for port in container_ports(d).values():
            peers = []
            for p in policies:
                if not selects(p["spec"]["podSelector"], labels):
                    continue
                for rule in p["spec"].get("ingress", []):
                    rule_ports = [rp.get("port") for rp in rule.get("ports", [])]
                    if rule_ports and port not in rule_ports:
                        continue
                    peers += rule.get("from", [None])
            from_anywhere = None in peers or any(
                peer.get("ipBlock", {}).get("cidr") in ("0.0.0.0/0", "::/0") for peer in peers if peer
            )
            if from_anywhere and (svc, port) not in public:
                problems.append(f"{name}: {svc}:{port} is reachable from anywhere")
            if (svc, port) in public and not from_anywhere:
                problems.append(f"{name}: {svc}:{port} should be reachable from outside")
            callers = GRPC_CALLERS.get(svc)
            if callers and port == container_ports(d).get("grpc") and not from_anywhere:
                allowed = {
                    peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
                    for peer in peers if peer and "podSelector" in peer
                }
                if not callers <= allowed:
                    problems.append(f"{name}: {svc}:{port} not open to its callers {sorted(callers - allowed)}")
    return problems


def check_keda(name, objects, deployments, dump, secrets_external):
    problems = []
    config = {}
    for cm in by_kind(objects, "ConfigMap").values():
        config.update(cm.get("data", {}))
    queues = {}
    for item in config.get("EXECUTOR_QUEUES", "").split(","):
        parts = item.strip().split(":")
        if parts[0]:
            queues[parts[0]] = parts[1] if len(parts) > 1 else "8"
    scaled = by_kind(objects, "ScaledObject")
    auths = by_kind(objects, "TriggerAuthentication")
    secrets = by_kind(objects, "Secret")
    if "executor" not in scaled:
        return [f"{name}: no ScaledObject for the executors"]
    so = scaled["executor"]
    if so["spec"]["scaleTargetRef"]["name"] not in deployments:
        problems.append(f"{name}: ScaledObject targets a missing Deployment")
    if "replicas" in deployments.get("executor", {}).get("spec", {}):
        problems.append(f"{name}: executor Deployment sets replicas (the ScaledObject owns them)")
    seen = set()
    for t in so["spec"]["triggers"]:
        query = t["metadata"]["query"]
        dump["queries"].add(query)
        auth = auths.get(t.get("authenticationRef", {}).get("name"))
        if auth is None:
            problems.append(f"{name}: trigger {t.get('name')} has no TriggerAuthentication")
        else:
            for ref in auth["spec"]["secretTargetRef"]:
                if secrets_external and ref["name"] not in secrets:
                    continue
                if ref["key"] not in secrets.get(ref["name"], {}).get("stringData", {}):
                    problems.append(f"{name}: {auth['metadata']['name']} reads a missing secret key {ref['name']}/{ref['key']}")
        m = re.search(r"queue = '([a-z0-9_]+)'", query)
        if m:
            q = m.group(1)
            seen.add(q)
            if q not in queues:
                problems.append(f"{name}: trigger on queue {q}, which executors do not serve")
            elif t["metadata"]["targetQueryValue"] != queues[q]:
                problems.append(
                    f"{name}: trigger {q} targets {t['metadata']['targetQueryValue']} jobs per "
                    f"executor, its concurrency is {queues[q]}"
                )
    for q in sorted(set(queues) - seen):
        problems.append(f"{name}: no KEDA trigger for queue {q}")
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    if "edge" not in {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()}:
        problems.append(f"{name}: no HPA for the edges")
    return problems


def check_release_order(name, objects):
    """A release applies `component in (config,migrate)` first (the Namespace, ConfigMap,
    Secrets and the migration Job), waits for the Job, then applies everything."""
    problems = []
    for o in objects:
        component = o["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        if o["kind"] in ("Namespace", "ConfigMap", "Secret") and component != "config":
            problems.append(f"{name}: {o['kind']}/{o['metadata']['name']} is not labelled component=config")
        if o["kind"] == "Job" and component != "migrate":
            problems.append(f"{name}: Job/{o['metadata']['name']} is not labelled component=migrate")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=str(pathlib.Path(__file__).resolve().parent.parent))
    ap.add_argument("--manifests", help="default: REPO/deploy/kubernetes")
    ap.add_argument("--binary", required=True, help="the gathering binary")
    ap.add_argument("--dump", help="write probes and KEDA queries as JSON here")
    args = ap.parse_args()
    root = pathlib.Path(args.manifests or pathlib.Path(args.repo) / "deploy" / "kubernetes")
    src = Sources(args.repo, args.binary)
    problems = []
    used = set()
    dump = {"probes": set(), "queries": set()}
    variants = [
        ("base", render(root / "base", problems, used), PUBLIC_PORTS),
        ("production", render(root / "overlays" / "production", problems, used), PUBLIC_PORTS),
        (
            "production+gateway-http-api",
            render(
                root / "overlays" / "production",
                problems,
                used,
                extra_components=["../../components/gateway-http-api"],
            ),
            PUBLIC_PORTS_WITH_GATEWAY_HTTP,
        ),
    ]
    for name, objects, public in variants:
        # The base leaves the Secrets to the overlay.
        secrets_external = name == "base"
        check_schemas(name, objects, problems)
        deployments = check_workloads(name, objects, src, problems, secrets_external)
        problems += check_probes_and_services(name, objects, deployments, src, dump)
        problems += check_termination(name, objects, deployments, src)
        problems += check_network(name, objects, deployments, public)
        problems += check_keda(name, objects, deployments, dump, secrets_external)
        problems += check_release_order(name, objects)
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.suffix in (".yaml", ".yml", ".example") and f.resolve() not in used:
            problems.append(f"{f}: not used by any kustomization")
    counts = ", ".join(f"{n}: {len(o)} objects" for n, o, _ in variants)
    if args.dump:
        pathlib.Path(args.dump).write_text(
            json.dumps(
                {
                    "probes": [
                        {"service": s, "probe": p, "path": path, "addr_var": v, "port": n}
                        for s, p, path, v, n in sorted(dump["probes"])
                    ],
                    "queries": sorted(dump["queries"]),
                },
                indent=1,
            )
        )
    if problems:
        print(f"deploy/kubernetes: {len(problems)} problem(s) ({counts})")
        for p in dict.fromkeys(problems):
            print(f"  - {p}")
        return 1
    print(f"deploy/kubernetes: ok ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
