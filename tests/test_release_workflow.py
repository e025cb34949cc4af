"""The release workflow (.github/workflows/release.yml): the facts that matter, read from the YAML.

Nothing here runs on GitHub; actionlint checks the syntax. These tests walk each system's leg
of the bundle job as a runner would (the steps whose ``if:`` lets that system through) and check
that it builds the one-folder app, zips it, runs ``--self-test`` inside it and uploads the zip;
that torch stays on the CPU wheel; and that only the release job may write to the repository.
PyYAML is a dev dependency (pyproject.toml).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
FAMILIES = {"linux": "Linux", "windows": "Windows", "macos": "macOS"}  # matrix family -> runner.os
RUNNER_PREFIX = {"linux": "ubuntu-", "windows": "windows-", "macos": "macos-"}
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# The build scripts, by pattern (a test naming the script file itself lands in the build lane).
BUILD_SH = r"\bbash build/build\.sh\b"
BUILD_SCRIPT = {"Linux": BUILD_SH, "macOS": BUILD_SH, "Windows": r"\bbuild[/\\]build\.ps1\b"}


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bundle(workflow) -> dict:
    return workflow["jobs"]["bundle"]


def matrix_entries(bundle: dict) -> dict[str, dict]:
    """Matrix family -> its include entry."""
    entries = bundle["strategy"]["matrix"]["include"]
    return {entry["family"]: entry for entry in entries}


def runs_on(step: dict, runner_os: str) -> bool:
    """Whether a step's ``if:`` lets this system through (the forms the workflow uses)."""
    condition = step.get("if")
    if condition is None:
        return True
    condition = condition.strip().removeprefix("${{").removesuffix("}}").strip()
    if condition.startswith("startsWith(github.ref, 'refs/tags/v')"):
        return True  # the tag-only steps: every system on a tag
    if condition == "failure()":
        return False
    match = re.fullmatch(r"runner\.os (==|!=) '(\w+)'", condition)
    assert match, f"a condition this test does not know: {condition!r} (teach runs_on)"
    same = runner_os == match.group(2)
    return same if match.group(1) == "==" else not same


def leg(bundle: dict, runner_os: str) -> list[dict]:
    """The steps one system's runner takes, in order."""
    return [step for step in bundle["steps"] if runs_on(step, runner_os)]


def index_of(steps: list[dict], predicate, what: str) -> int:
    found = [i for i, step in enumerate(steps) if predicate(step)]
    assert found, f"no step that {what}"
    return found[0]


def test_triggers_tags_and_manual_runs(workflow):
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert "v*" in on["push"]["tags"]
    assert "workflow_dispatch" in on


def test_the_matrix_covers_linux_windows_and_macos(bundle):
    entries = matrix_entries(bundle)
    assert set(entries) == set(FAMILIES), entries.keys()
    for family, entry in entries.items():
        assert entry["os"].startswith(RUNNER_PREFIX[family]), entry
    assert bundle["runs-on"] == "${{ matrix.os }}"
    assert bundle["strategy"].get("fail-fast") is False  # one system failing still shows the others


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_leg_builds_zips_self_tests_and_uploads(bundle, family):
    runner_os = FAMILIES[family]
    steps = leg(bundle, runner_os)
    assert bundle["env"]["PYTHON"] == "${{ matrix.python }}"  # build.sh / build.ps1 use the job's .venv

    built = index_of(steps, lambda s: re.search(BUILD_SCRIPT[runner_os], s.get("run", "")), f"builds on {runner_os}")
    zipped = index_of(steps, lambda s: "$BUNDLE_ZIP" in s.get("run", "") and "--self-test" not in s["run"], "zips")
    tested = index_of(steps, lambda s: "--self-test" in s.get("run", ""), "runs --self-test")
    uploaded = index_of(steps, lambda s: s.get("uses", "").startswith("actions/upload-artifact@"), "uploads")
    assert built < zipped < tested < uploaded, (built, zipped, tested, uploaded)

    # The self-test runs the app from the unzipped artefact: what ships is what was tested.
    test_step = steps[tested]
    assert '"$app" --self-test' in test_step["run"]
    assert 'app="$unpacked/${{ matrix.app }}"' in test_step["run"]
    assert re.search(rf"\b{runner_os}\)[^\n]*\$BUNDLE_ZIP", test_step["run"]), f"no unzip for {runner_os}"
    assert "self-test passed" in test_step["run"]  # and the log says so (the Windows app has no console)
    assert re.search(rf"\b{runner_os}\)[^\n]*\$BUNDLE_ZIP", steps[zipped]["run"]), f"no zip command for {runner_os}"

    # The bundle's executable for this system.
    app = matrix_entries(bundle)[family]["app"]
    expected = {"linux": "PumpFL/PumpFL", "windows": "PumpFL/PumpFL.exe", "macos": "PumpFL.app/Contents/MacOS/PumpFL"}
    assert app == expected[family]

    upload = steps[uploaded]["with"]
    assert upload["path"] == "${{ env.BUNDLE_ZIP }}"
    assert upload.get("if-no-files-found") == "error"


