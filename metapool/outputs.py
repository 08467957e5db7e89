"""Writing results to files, losing nothing: tables as CSV / JSON, draws, figures, one folder per run.

A run's files are written into a temporary folder beside the target and moved into place only
when every file is complete, so a failed run leaves nothing behind and two runs aimed at the
same folder never mix. A folder is never emptied and a file that metapool did not write is
never replaced: an earlier metapool report in the folder (its ``metadata.json`` lists its
files) is replaced only with ``overwrite=True``, and then only the files that report wrote.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from metapool.errors import InputError

if TYPE_CHECKING:  # pandas is imported where it is used: it is slow to import
    import pandas as pd

__all__ = [
    "OutputFile",
    "MANIFEST",
    "check_out_dir",
    "write_run",
    "table_records",
    "table_to_json",
    "jsonable",
    "write_draws",
    "read_draws",
    "netcdf_tree",
    "draws_file_name",
    "DRAWS",
    "FLAT_DRAWS",
    "NETCDF_ENGINE",
    "safe_names",
]

#: The file in which a run lists what it wrote (and how study labels became file names).
MANIFEST = "metadata.json"
#: The whole DataTree of draws, every group, in ArviZ's netCDF layout.
DRAWS = "draws.nc"
#: The flat draws (one column per parameter) for spreadsheets.
FLAT_DRAWS = "draws.csv"
#: The netCDF engine (a dependency: h5netcdf with h5py).
NETCDF_ENGINE = "h5netcdf"
#: Per group, the attrs that netCDF cannot hold natively (lists, None, booleans, nested
#: mappings), as JSON, so that :func:`read_draws` restores them exactly.
ATTRS_JSON = "metapool_attrs_json"
#: Per group, the text coordinates held as object arrays (netCDF gives text back as fixed-width
#: strings), so that :func:`read_draws` restores their dtype.
OBJECT_COORDS = "metapool_object_coords"


@dataclass(frozen=True)
class OutputFile:
    """One file of a run: its name in the folder and the function that writes it to a path."""

    name: str
    write: Callable[[Path], None]


# ----------------------------------------------------------------------------- formats
def jsonable(value: Any) -> Any:
    """Plain JSON types for nested dicts, lists, numpy values; NaN and infinities as null."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def table_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A summary as records ``{"parameter": ..., "mean": ..., ...}``; NaN as None."""
    out = []
    for name, row in table.iterrows():
        rec: dict[str, Any] = {"parameter": str(name)}
        for col, val in row.items():
            if isinstance(val, (bool, np.bool_, str)) or val is None:
                rec[str(col)] = jsonable(val)          # flags and text columns stay as they are
                continue
            v = float(val)
            rec[str(col)] = None if not math.isfinite(v) else v
        out.append(rec)
    return out


def table_to_json(table: pd.DataFrame) -> str:
    """A summary as a JSON list of records ``{"parameter": ..., "mean": ..., ...}``; NaN as null."""
    return json.dumps(table_records(table), indent=2)


def write_json(obj: Any) -> Callable[[Path], None]:
    """A writer of ``obj`` as indented JSON (made plain by :func:`jsonable`)."""
    return lambda path: path.write_text(json.dumps(jsonable(obj), indent=2) + "\n")


def write_table(table: pd.DataFrame, fmt: str = "csv") -> Callable[[Path], None]:
    """A writer of a summary table as CSV (index ``parameter``) or JSON records."""
    if fmt == "json":
        return lambda path: path.write_text(table_to_json(table) + "\n")
    return lambda path: table.to_csv(path, index_label=table.index.name or "parameter")


def write_figure(make: Callable[[], Any]) -> Callable[[Path], None]:
    """A writer of the matplotlib figure (or Axes) that ``make()`` returns, as PNG; closes it."""
    def write(path: Path) -> None:
        import matplotlib.pyplot as plt

        obj = make()
        fig = getattr(obj, "figure", obj)
        fig.savefig(path, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)

    return write


