"""Click options generated from a stage's options dataclass: each default and help text is written once.

A stage's options are a dataclass whose fields are each followed by a string
literal (its attribute docstring).  :class:`OptionSet` turns the fields into
click options (name, type, default and help from the field and its docstring)
and builds the options object from the parsed values, once, without mutating it
afterwards:

>>> from dataclasses import dataclass
>>> @dataclass
... class Opts:
...     niter: int = 100
...     '''Clean iterations.'''
...     quick: bool = False
...     '''Cap the image size.'''
>>> opts = OptionSet(Opts)
>>> [o.opts for o in opts.options()]
[['--niter'], ['--quick']]
>>> opts.build({"niter": 5, "quick": True})
Opts(niter=5, quick=True)

Types: ``bool`` becomes a flag (``--x`` for a default of False, ``--x/--no-x`` for
True), ``Path`` a ``click.Path``, ``Literal`` and enums a ``click.Choice``,
``tuple[float, float]`` an option taking two values, ``tuple[int, ...]`` a
repeatable option; ``X | None`` means the option may be left out.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import re
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Callable, Mapping

import click

_ROLE = re.compile(r":\w+:`~?([^`]+)`")
_ENV = re.compile(r"``([A-Z][A-Z0-9_]+)``")


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass (and of its dataclass bases), one line each.

    Parameters
    ----------
    cls
        A class whose fields are each followed by a string literal.

    Returns
    -------
    dict
        Field name -> its docstring with the whitespace collapsed.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = next((n.body for n in tree.body if isinstance(n, ast.ClassDef)), [])
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(inspect.cleandoc(nxt.value.value).split())
    return docs


def help_text(doc: str) -> str:
    """A docstring as terminal help: reST roles and literals as plain text."""
    return _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], doc).replace("``", "")


def settings_variables() -> dict[str, str]:
    """Settings attribute -> the environment variable that sets it (from the Settings field docstrings)."""
    from ..config import Settings

    return {name: m.group(1) for name, doc in field_docs(Settings).items() if (m := _ENV.search(doc))}


def _optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(tp, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


@dataclasses.dataclass(frozen=True)
class _Spec:
    """How one field becomes one click option."""

    name: str
    decls: tuple[str, ...]
    kwargs: dict
    default: Any
    multiple: bool = False
    setting: str | None = None


class OptionSet:
    """The click options of one options dataclass, and the builder of its instances.

    Parameters
    ----------
    cls
        The options dataclass.
    exclude
        Fields that get no option (given by the command itself, or left at their default).
    rename
        Field -> option declaration(s) where the flag is not ``--field-name`` (e.g.
        ``{"threshold_jy": "--threshold"}``, ``{"use_inotify": "--inotify/--no-inotify"}``,
        ``{"output_dir": ("--output-dir", "-o")}``).
    choices
        Field -> allowed values, for ``str`` fields that are not typed ``Literal``.
    types
        Field -> click type, where the generated one is not enough (e.g. a path that must exist).
    settings
        Field -> :class:`~dsa110_contimg.config.Settings` attribute giving its default: the
        option defaults to the setting (named in the help) and :meth:`build` fills it in.
    """

    def __init__(self, cls: type, *, exclude: tuple[str, ...] = (), rename: Mapping[str, Any] | None = None,
                 choices: Mapping[str, tuple] | None = None, types: Mapping[str, click.ParamType] | None = None,
                 settings: Mapping[str, str] | None = None):
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        self.cls = cls
        rename, choices, types, settings = dict(rename or {}), dict(choices or {}), dict(types or {}), \
            dict(settings or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = (set(exclude) | set(rename) | set(choices) | set(types) | set(settings)) - names
        if unknown:
            raise TypeError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        env = settings_variables() if settings else {}
        self._specs: list[_Spec] = []
        for f in dataclasses.fields(cls):
            if f.name in exclude or not f.init:
                continue
            self._specs.append(self._spec(f, hints[f.name], docs.get(f.name, ""), rename.get(f.name),
                                          choices.get(f.name), types.get(f.name), settings.get(f.name), env))

    # ------------------------------------------------------------------ generation
    def _spec(self, f: dataclasses.Field, tp: Any, doc: str, decl: Any, choices: tuple | None,
              ctype: click.ParamType | None, setting: str | None, env: dict[str, str]) -> _Spec:
        where = f"{self.cls.__name__}.{f.name}"
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        tp, _ = _optional(tp)
        flag = "--" + f.name.replace("_", "-")
        kw: dict[str, Any] = {"help": help_text(doc) or None}
        multiple = False
        if tp is bool:
            kw["is_flag"] = True
            if decl is None and default is True:
                decl = f"{flag}/--no-{flag[2:]}"
        elif ctype is not None:
            kw["type"] = ctype
        elif choices is not None:
            kw["type"] = click.Choice([str(c) for c in choices])
        elif typing.get_origin(tp) is typing.Literal:
            kw["type"] = click.Choice([str(c) for c in typing.get_args(tp)])
        elif isinstance(tp, type) and issubclass(tp, enum.Enum):
            kw["type"] = click.Choice(tp)
        elif isinstance(tp, type) and issubclass(tp, Path):
            kw["type"] = click.Path(path_type=Path)
        elif tp in (int, float, str):
            kw["type"] = tp
        elif typing.get_origin(tp) is tuple:
            args = typing.get_args(tp)
            if len(args) == 2 and args[1] is Ellipsis and args[0] in (int, float, str):
                kw["type"], kw["multiple"], multiple = args[0], True, True
            elif args and all(a in (int, float, str) for a in args):
                kw["type"], kw["nargs"] = tuple(args), len(args)
            else:
                raise TypeError(f"{where}: no command-line form for {tp!r}; exclude the field")
        else:
            raise TypeError(f"{where}: no command-line form for {tp!r}; exclude the field")
        if setting is not None:
            var = env.get(setting, setting)
            if var not in (kw["help"] or ""):
                kw["help"] = f"{kw['help'] or ''}  [default: {var}]".strip()
            kw["default"] = None
        elif default is dataclasses.MISSING:
            kw["required"] = True
        elif multiple:
            kw["default"] = ()
        else:
            kw["default"] = default
            kw["show_default"] = default is not None and not (tp is bool and not default)
        decls = (decl,) if isinstance(decl, str) else tuple(decl or (flag,))
        return _Spec(f.name, decls, kw, default, multiple, setting)

    def options(self) -> list[click.Option]:
        """The click options, in field order."""
        return [click.Option([*s.decls, s.name], **s.kwargs) for s in self._specs]

    def __call__(self, f: Callable) -> Callable:
        """Decorate a click command function with the options (its parameters are the field names)."""
        for s in reversed(self._specs):
            f = click.option(*s.decls, s.name, **s.kwargs)(f)
        return f

    @property
    def names(self) -> tuple[str, ...]:
        """The fields that have an option."""
        return tuple(s.name for s in self._specs)

    # ------------------------------------------------------------------ building
    def build(self, values: Mapping[str, Any], settings: Any = None, **fixed: Any) -> Any:
        """The options object from the parsed values, built once.

        Parameters
        ----------
        values
            The command's keyword arguments (other keys are ignored).
        settings
            The effective settings, for the fields whose default is a setting.
        **fixed
            Fields the command decides itself (excluded fields, values derived from other flags).
        """
        kw: dict[str, Any] = {}
        for s in self._specs:
            if s.name not in values:
                continue
            v = values[s.name]
            if v is None and s.setting is not None:
                if settings is None:
                    raise TypeError(f"{self.cls.__name__}.{s.name}: its default is a setting; pass settings")
                v = getattr(settings, s.setting)
            elif s.multiple:
                v = tuple(v) if v else s.default
            kw[s.name] = v
        kw.update(fixed)
        return self.cls(**kw)
