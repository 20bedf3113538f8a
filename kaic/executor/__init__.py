"""kaic's local executor: run any Argo Workflow manifest on this machine, no cluster, no containers.

Public API (stable; ``kaic run`` and ``kaic local-run`` use it)::

    from kaic.executor import run_workflow, resume_workflow, ExecutorOptions, WorkflowResult

    result = run_workflow(manifest, {"message": "hi"}, ExecutorOptions(max_parallel=8, progress=True))
    result.phase      # "Succeeded" | "Failed" | "Error"
    result.run_dir    # $KAIC_HOME/runs/<workflow-name>/  (status.json, manifest.json, nodes/<id>/)
    result.nodes      # {node id: NodeStatus}; result.node("hello-xyz.A") finds one by name

    result = resume_workflow(result.run_dir, ExecutorOptions())  # redo only what did not succeed

- ``run_workflow(manifest, parameters, options, source="workflow")``: ``manifest`` is the parsed
  YAML of a ``Workflow``, ``WorkflowTemplate`` or ``ClusterWorkflowTemplate`` (a Workflow with a
  ``workflowTemplateRef`` needs ``options.workflow_templates``); ``parameters`` override
  ``spec.arguments.parameters``. Any load or validation problem (unsupported field, unknown
  template or task, dependency cycle, missing parameter) raises :class:`kaic.errors.ConfigError`
  with one line naming ``source`` and the path, before anything runs.
- ``ExecutorOptions``: ``kaic_home`` (default ``kaic.env.kaic_home()``), ``max_parallel`` (pods at
  once, default CPUs x 4), ``name`` (workflow name override), ``status_json`` (also write the final
  status there), ``progress`` (True: one line per node phase change on stderr; or a callable taking
  a :class:`NodeStatus`), ``env`` (extra environment for every node), ``workflow_templates``,
  ``handle_signals`` (SIGINT/SIGTERM stop the run, then the exit handler runs; main thread only).
- ``resume_workflow(run_dir, options)``: continue a stopped or failed run from its saved manifest,
  parameters and status.json; pods that Succeeded are reused, not run again.

Modules (docs/local-executor.md has a "where is it" table): :mod:`manifest` (load, allow-list,
validation), :mod:`allowlist`, :mod:`expressions` and :mod:`exprfuncs` (``when``/``depends``/
expr-lang), :mod:`templating` (``{{...}}``), :mod:`loops`, :mod:`dagplan` (pure DAG decisions),
:mod:`scheduler` (the workflow's life and ``invoke``), :mod:`invocation`, :mod:`nodes`,
:mod:`varscope`, :mod:`retries` and :mod:`retryplan`, :mod:`pods`, :mod:`outputs`, :mod:`fanout`,
:mod:`hooks`, :mod:`calls`, :mod:`stepswalk`, :mod:`dagwalk`, :mod:`memo`, :mod:`locks`,
:mod:`process` (one node as a process), :mod:`artifacts`, :mod:`status` (node model, status.json),
:mod:`runner`, :mod:`command` (CLI).
"""

from kaic.executor.runner import ExecutorOptions, WorkflowResult, resume_workflow, run_workflow
from kaic.executor.status import NodeStatus

__all__ = ["ExecutorOptions", "NodeStatus", "WorkflowResult", "resume_workflow", "run_workflow"]