def write_draws(dt: Any, path: Path) -> None:
    """Write a DataTree of draws as netCDF (``.nc``, every group) or as a flat CSV (``.csv``).

    The netCDF file is ArviZ's layout (one netCDF group per DataTree group: ``posterior``,
    ``posterior_predictive``, ``log_likelihood``, ``sample_stats``, ``observed_data``,
    ``constant_data``, ``prior``, ``log_prior`` where present), written by h5netcdf, so that
    ``xarray.open_datatree(path)`` and ``arviz.from_netcdf(path)`` reload it; :func:`read_draws`
    reloads it identically (see :func:`netcdf_tree`). The CSV has columns ``chain``, ``draw``
    and one per flat parameter name (``tau``, ``mu``, ``theta[A]``, ..., ``y_pred[A]``).
    """
    import pandas as pd

    if path.suffix == ".nc":
        netcdf_tree(dt).to_netcdf(path, engine=NETCDF_ENGINE)
        return
    from metapool.layout import flat_draw_arrays

    flat = flat_draw_arrays(dt)
    chains, draws = next(iter(flat.values())).shape
    frame = pd.DataFrame({"chain": np.repeat(np.arange(chains), draws), "draw": np.tile(np.arange(draws), chains)})
    frame = pd.concat([frame, pd.DataFrame({k: v.ravel() for k, v in flat.items()})], axis=1)
    frame.to_csv(path, index=False, float_format="%.10g")


def _native_attr(value: Any) -> bool:
    """Whether netCDF stores an attr value as itself: a string or a real number (not a bool)."""
    return isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _numbers(value: Any) -> bool:
    return (isinstance(value, (list, tuple, np.ndarray))
            and all(_native_attr(v) and not isinstance(v, str) for v in np.asarray(value, dtype=object).ravel()))


def _encode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    exact: dict[str, Any] = {}
    for key, value in attrs.items():
        if _native_attr(value):
            out[key] = value
            continue
        exact[key] = jsonable(value)
        # lists of numbers stay arrays (readers such as run_info take them as they are; netCDF gives a
        # one-element list back as a scalar); the rest is JSON text
        if _numbers(value):
            floats = len(value) == 0 or any(isinstance(v, (float, np.floating)) for v in value)
            out[key] = np.asarray(value, dtype=float if floats else np.int64)
        else:
            out[key] = json.dumps(jsonable(value))
    if exact:
        out[ATTRS_JSON] = json.dumps(exact)
    return out


def _decode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items() if k != ATTRS_JSON}
    if ATTRS_JSON in attrs:
        out.update(json.loads(str(attrs[ATTRS_JSON])))
    return out


def netcdf_tree(dt: Any) -> Any:
    """A copy of a DataTree that netCDF holds without loss.

    Attrs netCDF cannot store as they are (``None``, booleans, nested mappings, lists: a
    one-element list comes back as a scalar) are written as JSON text, lists of numbers as
    arrays (so that plain readers see numbers), and all of them are recorded exactly in each group's ``metapool_attrs_json``
    attr, which :func:`read_draws` decodes. Values, dims and coordinates are unchanged.
    """
    import xarray as xr

    nodes = {}
    for node in dt.subtree:
        ds = node.to_dataset(inherit=False).copy()
        ds.attrs = _encode_attrs(node.attrs)
        for name in ds.variables:
            ds.variables[name].attrs = _encode_attrs(ds.variables[name].attrs)
        objects = [str(c) for c in ds.coords if ds[c].dtype == object]
        if objects:
            ds.attrs[OBJECT_COORDS] = json.dumps(objects)
        nodes[node.path] = ds
    return xr.DataTree.from_dict(nodes)


def read_draws(path: str | os.PathLike) -> Any:
    """Reload a ``draws.nc`` written by :func:`write_draws` as the DataTree it was written from.

    ``xarray.open_datatree`` (or ``arviz.from_netcdf``) reads the same values, dims and
    coordinates; this also restores the attrs netCDF cannot hold natively (lists, None,
    booleans, nested mappings) and the text coordinates that were object arrays (study labels
    and coefficient names, as :mod:`metapool.layout` makes them) as object arrays again. The file is read into memory and
    closed.

    Returns
    -------
    xarray.DataTree
    """
    import xarray as xr

    with xr.open_datatree(path, engine=NETCDF_ENGINE) as tree:
        tree = tree.load()
        nodes = {}
        for node in tree.subtree:
            ds = node.to_dataset(inherit=False).copy()
            objects = json.loads(str(node.attrs.get(OBJECT_COORDS, "[]")))
            ds.attrs = _decode_attrs({k: v for k, v in node.attrs.items() if k != OBJECT_COORDS})
            for name in ds.variables:
                ds.variables[name].attrs = _decode_attrs(ds.variables[name].attrs)
            text = {c: ds[c].values.astype(object) for c in objects if c in ds.coords}
            nodes[node.path] = ds.assign_coords({c: (ds[c].dims, v) for c, v in text.items()}) if text else ds
    return xr.DataTree.from_dict(nodes)


def draws_file_name() -> str:
    """``draws.nc``: the whole DataTree (h5netcdf is a dependency); ``draws.csv`` is written beside it."""
    return DRAWS


