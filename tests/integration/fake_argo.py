"""A fake Argo Server for tests: real HTTP on 127.0.0.1, checked against Argo's own API description.

Every request is matched to a path and method of `swagger.json` (the Argo Server's OpenAPI 2 spec) and its
body is validated with jsonschema against the referenced definition; invalid requests get the 4xx
answer Argo's gRPC gateway gives (`{"code": <grpc code>, "message": ...}`). Responses are validated
against the spec too, so the fake cannot drift into answers Hera would not parse.

Behaviour modelled on the real server: create returns the object with metadata.name, uid,
resourceVersion and creationTimestamp; 409 AlreadyExists on a duplicate create; updates need the
current resourceVersion (409 on a stale one, 400 without one); 404 for unknown objects; a bearer
token is required when `token` is set (401). A submitted Workflow progresses Pending -> Running ->
final over successive GETs: tasks run one per poll in DAG order, `depends` expressions are evaluated
(a false one gives Omitted), then the onExit handler runs. `outcomes` makes chosen tasks end Failed
or Error; `hang` keeps the workflow Running forever. This is a fake of the server, not of Argo's
controller: the workflow phase is simply Failed when any task failed or errored.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft4Validator

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
GRPC_HTTP = {3: 400, 5: 404, 6: 409, 10: 409, 12: 405, 13: 500, 16: 401}
KINDS = {  # operationId prefix -> (store kind, body field, plural for messages)
    "WorkflowTemplateService": ("WorkflowTemplate", "template", "workflowtemplates.argoproj.io"),
    "CronWorkflowService": ("CronWorkflow", "cronWorkflow", "cronworkflows.argoproj.io"),
}


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class _Route:
    method: str
    template: str
    regex: re.Pattern[str]
    operation: dict[str, Any]
    literal_segments: int


@dataclass
class _Run:
    """A submitted Workflow's scripted timeline: one state per GET."""

    states: list[tuple[str, dict[str, str]]]  # (workflow phase, {node display name: phase})
    polls: int = 0


