"""The explicit allow-list: which keys the local executor understands, per object kind.

Every key of the manifest is checked against this table; a key that is not listed is refused with
its path (``spec.templates[main].container.volumeMounts: unsupported by the local executor``).
Keys marked :data:`NO_EFFECT` are accepted and documented as having no local meaning (pod
placement and cluster housekeeping); nothing else is ignored.
"""

from __future__ import annotations

from typing import Any

LEAF = None
NO_EFFECT = "no-effect"

# kind -> key -> child kind: LEAF (any value), NO_EFFECT, "Kind" (a map), "[Kind]" (a list of maps),
# "[[Kind]]" (a list of lists of maps, the shape of `steps`).
SCHEMA: dict[str, dict[str, str | None]] = {
    "Workflow": {"apiVersion": LEAF, "kind": LEAF, "metadata": "Metadata", "spec": "WorkflowSpec"},
    "Metadata": {"name": LEAF, "generateName": LEAF, "namespace": LEAF, "labels": LEAF, "annotations": LEAF},
    "WorkflowSpec": {
        "entrypoint": LEAF,
        "templates": "[Template]",
        "arguments": "Arguments",
        "onExit": LEAF,
        "parallelism": LEAF,
        "activeDeadlineSeconds": LEAF,
        "workflowTemplateRef": "TemplateRef",
        "retryStrategy": "RetryStrategy",  # the default for every template
        "hooks": "Hooks",
        "synchronization": "Synchronization",
        "serviceAccountName": NO_EFFECT,
        "podGC": NO_EFFECT,
        "ttlStrategy": NO_EFFECT,
        "archiveLogs": NO_EFFECT,
        "podMetadata": NO_EFFECT,
        "workflowMetadata": NO_EFFECT,
        "tolerations": NO_EFFECT,
        "imagePullSecrets": NO_EFFECT,
        "podDisruptionBudget": NO_EFFECT,
        "securityContext": NO_EFFECT,
    },
    "TemplateRef": {"name": LEAF, "clusterScope": LEAF},
    "Arguments": {"parameters": "[Parameter]", "artifacts": "[Artifact]"},
    "Parameter": {"name": LEAF, "value": LEAF, "default": LEAF, "description": LEAF, "enum": LEAF},
    "Template": {
        "name": LEAF,
        "inputs": "Inputs",
        "outputs": "Outputs",
        "container": "Container",
        "script": "Script",
        "steps": "[[Step]]",
        "dag": "Dag",
        "suspend": "Suspend",
        "containerSet": "ContainerSet",
        "retryStrategy": "RetryStrategy",
        "memoize": "Memoize",
        "synchronization": "Synchronization",
        "activeDeadlineSeconds": LEAF,
        "timeout": LEAF,
        "parallelism": LEAF,
        "failFast": LEAF,
        "nodeSelector": LEAF,  # evaluated against this machine's labels (see manifest.LOCAL_NODE_LABELS)
        "metadata": NO_EFFECT,
        "serviceAccountName": NO_EFFECT,
        "tolerations": NO_EFFECT,
        "securityContext": NO_EFFECT,
        "podSpecPatch": LEAF,  # refused below unless empty; listed so the reason is specific
    },
    "Inputs": {"parameters": "[Parameter]", "artifacts": "[Artifact]"},
    "Outputs": {"parameters": "[OutputParameter]", "artifacts": "[Artifact]"},
    "OutputParameter": {
        "name": LEAF,
        "valueFrom": "ValueFrom",
        "value": LEAF,
        "globalName": LEAF,
        "description": LEAF,
    },
    "ValueFrom": {"path": LEAF, "default": LEAF, "parameter": LEAF, "expression": LEAF},
    "Artifact": {
        "name": LEAF,
        "path": LEAF,
        "from": LEAF,
        "s3": "S3Artifact",
        "raw": "RawArtifact",
        "optional": LEAF,
        "archive": NO_EFFECT,
        "globalName": LEAF,
        "mode": LEAF,
        "subPath": LEAF,
    },
    "S3Artifact": {"key": LEAF},
    "RawArtifact": {"data": LEAF},
    "Container": {
        "image": NO_EFFECT,
        "command": LEAF,
        "args": LEAF,
        "env": "[Env]",
        "workingDir": LEAF,
        "name": NO_EFFECT,
        "imagePullPolicy": NO_EFFECT,
        "resources": NO_EFFECT,
        "securityContext": NO_EFFECT,
    },
    "Script": {
        "image": NO_EFFECT,
        "command": LEAF,
        "args": LEAF,
        "env": "[Env]",
        "workingDir": LEAF,
        "source": LEAF,
        "name": NO_EFFECT,
        "imagePullPolicy": NO_EFFECT,
        "resources": NO_EFFECT,
        "securityContext": NO_EFFECT,
    },
    "ContainerSet": {"containers": "[SetContainer]", "retryStrategy": "ContainerSetRetry"},
    "ContainerSetRetry": {"retries": LEAF, "duration": LEAF},
    "SetContainer": {
        "name": LEAF,
        "image": NO_EFFECT,
        "command": LEAF,
        "args": LEAF,
        "env": "[Env]",
        "workingDir": LEAF,
        "dependencies": LEAF,
        "imagePullPolicy": NO_EFFECT,
        "resources": NO_EFFECT,
        "securityContext": NO_EFFECT,
    },
    "Memoize": {"key": LEAF, "maxAge": LEAF, "cache": "MemoCache"},
    "MemoCache": {"configMap": "MemoConfigMap"},
    "MemoConfigMap": {"name": LEAF, "key": NO_EFFECT},
    "Synchronization": {"mutex": "Mutex", "mutexes": "[Mutex]", "semaphore": "Semaphore", "semaphores": "[Semaphore]"},
    "Mutex": {"name": LEAF, "namespace": NO_EFFECT},
    "Semaphore": {"configMapKeyRef": "KeyRef", "namespace": NO_EFFECT},
    "Env": {"name": LEAF, "value": LEAF, "valueFrom": "EnvValueFrom"},
    # Secret and ConfigMap references must be optional: locally there is no Secret store, so the variable
    # keeps whatever this machine's environment gives it (manifest.py refuses non-optional ones).
    "EnvValueFrom": {"secretKeyRef": "KeyRef", "configMapKeyRef": "KeyRef"},
    "KeyRef": {"name": LEAF, "key": LEAF, "optional": LEAF},
    "Step": {
        "name": LEAF,
        "template": LEAF,
        "arguments": "Arguments",
        "when": LEAF,
        "withItems": LEAF,
        "withParam": LEAF,
        "withSequence": "Sequence",
        "continueOn": "ContinueOn",
        "hooks": "Hooks",
        "onExit": LEAF,
    },
    "Dag": {"tasks": "[Task]", "target": LEAF, "failFast": LEAF},
    "Task": {
        "name": LEAF,
        "template": LEAF,
        "arguments": "Arguments",
        "when": LEAF,
        "withItems": LEAF,
        "withParam": LEAF,
        "withSequence": "Sequence",
        "continueOn": "ContinueOn",
        "hooks": "Hooks",
        "onExit": LEAF,
        "depends": LEAF,
        "dependencies": LEAF,
    },
    "Sequence": {"count": LEAF, "start": LEAF, "end": LEAF, "format": LEAF},
    "ContinueOn": {"failed": LEAF, "error": LEAF},
    "Hooks": {"*": "Hook"},  # exit, or any name with an expression
    "Hook": {"template": LEAF, "arguments": "Arguments", "expression": LEAF},
    "Suspend": {"duration": LEAF},
    "RetryStrategy": {"limit": LEAF, "retryPolicy": LEAF, "backoff": "Backoff", "expression": LEAF},
    "Backoff": {"duration": LEAF, "factor": LEAF, "maxDuration": LEAF, "cap": LEAF},
}

