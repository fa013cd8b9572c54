"""``wmkit new-plugin``: write a small, working plugin package to start a new component from.

A plugin called NAME becomes the folder NAME/ with four files:

    pyproject.toml          the distribution wmkit-BASE, with BASE in the ``wmkit`` group
    wmkit_BASE.py           the component (or environment) and its ``wmkit_register`` hook
    tests/test_wmkit_BASE.py  wmkit's contract check for the role, and the registration
    README.md               how to install it and select it in a recipe

BASE is NAME without a leading 'wmkit-' or 'wmkit_', so the prefix is never doubled; it is
written with '_' in the component, entry-point and module names, and with '-' in the
distribution's (``PluginNames``). Each template in ``templates/`` is the
smallest real component of its kind: it passes ``wmkit.devkit.testing``'s contract check and runs a
whole recipe, so a plugin author starts from something that works and changes the maths.
The templates are ``string.Template`` files: ``$module``, ``$cls``, ``$component`` and the
other ``$`` names are filled in from NAME, and nothing else in them may contain a dollar.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template

from wmkit.core.errors import WmkitError

NAME_PATTERN = re.compile(r"[a-z](?:[a-z0-9_-]*[a-z0-9])?")


@dataclass(frozen=True)
class PluginNames:
    """Every name derived from the NAME a user types. BASE is NAME without a leading
    'wmkit-' or 'wmkit_': 'wmkit-cat-mem', 'wmkit_cat_mem', 'cat-mem' and 'cat_mem' all
    give the module wmkit_cat_mem and the distribution wmkit-cat-mem."""

    name: str  # NAME as typed: the folder
    distribution: str  # wmkit-BASE, '_' -> '-': what pip installs
    module: str  # wmkit_BASE, '-' -> '_': the module that holds the hook
    component: str  # BASE, '-' -> '_': what a recipe selects, and the entry point's name
    cls: str  # BASE in CamelCase: the component's class
    env_id: str  # BASE-v0: the gymnasium id, for an env plugin

    @classmethod
    def from_name(cls, name: str) -> PluginNames:
        if not NAME_PATTERN.fullmatch(name):
            raise WmkitError(
                f"plugin name {name!r}: use lowercase letters, digits, '-' and '_', starting "
                "with a letter and ending with a letter or digit (e.g. 'small-vae')"
            )
        base = re.sub(r"^wmkit[-_](?=[a-z])", "", name)
        snake, kebab = base.replace("-", "_"), base.replace("_", "-")
        camel = "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", base))
        return cls(name, f"wmkit-{kebab}", f"wmkit_{snake}", snake, camel, f"{base}-v0")


@dataclass
class Scaffold:
    """What ``write_plugin`` wrote: the folder, its files, and how a recipe selects it."""

    folder: Path
    files: list[Path]
    names: PluginNames
    kind: str

    @property
    def selection(self) -> str:
        """The recipe line that selects the plugin."""
        return _selection(self.names, self.kind)


def _selection(names: PluginNames, kind: str) -> str:
    if kind == "env":
        return f"env: {{id: {names.env_id}, crop: [0, 0, 0, 0]}}"
    return f"{kind}: {{name: {names.component}}}"


def plugin_files(name: str, kind: str) -> dict[str, str]:
    """The plugin package's files, by path relative to its folder, as text."""
    if kind not in KINDS:
        raise WmkitError(f"plugin kind {kind!r}: choose one of {', '.join(KINDS)}")
    names = PluginNames.from_name(name)
    module, test = (template(name) for name in TEMPLATES[kind])
    values = {
        **vars(names),
        "kind": kind,
        "summary": SUMMARIES[kind],
        "selection": _selection(names, kind),
    }

    def fill(template: str) -> str:
        return Template(template).substitute(values)

    files = {
        "pyproject.toml": fill(template("pyproject.toml-tpl")),
        f"{names.module}.py": fill(module),
        f"tests/test_{names.module}.py": fill(test),
        "README.md": fill(template("README.md-tpl")),
    }
    for path in (f"{names.module}.py", f"tests/test_{names.module}.py"):
        bound = _top_level_names(files[path])
        for clash in (names.cls, f"{names.cls}Options"):
            if bound.count(clash) > 1:  # e.g. NAME 'prediction' would shadow Prediction
                raise WmkitError(
                    f"plugin name {name!r}: its class {clash!r} would shadow a name the "
                    f"{kind} template uses; pick another NAME"
                )
    return files


def _top_level_names(source: str) -> list[str]:
    """Every name a module binds at its top level, once per binding."""
    bound = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound += [(alias.asname or alias.name).split(".")[0] for alias in node.names]
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            bound.append(node.name)
        elif isinstance(node, ast.Assign):
            bound += [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return bound


def write_plugin(name: str, kind: str, out: Path) -> Scaffold:
    """Write the plugin NAME of ``kind`` into ``out/NAME``; nothing is written on an error."""
    files = plugin_files(name, kind)
    names = PluginNames.from_name(name)
    folder = Path(out) / name
    if folder.exists():
        raise WmkitError(f"{folder}: already exists; pick another NAME or --out folder")
    _check_free(names, kind)
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise WmkitError(f"{folder}: cannot create the plugin folder: {exc}") from None
    try:
        for relative, text in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)  # no half-written plugin left behind
        raise WmkitError(f"{folder}: cannot write the plugin: {exc}") from None
    return Scaffold(folder, [Path(p) for p in files], names, kind)


def _check_free(names: PluginNames, kind: str) -> None:
    """Refuse names that are already taken: the new plugin would fail its own tests."""
    if importlib.util.find_spec(names.module) is not None:
        raise WmkitError(
            f"plugin name {names.name!r}: a module {names.module!r} already exists; pick "
            "another NAME"
        )
    from wmkit.core.plugins import get_registry

    registry = get_registry()
    if kind == "env":
        import gymnasium

        if names.env_id in registry.envs or names.env_id in gymnasium.registry:
            raise WmkitError(
                f"plugin name {names.name!r}: environment {names.env_id!r} already exists; "
                "pick another NAME"
            )
    elif names.component in registry.components[kind]:
        origin = registry.origins[(kind, names.component)]
        raise WmkitError(
            f"plugin name {names.name!r}: {kind} {names.component!r} is already provided by "
            f"plugin {origin!r}; pick another NAME"
        )
    elif (kind, names.component) in registry.clashes:
        raise WmkitError(
            f"plugin name {names.name!r}: {registry.clash_error(kind, names.component)}; "
            "pick another NAME"
        )


SUMMARIES = {
    "vision": "a small convolutional VAE",
    "memory": "a GRU with a diagonal-Gaussian next-latent head",
    "controller": "a linear controller squashed into the action box",
    "optimizer": "a (mu, lambda) evolution strategy",
    "env": "a tiny dot-chasing environment with 64x64 RGB frames",
}

# The templates are files in ``templates/`` (shipped as package data), so that they read
# and diff as code; ``test_scaffold.py`` renders each and runs ruff and the plugin's tests.
TEMPLATE_DIR = "templates"


def template(name: str) -> str:
    """The text of the template file ``name`` (``vision.py-tpl``...)."""
    return (files("wmkit.devkit") / TEMPLATE_DIR / name).read_text(encoding="utf-8")


# Each kind's component module and its tests, by template file.
TEMPLATES = {kind: (f"{kind}.py-tpl", f"test_{kind}.py-tpl") for kind in SUMMARIES}
# What ``wmkit new-plugin --kind`` offers: a role (or ``env``) has a kind once it has a
# template here.
KINDS = tuple(TEMPLATES)