@dataclass
class FakeArgoServer:
    swagger: dict[str, Any]
    token: str | None = None
    outcomes: dict[str, str] = field(default_factory=dict)  # task -> Failed | Error
    hang: bool = False
    requests: list[Recorded] = field(default_factory=list)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        defs = copy.deepcopy(self.swagger["definitions"])
        # Same quirk as Argo's JSON schema: IntOrString is declared string-only, but the server takes ints.
        defs[INT_OR_STRING] = {"type": ["string", "integer"]}
        self._defs = defs
        self._validators: dict[str, Draft4Validator] = {}
        self._routes = self._compile_routes()
        self._runs: dict[tuple[str, str], _Run] = {}
        self._versions = itertools.count(1)
        self._lock = threading.Lock()

    # ---- spec checks -------------------------------------------------------------------------
    def _compile_routes(self) -> list[_Route]:
        routes = []
        for template, item in self.swagger["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(template)) + "$"
            literal = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
            for method, op in item.items():
                if method != "parameters":
                    routes.append(_Route(method.upper(), template, re.compile(pattern), op, literal))
        return sorted(routes, key=lambda r: -r.literal_segments)

    def _validator(self, ref: str) -> Draft4Validator:
        if ref not in self._validators:
            self._validators[ref] = Draft4Validator({"$ref": ref, "definitions": self._defs})
        return self._validators[ref]

    def _check(self, schema: dict[str, Any], value: Any, what: str) -> None:
        validator = self._validator(schema["$ref"])
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            where = ".".join(str(p) for p in err.absolute_path) or "(body)"
            raise ApiError(3, f"{what}: {where}: {err.message}")

    def route(self, method: str, path: str) -> tuple[_Route, tuple[str, ...]]:
        matched = [(r, mt) for r in self._routes if (mt := r.regex.match(path))]
        if not matched:
            raise ApiError(5, "Not Found")
        for r, mt in matched:
            if r.method == method:
                return r, mt.groups()
        raise ApiError(12, "Method Not Allowed")

    # ---- request handling --------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        body: Any = None
        try:
            if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
                raise ApiError(16, "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/")
            r, args = self.route(method, path)
            params = [p for p in r.operation.get("parameters", []) if p.get("in") == "body"]
            if params:
                try:
                    body = json.loads(raw or b"null")
                except json.JSONDecodeError as exc:
                    raise ApiError(3, f"invalid JSON body: {exc}") from None
                self._check(params[0]["schema"], body, r.operation["operationId"])
            with self._lock:
                result = self._dispatch(r.operation["operationId"], args, body)
            ok = r.operation["responses"]["200"]["schema"]
            if "$ref" in ok:
                self._check(ok, result, f"fake's own {r.operation['operationId']} response")
            status, payload = 200, result
        except ApiError as exc:
            status, payload = GRPC_HTTP[exc.code], {"code": exc.code, "message": exc.message}
        self.requests.append(Recorded(method, path, headers, body, status))
        return status, payload

    def _dispatch(self, op: str, args: tuple[str, ...], body: Any) -> Any:
        service, _, action = op.partition("_")
        if service in KINDS:
            kind, key, plural = KINDS[service]
            ns = args[0]
            if action.startswith("Create"):
                return self._create(kind, plural, ns, body[key])
            if action.startswith("Get"):
                return self._get(kind, plural, ns, args[1])
            if action.startswith("Update"):
                return self._update(kind, plural, ns, args[1], body[key])
        if op == "WorkflowService_SubmitWorkflow":
            return self._submit(args[0], body)
        if op == "WorkflowService_GetWorkflow":
            return self._get_workflow(args[0], args[1])
        raise ApiError(12, f"{op} is not implemented by the fake Argo Server")

    def _meta(self, obj: dict[str, Any], ns: str) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.update(namespace=ns, uid=secrets.token_hex(16), resourceVersion=str(next(self._versions)),
                    creationTimestamp=_now(), generation=1)
        return obj

    def _create(self, kind: str, plural: str, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj.get("metadata", {}).get("name")
        if not name:
            raise ApiError(3, f"{kind}.metadata.name: Required value")
        if (kind, ns, name) in self.objects:
            raise ApiError(6, f'{plural} "{name}" already exists')
        if kind == "WorkflowTemplate":
            _lint(obj)
        self.objects[(kind, ns, name)] = self._meta(copy.deepcopy(obj), ns)
        return self.objects[(kind, ns, name)]

    def _get(self, kind: str, plural: str, ns: str, name: str) -> dict[str, Any]:
        try:
            return self.objects[(kind, ns, name)]
        except KeyError:
            raise ApiError(5, f'{plural} "{name}" not found') from None

    def _update(self, kind: str, plural: str, ns: str, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        live = self._get(kind, plural, ns, name)
        version = obj.get("metadata", {}).get("resourceVersion")
        if not version:
            raise ApiError(3, f'{kind}.argoproj.io "{name}" is invalid: metadata.resourceVersion: '
                              'Invalid value: 0x0: must be specified for an update')
        if version != live["metadata"]["resourceVersion"]:
            raise ApiError(10, f'Operation cannot be fulfilled on {plural} "{name}": the object has been '
                               "modified; please apply your changes to the latest version and try again")
        if kind == "WorkflowTemplate":
            _lint(obj)
        new = copy.deepcopy(obj)
        given = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
        new["metadata"] = {**live["metadata"], **given, "resourceVersion": str(next(self._versions)),
                           "generation": live["metadata"]["generation"] + 1}
        self.objects[(kind, ns, name)] = new
        return new

    # ---- workflows ---------------------------------------------------------------------------
    def _submit(self, ns: str, req: dict[str, Any]) -> dict[str, Any]:
        if str(req.get("resourceKind", "")).lower() != "workflowtemplate":
            raise ApiError(3, f"resourceKind {req.get('resourceKind')!r} is not supported by the fake")
        tmpl = self._get("WorkflowTemplate", "workflowtemplates.argoproj.io", ns, req.get("resourceName", ""))
        declared = {p["name"]: p for p in tmpl["spec"].get("arguments", {}).get("parameters", [])}
        params = []
        for item in (req.get("submitOptions") or {}).get("parameters") or []:
            name, sep, value = item.partition("=")
            if not sep:
                raise ApiError(3, f"expected parameter of the form: NAME=VALUE. Received: {item}")
            enum = declared.get(name, {}).get("enum")
            if enum and value not in enum:
                raise ApiError(3, f"value {value} is not present in the list of enum for parameter {name}")
            params.append({"name": name, "value": value})
        name = f"{tmpl['metadata']['name']}-{secrets.token_hex(3)[:5]}"
        labels = {"workflows.argoproj.io/workflow-template": tmpl["metadata"]["name"]}
        for pair in filter(None, ((req.get("submitOptions") or {}).get("labels") or "").split(",")):
            k, _, v = pair.partition("=")
            labels[k] = v
        wf = self._meta({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "generateName": f"{tmpl['metadata']['name']}-", "labels": labels},
            "spec": {"workflowTemplateRef": {"name": tmpl["metadata"]["name"]},
                     **({"arguments": {"parameters": params}} if params else {})},
        }, ns)
        self.objects[("Workflow", ns, name)] = wf
        self._runs[(ns, name)] = _Run(self._timeline(tmpl))
        return wf

    def _timeline(self, tmpl: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
        spec = tmpl["spec"]
        entry = next(t for t in spec["templates"] if t["name"] == spec["entrypoint"])
        tasks = entry.get("dag", {}).get("tasks", [])
        nodes: dict[str, str] = {}
        states: list[tuple[str, dict[str, str]]] = [("Pending", {})]
        for task in tasks:
            if _depends_holds(task.get("depends"), nodes):
                nodes[task["name"]] = "Running"
                states.append(("Running", dict(nodes)))
                if self.hang:
                    return states
                nodes[task["name"]] = self.outcomes.get(task["name"], "Succeeded")
            else:
                nodes[task["name"]] = "Omitted"
            states.append(("Running", dict(nodes)))
        failed = any(p in ("Failed", "Error") for p in nodes.values())
        if spec.get("onExit"):
            states.append(("Running", {**nodes, "onExit": "Running"}))
            nodes["onExit"] = "Succeeded"
        states.append(("Failed" if failed else "Succeeded", dict(nodes)))
        return states

    def _get_workflow(self, ns: str, name: str) -> dict[str, Any]:
        wf = self._get("Workflow", "workflows.argoproj.io", ns, name)
        run = self._runs[(ns, name)]
        phase, nodes = run.states[min(run.polls, len(run.states) - 1)]
        run.polls += 1
        started = datetime.fromisoformat(wf["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        status: dict[str, Any] = {"phase": phase, "startedAt": _ts(started)}
        if nodes:
            status["nodes"] = _nodes(name, nodes, started)
            status["progress"] = f"{sum(p == 'Succeeded' for p in nodes.values())}/{len(nodes)}"
        if phase in ("Succeeded", "Failed", "Error"):
            status["finishedAt"] = _ts(started + timedelta(seconds=len(run.states)))
            if phase != "Succeeded":
                status["message"] = "child failed"
        return {**wf, "status": status}


def _now() -> str:
    return _ts(datetime.now(UTC))


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _nodes(wf: str, phases: dict[str, str], started: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {}
    final = all(p not in ("Running", "Pending") for k, p in phases.items() if k != "onExit")
    dag_phase = "Running" if not final else ("Failed" if any(
        p in ("Failed", "Error") for k, p in phases.items() if k != "onExit") else "Succeeded")
    out[wf] = {"id": wf, "name": wf, "displayName": wf, "type": "DAG", "phase": dag_phase,
               "templateName": "conformance", "startedAt": _ts(started)}
    for i, (task, phase) in enumerate(phases.items(), start=1):
        node_id = f"{wf}-{zlib.crc32(task.encode())}"
        name = f"{wf}.onExit" if task == "onExit" else f"{wf}.{task}"
        node: dict[str, Any] = {"id": node_id, "name": name,
                                "displayName": name if task == "onExit" else task,
                                "type": "Skipped" if phase == "Omitted" else "Pod", "phase": phase,
                                "templateName": "teardown" if task == "onExit" else task, "boundaryID": wf,
                                "startedAt": _ts(started + timedelta(seconds=i))}
        if phase == "Omitted":
            node["message"] = "omitted: depends condition not met"
        out[node_id] = node
    return out


_RESULT = re.compile(r"([A-Za-z0-9_-]+)(?:\.(Succeeded|Failed|Errored|Skipped|Omitted|Daemoned))?")


def _depends_holds(expr: str | None, phases: dict[str, str]) -> bool:
    """Argo's enhanced depends: `A` means A.Succeeded || A.Skipped || A.Daemoned; && || ( ) combine."""
    if not expr:
        return True
    named = {"Errored": "Error"}

    def result(mt: re.Match[str]) -> str:
        task, res = mt.group(1), mt.group(2)
        if task in ("and", "or"):
            return task
        phase = phases.get(task, "")
        ok = phase in ("Succeeded", "Skipped") if res is None else phase == named.get(res, res)
        return str(ok)

    py = _RESULT.sub(result, expr.replace("&&", " and ").replace("||", " or "))
    words = set(re.findall(r"[A-Za-z]+", py))
    if not re.fullmatch(r"[\sA-Za-z()]*", py) or words - {"True", "False", "and", "or"}:
        raise ApiError(3, f"invalid depends expression {expr!r}")
    return bool(eval(py, {"__builtins__": {}}))  # only True/False/and/or/() remain, checked above


def _lint(tmpl: dict[str, Any]) -> None:
    """The checks Argo's server runs on create that a schema cannot express: references resolve."""
    spec = tmpl.get("spec", {})
    names = {t.get("name") for t in spec.get("templates", [])}
    refs = [("spec.entrypoint", spec.get("entrypoint")), ("spec.onExit", spec.get("onExit"))]
    for t in spec.get("templates", []):
        refs += [(f"templates.{t['name']}.tasks.{task['name']}", task.get("template"))
                 for task in (t.get("dag") or {}).get("tasks", [])]
    for where, ref in refs:
        if ref and ref not in names:
            raise ApiError(3, f"{where} template {ref!r} not found")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload = self.server.fake.handle(self.command, urlsplit(self.path).path, headers, raw)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeArgoServer


@contextmanager
def serve(swagger_path: Path, **kwargs: Any) -> Iterator[FakeArgoServer]:
    """Start the fake on a free port of 127.0.0.1; always stopped on exit."""
    fake = FakeArgoServer(json.loads(swagger_path.read_text()), **kwargs)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-argo",
                              daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
