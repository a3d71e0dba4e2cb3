"""Renders kustomize directories in Python: the subset of kustomize that deploy/kubernetes uses
(resources, components, strategic-merge patches, images, namespace, labels, generatorOptions,
secretGenerator from env files), so scripts/check-kubernetes.py can check what `kubectl apply -k`
would create without kustomize installed. Generated Secrets keep their plain names (kustomize
adds a content hash and rewrites the references to match)."""

import copy
import pathlib
import re

import yaml




def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def merge(base, patch):
    """Strategic merge as kustomize applies it to these objects: maps merge, lists of named
    items (containers, env, ports) merge by name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            match = next((i for i, b in enumerate(out) if b["name"] == item["name"]), None)
            if match is None:
                out.append(copy.deepcopy(item))
            else:
                out[match] = merge(out[match], item)
        return out
    return copy.deepcopy(patch)


def read_env_file(path, problems):
    """KEY=VALUE lines of a secretGenerator env file; the committed `.example` stands in for
    the operator's real file."""
    real = pathlib.Path(path)
    source = real if real.exists() else pathlib.Path(str(real) + ".example")
    if not source.exists():
        problems.append(f"{real}: no such env file (nor {source.name})")
        return {}
    data = {}
    for line in source.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
            problems.append(f"{source}: not a KEY=VALUE line: {line!r}")
            continue
        data[key] = value
    return data


def render(directory, problems, used_files, extra_components=()):
    directory = pathlib.Path(directory)
    kfile = directory / "kustomization.yaml"
    used_files.add(kfile.resolve())
    k = load_docs(kfile)[0]
    objects = []
    for res in k.get("resources", []):
        path = directory / res
        if path.is_dir():
            objects += render(path, problems, used_files)
        else:
            used_files.add(path.resolve())
            objects += load_docs(path)
    generated_labels = k.get("generatorOptions", {}).get("labels", {})
    for gen in k.get("secretGenerator", []):
        data = {}
        for env in gen.get("envs", []):
            used_files.add((directory / (env + ".example")).resolve())
            data.update(read_env_file(directory / env, problems))
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": gen["name"], "labels": dict(generated_labels)},
                "type": "Opaque",
                "stringData": data,
            }
        )
    for comp in list(k.get("components", [])) + list(extra_components):
        path = (directory / comp).resolve()
        ck = load_docs(path / "kustomization.yaml")[0]
        if ck.get("kind") != "Component":
            problems.append(f"{path}: not a kustomize Component")
        objects = apply_kustomization(path, ck, objects + render_resources(path, ck, used_files), problems, used_files)
        used_files.add(path / "kustomization.yaml")
    return apply_kustomization(directory, k, objects, problems, used_files)


def render_resources(directory, k, used_files):
    objects = []
    for res in k.get("resources", []):
        used_files.add((directory / res).resolve())
        objects += load_docs(directory / res)
    return objects


def apply_kustomization(directory, k, objects, problems, used_files):
    for p in k.get("patches", []):
        path = directory / p["path"]
        used_files.add(path.resolve())
        for patch in load_docs(path):
            key = (patch["kind"], patch["metadata"]["name"])
            hits = [i for i, o in enumerate(objects) if (o["kind"], o["metadata"]["name"]) == key]
            if len(hits) != 1:
                problems.append(f"{path}: patch of {key} matches {len(hits)} objects")
                continue
            objects[hits[0]] = merge(objects[hits[0]], patch)
    for image in k.get("images", []):
        for o in objects:
            for c in pod_containers(o):
                name, _, _tag = c.get("image", "").partition(":")
                if name == image["name"]:
                    c["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    for pairs in k.get("labels", []):
        for o in objects:
            o["metadata"].setdefault("labels", {}).update(pairs["pairs"])
    if "namespace" in k:
        for o in objects:
            if o["kind"] != "Namespace":
                o["metadata"]["namespace"] = k["namespace"]
    return objects


def pod_spec(o):
    if o["kind"] in ("Deployment", "Job"):
        return o["spec"]["template"]["spec"]
    return None


def pod_containers(o):
    spec = pod_spec(o)
    return spec["containers"] if spec else []
