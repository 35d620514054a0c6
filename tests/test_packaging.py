"""setup.cfg declares what the package imports, and a Python floor that has the standard library it uses."""

from __future__ import annotations

import ast
import configparser
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "diffhdr_diffusers"
# Imported only behind an error that names the package to install (optional features).
OPTIONAL = {"scipy", "gradio"}
# Standard-library APIs newer than Python 3.10.
PYTHON_3_11 = ("hashlib.file_digest", "tomllib", "datetime.UTC", "typing.Self", "ExceptionGroup", "TaskGroup",
               "StrEnum")


def options() -> configparser.SectionProxy:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config["options"]


def imported_top_level_modules() -> set[str]:
    names = set()
    for path in PACKAGE.rglob("*.py"):
        if "default_model" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"diffhdr_diffusers", "__future__"}


def test_every_imported_package_is_declared():
    declared = {Requirement(line).name.lower().replace("_", "-")
                for line in options()["install_requires"].strip().splitlines()}
    distributions = packages_distributions()
    missing = []
    for module in sorted(imported_top_level_modules() - OPTIONAL):
        names = {name.lower().replace("_", "-") for name in distributions.get(module, [module])}
        if not names & declared:
            missing.append(f"{module} ({', '.join(sorted(names))})")
    assert not missing, f"imported but not in install_requires: {missing}"


def test_imageio_is_not_required_for_a_single_png_write():
    assert "imageio" not in imported_top_level_modules()
    assert "imageio" not in options()["install_requires"]


def test_python_floor_has_the_standard_library_the_package_uses():
    uses_3_11 = sorted({api for api in PYTHON_3_11 for path in PACKAGE.rglob("*.py") if api in path.read_text()})
    if uses_3_11:
        assert "3.10" not in SpecifierSet(options()["python_requires"]), (
            f"python_requires {options()['python_requires']} allows 3.10, but the package uses {uses_3_11}")
