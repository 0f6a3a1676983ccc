"""Contracts of the package's layout: private names stay in their module, and the
spectrum engine knows no kind of cell."""

import ast
import re
from pathlib import Path

import pytest

import sklyap

PACKAGE = Path(sklyap.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
ENGINE = ["lyapunov.py", "_benettin.py", "orthonormalize.py"]
CELL_KINDS = re.compile(r"\b(lstm|gru|elman|tanh|relu)", re.IGNORECASE)


def private_imports(source):
    """``from m import _name`` statements of ``source``, as ``line: name from m``."""
    return [
        f"line {node.lineno}: {alias.name} from {'.' * node.level}{node.module or ''}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


def cell_kinds_named(source):
    """Identifiers and strings (docstrings aside) of ``source`` that name a kind of cell."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    named = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = "" if id(node) in docstrings else node.value
        else:
            continue
        if CELL_KINDS.search(text.replace("_", " ")):
            named.append(f"line {node.lineno}: {text!r}")
    return named


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_modules_private_names(path):
    assert private_imports(path.read_text()) == []


@pytest.mark.parametrize("name", ENGINE)
def test_the_engine_names_no_cell_kind(name):
    assert cell_kinds_named((PACKAGE / name).read_text()) == []


def test_the_checks_find_what_they_look_for():
    assert private_imports("from .x import a, _b\nimport _c") == ["line 1: _b from .x"]
    source = (
        '"""An LSTM docstring is fine."""\n'
        "def f(kind, cell):\n"
        '    """So is a GRU one."""\n'
        '    if kind == "lstm":\n'
        "        return cell.lstm_gates + gru_step\n"
    )
    assert cell_kinds_named(source) == [
        "line 4: 'lstm'",
        "line 5: 'lstm_gates'",
        "line 5: 'gru_step'",
    ]


def imported_modules(path):
    """The absolute names of the sklyap modules (and names) that the file at ``path`` imports."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = parts[:-1]  # a module's package; for an __init__, the package itself
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names += [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return [n for n in names if n == "sklyap" or n.startswith("sklyap.")]


EXPERIMENTS = ("sklyap.study", "sklyap.cli", "sklyap.__main__")
LIBRARY = [
    p for p in MODULES if p.relative_to(PACKAGE).parts[0] not in ("study", "cli", "__main__.py")
]


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_library_never_imports_the_experiments_or_the_command_line(path):
    reached = [
        name
        for name in imported_modules(path)
        if any(name == e or name.startswith(e + ".") for e in EXPERIMENTS)
    ]
    assert reached == []


def test_the_wall_check_resolves_relative_imports():
    assert "sklyap.study.run_sweep" in imported_modules(PACKAGE / "cli" / "sweep.py")
    assert "sklyap.cli.sweep" in imported_modules(PACKAGE / "cli" / "__init__.py")
    assert "sklyap.study._replay.replay_study" in imported_modules(PACKAGE / "study" / "_sweep.py")
    assert "sklyap.cli.main" in imported_modules(PACKAGE / "__main__.py")


def test_models_are_read_without_the_file_reader():
    """sklyap.dynamics reads TorchScript modules through sklyap._state_dict, not
    through sklyap.checkpoints (the reader of files), which uses dynamics' public names."""
    dynamics = imported_modules(PACKAGE / "dynamics" / "__init__.py")
    assert "sklyap._state_dict.from_torchscript" in dynamics
    assert not any(name.startswith("sklyap.checkpoints") for name in dynamics)
    assert not any(
        name.startswith("sklyap.dynamics._")
        for path in (PACKAGE / "checkpoints.py", PACKAGE / "_state_dict.py")
        for name in imported_modules(path)
    )