# ----------------------------------------------------------------------------- file names
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_names(labels: Sequence[str], prefix: str = "", suffix: str = "") -> dict[str, str]:
    """Unique, portable file names for labels: ``{"a b": "predictive_a_b.png", "a/b": "predictive_a_b-2.png"}``.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``; names that
    would collide (also case-insensitively, for case-insensitive file systems) get ``-2``,
    ``-3``, ... in the order of ``labels``.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for label in labels:
        stem = _UNSAFE.sub("_", str(label)).strip("_.") or "study"
        name, k = f"{prefix}{stem}{suffix}", 1
        while name.lower() in taken:
            k += 1
            name = f"{prefix}{stem}-{k}{suffix}"
        taken.add(name.lower())
        out[str(label)] = name
    return out


# ----------------------------------------------------------------------------- the run folder
def _earlier_report(folder: Path) -> list[str] | None:
    """The files an earlier metapool run lists in the folder's manifest, or None when there is none."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        files = meta.get("files") if isinstance(meta, dict) else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(files, list) or "metapool_version" not in meta:
        return None
    return [str(f) for f in files if isinstance(f, str) and "/" not in f and f not in (".", "..")]


def check_out_dir(out: str | os.PathLike, names: Iterable[str], overwrite: bool = False) -> Path:
    """Check, before any work, that a run can write ``names`` into ``out`` without losing anything.

    Parameters
    ----------
    out : path
        The target folder (created by :func:`write_run` when absent).
    names : iterable of str
        The files the run will write.
    overwrite : bool
        Allow replacing an earlier metapool report in the folder (only its own files).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError
        ``out`` is a file; its parent folder is missing or not writable; the folder holds an
        earlier report and ``overwrite`` is False; or a file the run would write exists and was
        not written by metapool.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise InputError(f"--out {out}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: cannot write in {parent} (permission denied)")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"--out {out}: the folder is not writable (permission denied)")
        _check_collisions(path, list(names), overwrite)
    return path


def _check_collisions(folder: Path, names: list[str], overwrite: bool) -> None:
    earlier = _earlier_report(folder)
    ours = set(earlier or [])
    if earlier is not None and not overwrite:
        raise InputError(f"--out {folder}: holds the report of an earlier metapool run ({MANIFEST} lists "
                         f"{len(earlier)} files); use --overwrite to replace it, or choose another folder")
    foreign = [n for n in names if (folder / n).exists() and n not in ours]
    if foreign:
        raise InputError(f"--out {folder}: would replace {', '.join(foreign[:3])}"
                         f"{' ...' if len(foreign) > 3 else ''}, which metapool did not write; "
                         "choose another folder")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder's parent while a run moves its files in (POSIX flock)."""
    import fcntl

    lock = folder.parent / f".{folder.name}.metapool-lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                lock.unlink()


def write_run(out: str | os.PathLike, files: Sequence[OutputFile], manifest: Mapping[str, Any],
              overwrite: bool = False) -> list[str]:
    """Write a run's files and its manifest into ``out`` all at once, or not at all.

    Parameters
    ----------
    out : path
        Target folder.
    files : sequence of OutputFile
        The run's files (unique names).
    manifest : mapping
        What to record in ``metadata.json`` besides ``files`` (command, versions, label map ...).
    overwrite : bool
        Replace an earlier metapool report in the folder (its own files only).

    Returns
    -------
    list of str
        The names written, ``metadata.json`` last.

    Notes
    -----
    Files are written into a temporary folder beside ``out``. When ``out`` does not exist the
    temporary folder is renamed to it (atomic). Otherwise, under a lock, the collision rules of
    :func:`check_out_dir` are checked again, the earlier report's files that this run does not
    write are removed (so the folder never mixes two runs), and the new files are moved in.
    """
    names = [f.name for f in files] + [MANIFEST]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate output file names: {names}")
    path = check_out_dir(out, names, overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        for f in files:
            f.write(tmp / f.name)
        write_json({**manifest, "files": names})(tmp / MANIFEST)
        with _locked(path):
            if _move_new(tmp, path):
                return names
            _check_collisions(path, names, overwrite)
            for old in _earlier_report(path) or []:
                if old not in names:
                    with contextlib.suppress(FileNotFoundError):
                        (path / old).unlink()
            for name in names:
                os.replace(tmp / name, path / name)
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_new(tmp: Path, path: Path) -> bool:
    """Rename the finished folder to ``path`` if ``path`` does not exist (or is empty)."""
    if path.is_dir():
        try:
            path.rmdir()              # only succeeds when empty
        except OSError:
            return False
    try:
        os.rename(tmp, path)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
    return True
