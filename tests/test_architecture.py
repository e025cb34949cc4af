"""The layers stay visible: core/ and fl/ never import Qt; gui -> fl -> core only; Flower only
in fl/flower/; rooms sized to their job, each listed in docs/STRUCTURE.md."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 kept, 0 broken" in proc.stdout


def test_importing_the_package_switches_flower_telemetry_off():
    env = {k: v for k, v in os.environ.items() if k != "FLWR_TELEMETRY_ENABLED"}
    code = "import pumpfl_gui, os; print(os.environ['FLWR_TELEMETRY_ENABLED'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_checking_a_file_loads_neither_torch_nor_flower(skab_dir):
    """`pumpfl data check` (and the app's preview, through the same modules) reads, sums up and
    judges a file's length without loading torch or Flower: about a second of start-up each."""
    code = (
        "import sys; from pumpfl_gui.cli.main import main; "
        f"rc = main(['data', 'check', {str(skab_dir / 'valve1' / '0.csv')!r}]); "
        "print(rc, sorted(m for m in ('torch', 'flwr') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "long enough to train" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "0 []"


PRODUCT_FILE_LIMIT = 500  # lines: rooms sized to their job (issue 15)


def test_no_product_file_outgrows_its_room():
    package = ROOT / "pumpfl_gui"
    sizes = {str(p.relative_to(package)): len(p.read_text(encoding="utf-8").splitlines()) for p in package.rglob("*.py")}
    assert {f: n for f, n in sizes.items() if n > PRODUCT_FILE_LIMIT} == {}


def test_the_structure_page_lists_every_module():
    """docs/STRUCTURE.md has one line a module under its folder's heading line."""
    page = (ROOT / "docs" / "STRUCTURE.md").read_text(encoding="utf-8")
    folders: dict[str, set[str]] = {}
    current = None
    for line in page.splitlines():
        if line and not line.startswith(" ") and line.split()[0].endswith("/"):
            current = folders.setdefault(line.split()[0].rstrip("/"), set())
        elif current is not None and line.startswith("  ") and line.split()[0].endswith(".py"):
            current.add(line.split()[0])
    package = ROOT / "pumpfl_gui"
    for folder in sorted({p.parent for p in package.rglob("*.py")} - {package}):
        name = str(folder.relative_to(package))
        modules = {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
        assert modules <= folders.get(name, set()), (
            f"docs/STRUCTURE.md misses {sorted(modules - folders.get(name, set()))} in {name}/"
        )