# Specific reasons for keys people commonly use; everything else gets the generic one.
REASONS: dict[str, str] = {
    "resource": "resource templates need a Kubernetes API",
    "daemon": "daemon templates are unsupported",
    "sidecars": "sidecars are unsupported",
    "initContainers": "init containers are unsupported",
    "volumes": "volumes are unsupported",
    "volumeMounts": "volume mounts are unsupported",
    "volumeClaimTemplates": "volume claims are unsupported",
    "http": "http templates are unsupported",
    "plugin": "executor plugins are unsupported",
    "data": "data templates are unsupported",
    "templateRef": "templateRef needs the referenced WorkflowTemplate; inline the template",
    "inline": "inline templates are unsupported",
    "valueFrom": "valueFrom (ConfigMap, Secret, field refs) is unsupported; use a plain value",
    "affinity": "affinity cannot be evaluated on one machine",
    "artifactRepositoryRef": "artifact repositories are unsupported; artifacts go to the local object store",
    "podSpecPatch": "podSpecPatch is unsupported",
    "status": "a Workflow's status is output; remove it",
    "envFrom": "envFrom (ConfigMap, Secret) is unsupported; use plain env values",
    "bucket": "only key-addressed s3 artifacts are supported (they map to the local object store)",
    "endpoint": "only key-addressed s3 artifacts are supported (they map to the local object store)",
}


def _key_path(base: str, item: Any, index: int) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"{base}[{name}]" if isinstance(name, str) and name else f"{base}[{index}]"


def check(obj: Any, kind: str, path: str, problems: list[str]) -> None:
    """Append ``path: reason`` for every key not in the allow-list (and shape errors)."""
    if not isinstance(obj, dict):
        problems.append(f"{path}: expected a map, got {type(obj).__name__}")
        return
    allowed = SCHEMA[kind]
    for key, value in list(obj.items()):
        sub = f"{path}.{key}" if path else str(key)
        if key not in allowed and "*" in allowed:
            check(value, str(allowed["*"]), sub, problems)
            continue
        if key not in allowed and isinstance(key, str):
            # Argo's Go structs match JSON keys case-insensitively (valueFrom.Parameter works)
            same = next((k for k in allowed if k.lower() == key.lower()), None)
            if same is not None and same not in obj:
                obj[same] = obj.pop(key)
                key = same
        if key not in allowed or (key == "podSpecPatch" and value):
            problems.append(f"{sub}: {REASONS.get(str(key), 'unsupported by the local executor')}")
            continue
        child = allowed[key]
        if child in (LEAF, NO_EFFECT) or value is None:
            continue
        assert child is not None
        if child.startswith("[["):
            inner = child[2:-2]
            if not isinstance(value, list):
                problems.append(f"{sub}: expected a list of lists")
                continue
            for gi, group in enumerate(value):
                if not isinstance(group, list):
                    problems.append(f"{sub}[{gi}]: expected a list (one group of parallel steps)")
                    continue
                for si, item in enumerate(group):
                    check(item, inner, _key_path(f"{sub}[{gi}]", item, si), problems)
        elif child.startswith("["):
            inner = child[1:-1]
            if not isinstance(value, list):
                problems.append(f"{sub}: expected a list")
                continue
            for i, item in enumerate(value):
                check(item, inner, _key_path(sub, item, i), problems)
        else:
            check(value, child, sub, problems)
