"""Numbers in report text: a value printed next to its limit never reads as equal to it.

``r_hat 1.0104 > 1.01`` printed with three decimals reads ``1.010 > 1.01``; :func:`format_pair`
adds digits until the printed value and the printed limit differ in the same direction as the
numbers themselves. Used by the validation reports and the NUTS run record.
"""

from __future__ import annotations

import math

__all__ = ["distinct_digits", "format_pair"]

_MAX_DIGITS = 17


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def distinct_digits(value: float, limit: float, digits: int = 3, style: str = "g") -> int:
    """Fewest digits >= ``digits`` at which ``value`` and ``limit`` print apart in their true order.

    Parameters
    ----------
    value, limit : float
        The number and the threshold it is compared with.
    digits : int, default 3
        Digits to start from (significant digits for ``style="g"``, decimals for ``"f"``).
    style : {"g", "f"}
        Format type of both numbers.

    Returns
    -------
    int
        ``digits`` when the numbers are equal or not finite; otherwise the first d >= digits
        such that sign(float(value printed) - float(limit printed)) = sign(value - limit)
        (at most 17, where every double prints exactly).
    """
    if style not in ("g", "f"):
        raise ValueError(f"style must be 'g' or 'f', got {style!r}")
    if not (math.isfinite(value) and math.isfinite(limit)) or value == limit:
        return int(digits)
    want = _sign(value - limit)
    for d in range(int(digits), _MAX_DIGITS + 1):
        if _sign(float(format(value, f".{d}{style}")) - float(format(limit, f".{d}{style}"))) == want:
            return d
    return _MAX_DIGITS


def format_pair(value: float, limit: float, digits: int = 3, style: str = "g",
                limit_format: str | None = None) -> tuple[str, str]:
    """``(value text, limit text)``, with as many digits as it takes to tell them apart.

    Parameters
    ----------
    value, limit : float
        The number and its threshold.
    digits, style
        As in :func:`distinct_digits`.
    limit_format : str, optional
        Format spec of the limit when it should keep its own spelling (``"g"`` prints 1.01 as
        given); default the value's.

    Examples
    --------
    >>> format_pair(1.0104, 1.01, 3, "f", limit_format="g")
    ('1.0104', '1.01')
    >>> format_pair(1.2345, 1.01, 3, "f", limit_format="g")
    ('1.234', '1.01')
    """
    d = distinct_digits(value, limit, digits, style)
    if limit_format is not None and math.isfinite(value) and math.isfinite(limit) and value != limit:
        # the limit keeps its spelling; the value needs enough digits to differ from that text
        shown = float(format(limit, limit_format))
        want = _sign(value - limit)
        while d < _MAX_DIGITS and _sign(float(format(value, f".{d}{style}")) - shown) != want:
            d += 1
        return format(value, f".{d}{style}"), format(limit, limit_format)
    return format(value, f".{d}{style}"), format(limit, f".{d}{style}")
