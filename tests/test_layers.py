"""The package's layering: the import-linter contracts of pyproject.toml hold (``lint-imports``).

The contracts (``[tool.importlinter]``): the layers only import downwards, every top-level module
is placed in a layer (``exhaustive``), and no package has an import cycle between its modules.
import-linter reads every import statement of every module, the function-local ones included, so a
cycle or an upward import cannot hide inside a function.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "dsa110_contimg"


def _lint_imports() -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[test]' (import-linter)")
    return subprocess.run([exe, "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept():
    r = _lint_imports()
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert "layers point down KEPT" in r.stdout
    assert "no import cycles between the modules of any package KEPT" in r.stdout


def test_the_contract_sees_function_local_imports(tmp_path):
    """A cycle made only of function-local imports breaks the acyclic contract (nothing is hidden)."""
    pkg = tmp_path / "src" / "probe"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n    return b\n")
    (pkg / "b.py").write_text("def g():\n    from .a import f\n    return f\n")
    (tmp_path / ".importlinter").write_text("[importlinter]\nroot_package = probe\n\n"
                                            "[importlinter:contract:acyclic]\nname = probe acyclic\n"
                                            "type = acyclic_siblings\nancestors = probe\n")
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    r = subprocess.run([exe, "--no-cache", "--no-logo"], cwd=tmp_path, capture_output=True, text=True,
                       env={"PYTHONPATH": str(tmp_path / "src"), "PATH": str(Path(sys.executable).parent)},
                       timeout=120)
    assert r.returncode != 0 and "probe acyclic BROKEN" in r.stdout, r.stdout + r.stderr


def _function_local_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement inside a function of ``path``."""
    tree = ast.parse(path.read_text())
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    out += [(node.lineno, a.name) for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    out.append((node.lineno, "." * node.level + (node.module or "")))
    return out


LAYERED = ["ms.py", "timeconv.py", "conversion/convert.py", "conversion/direct_writer.py",
           "conversion/monolithic.py", "conversion/group_meta.py", "conversion/average.py",
           "conversion/uvh5_io.py", "calibration/apply.py", "calibration/solve.py", "calibration/transits.py",
           "calibration/model.py", "imaging/image.py", "imaging/fits_products.py", "imaging/defaults.py",
           "qa/image_qa.py", "qa/catalog_match.py", "catalog/query.py", "catalog/calibrators.py",
           "catalog/build_master.py", "pipeline/chain.py", "pipeline/calsets.py", "pipeline/image_stage.py"]
"""Modules whose imports of the package are all at module level."""
LAZY_OK = ("casacore", "casatasks", "casatools", "pyuvdata", "distributed", "astropy", "scipy", "matplotlib",
           "photutils", "h5py", "rich", "threading")
"""Libraries those modules may import inside a function (heavy, or only needed there)."""


@pytest.mark.parametrize("rel", LAYERED)
def test_package_imports_are_at_module_level(rel):
    local = [(ln, m) for ln, m in _function_local_imports(PACKAGE / rel)
             if m.startswith(".") or m.startswith("dsa110_contimg") or not m.startswith(LAZY_OK)]
    assert not local, f"{rel}: function-local imports {local}"
