"""The registry behind :mod:`metapool.priors`: one row (:class:`Family`) per prior family.

A row names the family's command-line keyword, its class and its parameters (:class:`Param`).
From the rows alone come the parsing of a spec string (:func:`parse_spec`), the canonical
spelling of a prior (``spec``), the list of valid forms (:func:`forms`, for help texts and
error messages) and the validation of the parameters, with messages naming the prior class, the
parameter and the value. The families themselves (densities, draws, support, tails) and the two
tables live in :mod:`metapool.priors`.

Every error here is a :class:`~metapool.errors.InputError` (a ValueError).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

import numpy as np

from metapool.errors import InputError

__all__ = ["Param", "Family", "Registered", "register", "forms", "parse_spec"]


# --------------------------------------------------------------------------- values and spellings


def _positive(prior: str, name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise InputError unless it is finite and > 0."""
    x = _finite(prior, name, value)
    if not x > 0:
        raise InputError(f"{prior}: {name} must be finite and > 0, got {value!r}")
    return x


def _finite(prior: str, name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise InputError unless it is a finite number."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{prior}: {name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{prior}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise InputError(f"{prior}: {name} must be finite, got {value!r}")
    return x


def _coef_param(prior: str, name: str, value: Any, positive: bool) -> float | tuple[float, ...]:
    """A scalar or a tuple of floats (hashable, so the dataclass stays frozen and comparable)."""
    check = _positive if positive else _finite
    arr = np.asarray(value, dtype=object)
    if arr.ndim == 0:
        return check(prior, name, value)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{prior}: {name} must be a scalar or a non-empty 1-d sequence, got {value!r}")
    return tuple(check(prior, f"{name}[{i}]", v) for i, v in enumerate(arr))


def _fmt(x: float) -> str:
    """The shortest spelling of ``x`` that parses back to exactly ``x``."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    return repr(x)


def _fmt_param(v: float | tuple[float, ...]) -> str:
    """A scalar as :func:`_fmt`, a vector as ``[a;b;c]``."""
    if isinstance(v, tuple):
        return "[" + ";".join(_fmt(x) for x in v) + "]"
    return _fmt(v)


def _number(text: str, vector: bool) -> float | tuple[float, ...]:
    """Read one spelled parameter; ``[a;b]`` only where the family takes vectors."""
    if text.startswith("[") and text.endswith("]"):
        if not vector:
            raise ValueError(f"expected a number, got {text!r}")
        return tuple(float(x) for x in text[1:-1].split(";"))
    return float(text)


# --------------------------------------------------------------------------- the rows


@dataclass(frozen=True)
class Param:
    """One parameter of a prior family, in the order of the constructor and the spelling.

    Parameters
    ----------
    attr : str
        Attribute of the prior object that holds the value.
    positive : bool, default True
        Whether the value must be > 0 (otherwise only finite).
    label : str, optional
        Name in error messages and (upper-cased) in the valid forms; default ``attr``.
    optional : bool, default False
        May be left out (``None``), e.g. DuMouchel's ``s0`` before ``bind(data)``.
    """

    attr: str
    positive: bool = True
    label: str = ""
    optional: bool = False

    @property
    def name(self) -> str:
        """The parameter's name in messages."""
        return self.label or self.attr


@dataclass(frozen=True)
class Family:
    """One row of the registry: a prior family's keyword, class and parameters.

    Parameters
    ----------
    keyword : str
        The command-line name (``halfcauchy``).
    cls : type
        The prior class; its constructor takes the parameters positionally in ``params`` order.
    params : tuple of Param
        The parameters (optional ones last).
    fixed : tuple of (str, float)
        Leading constants the spelling carries and parsing accepts but does not require, with
        their names in messages (``uniform:0,UPPER``: the lower end 0).
    vector : bool, default False
        Whether parameters may be per-coefficient vectors (spelled ``[a;b;c]``).
    """

    keyword: str
    cls: type
    params: tuple[Param, ...] = ()
    fixed: tuple[tuple[str, float], ...] = ()
    vector: bool = False

    def _shapes(self) -> list[list[str]]:
        """The accepted spellings' parameter lists, shortest first."""
        required = sum(not p.optional for p in self.params)
        shapes = [[p.name.upper() for p in self.params[:k]] for k in range(required, len(self.params) + 1)]
        if self.fixed:
            shapes += [[_fmt(v) for _, v in self.fixed] + s for s in shapes]
        return shapes

    def forms(self) -> list[str]:
        """The valid spellings, e.g. ``["uniform:UPPER", "uniform:0,UPPER"]``."""
        return [self.keyword + (":" + ",".join(s) if s else "") for s in self._shapes()]

    def check(self, prior: Any) -> None:
        """Validate and normalise ``prior``'s parameters in place (frozen dataclasses too).

        Raises
        ------
        InputError
            Naming the class, the parameter and the value.
        """
        owner = type(prior).__name__
        for p in self.params:
            value = getattr(prior, p.attr)
            if value is None and p.optional:
                continue
            if self.vector:
                value = _coef_param(owner, p.name, value, p.positive)
            else:
                value = (_positive if p.positive else _finite)(owner, p.name, value)
            object.__setattr__(prior, p.attr, value)

    def spell(self, prior: Any) -> str:
        """``prior``'s canonical spelling, read back by :meth:`parse`."""
        values = (getattr(prior, p.attr) for p in self.params)
        parts = [_fmt(v) for _, v in self.fixed] + [_fmt_param(v) for v in values if v is not None]
        return self.keyword + (":" + ",".join(parts) if parts else "")

    def parse(self, args: list[str]) -> Any:
        """Build the prior from the spelled parameters after the keyword.

        Raises
        ------
        InputError
            Wrong number of parameters, a non-number, a wrong fixed constant or a bad value.
        """
        n = len(args)
        counts = [len(s) for s in self._shapes()]
        if n not in counts:
            want = " or ".join(str(k) for k in counts)
            raise InputError(f"{self.keyword} takes {want} parameter(s), got {n}")
        try:
            values = [_number(a, self.vector) for a in args]
        except ValueError:
            raise InputError("parameters must be numbers") from None
        lead = n - min(n, len(self.params))
        for (label, want_value), got, text in zip(self.fixed[:lead], values, args):
            if got != want_value:
                raise InputError(f"the {label} of a {self.keyword} prior must be {_fmt(want_value)}, got {text}")
        return self.cls(*values[lead:])


class Registered:
    """What every prior class gets from its row of the registry: validation, ``spec``, ``str``.

    :func:`register` sets the class attribute ``_family``; a dataclass subclass validates its
    parameters after ``__init__`` through it.
    """

    _family: ClassVar[Family]

    def __post_init__(self) -> None:
        self._family.check(self)

    @property
    def spec(self) -> str:
        """The command-line spelling, read back by :func:`~metapool.priors.parse_tau_prior` /
        :func:`~metapool.priors.parse_beta_prior`."""
        return self._family.spell(self)

    def __str__(self) -> str:
        return self.spec


def register(*families: Family) -> Mapping[str, Family]:
    """Attach each row to its class and return the read-only table ``{keyword: family}``.

    Parameters
    ----------
    *families : Family
        The rows, in the order of the help text.

    Returns
    -------
    Mapping of str to Family
    """
    for family in families:
        family.cls._family = family
    return MappingProxyType({family.keyword: family for family in families})


def forms(families: Mapping[str, Family]) -> list[str]:
    """Every valid spelling of every family in ``families``, in table order."""
    return [form for family in families.values() for form in family.forms()]


def parse_spec(spec: Any, base: type, what: str, families: Mapping[str, Family]) -> Any:
    """Read a prior from its spelling ``KEYWORD[:P1,P2,...]`` (case-insensitive keyword).

    Parameters
    ----------
    spec : str or base
        The spelling; an instance of ``base`` is returned unchanged.
    base : type
        The kind of prior (``TauPrior`` or ``BetaPrior``).
    what : str
        The prior's name in messages (``"tau"``, ``"mu/beta"``).
    families : Mapping of str to Family
        The table to read from.

    Returns
    -------
    base

    Raises
    ------
    InputError
        One line naming the bad spec, saying what is wrong, and listing the valid forms.
    TypeError
        If ``spec`` is neither a string nor a ``base``.
    """
    if isinstance(spec, base):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"{what} prior must be a spec string or a {base.__name__}, got {type(spec).__name__}")
    keyword, sep, rest = spec.strip().partition(":")
    keyword = keyword.strip().lower()
    args = [a.strip() for a in rest.split(",")] if sep else []
    try:
        if keyword not in families:
            raise InputError(f"unknown prior {keyword!r}")
        return families[keyword].parse(args)
    except InputError as err:
        valid = ", ".join(forms(families))
        raise InputError(f"invalid {what} prior {spec!r}: {err}; valid forms: {valid}") from None