def test_the_zips_are_named_as_the_readme_says(bundle):
    assert bundle["env"]["BUNDLE_ZIP"] == "PumpFL-${{ matrix.family }}.zip"
    names = {f"PumpFL-{family}.zip" for family in matrix_entries(bundle)}
    assert names == {"PumpFL-linux.zip", "PumpFL-windows.zip", "PumpFL-macos.zip"}
    assert "`PumpFL-linux.zip`" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_steps_that_run_on_windows_name_their_shell(bundle):
    # Windows' default shell is PowerShell: a bash script without `shell: bash` would break there.
    for step in leg(bundle, "Windows"):
        if "run" in step:
            assert step.get("shell") in {"bash", "pwsh"}, step.get("name")


def test_the_app_runs_headless_from_fresh_user_folders(bundle):
    assert bundle["env"]["QT_QPA_PLATFORM"] == "offscreen"
    test_step = next(s for s in bundle["steps"] if "--self-test" in s.get("run", ""))
    assert "XDG_DATA_HOME=" in test_step["run"]


def test_torch_stays_on_the_cpu_wheel(workflow, bundle):
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert "torch==2.13.0" in pins  # an exact pin: the CPU index then serves 2.13.0+cpu
    assert workflow["env"]["TORCH_CPU_INDEX"] == CPU_INDEX
    text = WORKFLOW.read_text(encoding="utf-8")
    assert not re.search(r"whl/cu\d+|whl/rocm", text), "a CUDA or ROCm index in the workflow"
    install = next(s for s in bundle["steps"] if re.search(r"pip install -e \"?\.\[dev\]", s.get("run", "")))
    assert runs_on(install, "Linux") and runs_on(install, "Windows") and runs_on(install, "macOS")
    run = install["run"]
    assert '--extra-index-url "$TORCH_CPU_INDEX"' in run
    assert 'if [ "$RUNNER_OS" != macOS ]' in run  # Linux and Windows get the CPU index
    assert "assert torch.version.cuda is None" in run  # and the install proves it


def test_only_the_release_job_may_write(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        if name == "release":
            assert job["permissions"] == {"contents": "write"}
            assert job["needs"] == "bundle"
            assert "startsWith(github.ref, 'refs/tags/v')" in job["if"]
        else:
            assert job.get("permissions", {}).get("contents", "read") == "read", name


def test_the_release_gets_all_three_zips(workflow):
    run = "\n".join(s.get("run", "") for s in workflow["jobs"]["release"]["steps"])
    for family in FAMILIES:
        assert f"zips/PumpFL-{family}.zip" in run
    assert "gh release upload" in run


def test_jobs_have_timeouts_concurrency_and_pinned_actions(workflow):
    assert workflow["concurrency"]["group"]
    for name, job in workflow["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 90, name
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
