"""A content-keyed on-disk cache whose entries are read without unpickling and checked.

An entry is stored under the sha256 of everything its value depends on: the
fields its caller names (content digests of weights and inputs, settings), a
fingerprint of the source of the code that computes it, and the versions of
sklyap and torch. Entries are ``torch.save`` files read back with
``weights_only=True`` (tensors and plain containers only: no code runs), and
each one is checked against its key and its checksum before it is served.

At about 530 lines this module is just over the ~500 the package keeps to:
keying, checked reading and the inventory (:func:`cache_info`,
:func:`clear_cache`) share the entry format and read best beside it.
"""

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from ._validation import caller_stacklevel

__all__ = [
    "CacheInfo",
    "ContentCache",
    "cache_info",
    "clear_cache",
    "code_fingerprint",
    "default_cache_dir",
    "digest",
    "import_closure",
]

_FOLDER = "sklyap-cache-v1"
_ENTRY = ("key", "fields", "checksum", "payload")


def default_cache_dir():
    """The default cache folder.

    Returns
    -------
    Path
        ``$SKLYAP_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/sklyap`` when
        ``XDG_CACHE_HOME`` is set, else ``~/.cache/sklyap``.
    """
    if os.environ.get("SKLYAP_CACHE_DIR"):
        return Path(os.environ["SKLYAP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sklyap"


def _feed(h, obj):
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"tensor:{t.dtype}:{tuple(t.shape)}:".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, (np.ndarray, np.generic)):
        a = np.ascontiguousarray(obj)
        if a.dtype.hasobject:
            raise TypeError("digest cannot hash numpy arrays of Python objects")
        h.update(f"array:{a.dtype.str}:{a.shape}:".encode())
        h.update(a.tobytes())
    elif isinstance(obj, dict):
        items = sorted(obj.items(), key=lambda kv: (type(kv[0]).__name__, repr(kv[0])))
        h.update(f"dict:{len(items)}:".encode())
        for key, value in items:
            _feed(h, key)
            _feed(h, value)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__}:{len(obj)}:".encode())
        for value in obj:
            _feed(h, value)
    elif obj is None or isinstance(obj, (bool, int, str)):
        text = repr(obj).encode()
        h.update(f"{type(obj).__name__}:{len(text)}:".encode() + text)
    elif isinstance(obj, float):
        h.update(f"float:{obj.hex()}:".encode())
    else:
        raise TypeError(f"digest cannot hash {type(obj).__name__!r}")


def digest(obj):
    """A deterministic sha256 of a nested value.

    Parameters
    ----------
    obj : dict, list, tuple, str, int, float, bool, None, Tensor or ndarray
        Nested freely. Dicts are hashed in an order of their keys, not of
        insertion; tensors and arrays by their dtype, shape and bytes (on the
        CPU, in row-major order), so a non-contiguous view hashes as its copy.

    Returns
    -------
    str
        64 hexadecimal digits.

    Raises
    ------
    TypeError
        For any other type, and for arrays of Python objects.
    """
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _source(name):
    """The source file of the module ``name``, as bytes."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise ValueError(f"no source file found for module {name!r}")
    return Path(spec.origin).read_bytes()


def _is_package(name):
    spec = importlib.util.find_spec(name)
    return spec is not None and spec.submodule_search_locations is not None


def _imported(name):
    """The modules of ``name``'s own package that its source imports, anywhere in it."""
    package = name.split(".")[0]
    here = name if _is_package(name) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(_source(name))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == package)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module.split(".")[0] != package:
                continue
            found.add(module)
            # "from . import x" and "from .pkg import sub" may name modules.
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                if importlib.util.find_spec(module) and _is_package(module):
                    with contextlib.suppress(ModuleNotFoundError):
                        if importlib.util.find_spec(candidate) is not None:
                            found.add(candidate)
    return found


def import_closure(modules):
    """``modules`` and every module of their package that running them can import.

    Read from the sources, without importing: the imports anywhere in a
    module (inside functions too), followed through, with the packages
    that hold each module (whose ``__init__`` runs first).

    Parameters
    ----------
    modules : iterable of str
        Dotted names.

    Returns
    -------
    list of str
        Sorted.
    """
    todo, seen = list(modules), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(_imported(name))
    return sorted(seen)


def code_fingerprint(modules):
    """A sha256 over the source files of ``modules``.

    Parameters
    ----------
    modules : iterable of module or str
        Modules, or their dotted names (found without being imported). Their
        order does not matter.

    Returns
    -------
    str
        64 hexadecimal digits; it changes when any of the files does.
    """
    names = sorted({m.__name__ if isinstance(m, ModuleType) else str(m) for m in modules})
    return digest({name: hashlib.sha256(_source(name)).hexdigest() for name in names})


def _versions():
    import sklyap

    return {"sklyap": sklyap.__version__, "torch": torch.__version__}


def _code(modules):
    names = sorted({m.__name__ if isinstance(m, ModuleType) else str(m) for m in modules})
    return {"modules": names, "fingerprint": code_fingerprint(names) if names else None}


def _check_plain(obj):
    """Refuse payloads that ``torch.load(weights_only=True)`` would not give back as they are."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"cache payload dict keys must be str or int, got {key!r}")
            _check_plain(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _check_plain(value)
    elif not (obj is None or isinstance(obj, (torch.Tensor, str, int, float, bool))):
        raise TypeError(
            f"a cache payload holds tensors and plain containers only, not {type(obj).__name__!r}"
        )


class ContentCache:
    """An on-disk cache of values keyed by what they depend on.

    Entries live at ``<location>/sklyap-cache-v1/<kind>/<key>.pt``. The key is
    the sha256 of a canonical JSON of ``kind``, the caller's ``fields``, the
    modules of ``code`` with their :func:`code_fingerprint`, and the versions
    of sklyap and torch. An entry is written to a temporary file of its folder
    and renamed into place, so a reader never sees a partial one. It is read
    with ``torch.load(weights_only=True)``, which runs no code, and served only
    if its stored key is the key asked for and its payload matches its stored
    checksum; otherwise (or when it cannot be read) a ``UserWarning`` names the
    file and the value is recomputed and rewritten. Nothing is deleted: entries
    of other code or versions stay until :func:`clear_cache`.

    The object holds only its location, so it pickles to joblib's workers.

    Parameters
    ----------
    location : str or Path, default=None
        The cache folder; ``None`` uses :func:`default_cache_dir`.
    """

    def __init__(self, location=None):
        self.location = Path(default_cache_dir() if location is None else location)

    def __repr__(self):
        return f"ContentCache({str(self.location)!r})"

    def key(self, kind, fields, code=()):
        """The key of an entry, and the canonical JSON it is the sha256 of.

        Parameters
        ----------
        kind : str
            A name for the kind of value (a folder of the cache).
        fields : dict
            JSON-serialisable: everything the value depends on, with content
            digests (:func:`digest`) for weights and inputs.
        code : iterable of module or str, default=()
            The modules that compute the value.

        Returns
        -------
        key : str
        fields_json : str
        """
        if not kind or not isinstance(kind, str) or os.sep in kind or kind.startswith("."):
            raise ValueError(f"kind must be a plain folder name, got {kind!r}")
        keyed = {"kind": kind, "fields": fields, "code": _code(code), "versions": _versions()}
        text = json.dumps(keyed, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest(), text

    def path(self, kind, key):
        """Where the entry of ``key`` lives."""
        return self.location / _FOLDER / kind / f"{key}.pt"

    def get(self, kind, fields, code=()):
        """The cached payload for these fields, or ``None`` when there is no valid entry.

        A present but invalid entry (unreadable, of another key, or not
        matching its checksum) warns and counts as absent.
        """
        key, _ = self.key(kind, fields, code)
        return _load(self.path(kind, key), key)

    def put(self, kind, fields, payload, code=()):
        """Write ``payload`` (tensors, dicts with str or int keys, lists, tuples,
        str, int, float, bool, None) as the entry for these fields.

        Returns
        -------
        Path
            The entry's file.
        """
        if payload is None:
            raise ValueError("a cache payload must not be None (None means no entry)")
        _check_plain(payload)
        key, text = self.key(kind, fields, code)
        path = self.path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"key": key, "fields": text, "checksum": digest(payload), "payload": payload}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(entry, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def get_or_compute(self, kind, fields, compute, code=()):
        """The cached payload, or ``compute()``'s, written to the cache first.

        Parameters
        ----------
        kind, fields, code
            As for :meth:`key`.
        compute : callable
            Called without arguments when there is no valid entry; returns
            the payload (see :meth:`put`).

        Returns
        -------
        payload
        """
        payload = self.get(kind, fields, code)
        if payload is None:
            payload = compute()
            self.put(kind, fields, payload, code)
        return payload


def _read(path):
    """``(entry, None)`` for a readable entry file, else ``(None, what is wrong)``."""
    try:
        with warnings.catch_warnings():  # torch's own remarks on a file that is refused anyway
            warnings.simplefilter("ignore")
            entry = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        return None, None
    except Exception as exc:  # a truncated file, junk, a pickle that would run code
        return None, f"cannot be read safely ({type(exc).__name__}: {str(exc)[:200]})"
    if not isinstance(entry, dict) or sorted(entry) != sorted(_ENTRY):
        return None, "is not a sklyap cache entry"
    return entry, None


def _load(path, key):
    entry, problem = _read(path)
    if entry is not None:
        if entry["key"] != key:
            problem = f"holds the entry of another key ({str(entry['key'])[:16]}...)"
        elif digest(entry["payload"]) != entry["checksum"]:
            problem = "does not match its checksum (corrupted)"
        else:
            return entry["payload"]
    if problem is not None:
        warnings.warn(
            f"sklyap cache entry {path} {problem}; it is not used, and is recomputed",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
    return None


def _is_current(path, fingerprints):
    """Whether the entry at ``path`` is readable and was made by this code and these versions.

    ``fingerprints`` memoises the code of each set of modules over a scan.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            entry = torch.load(path, weights_only=True, map_location="cpu", mmap=True)
        keyed = json.loads(entry["fields"])
        modules = tuple(keyed["code"]["modules"])
        if modules not in fingerprints:
            fingerprints[modules] = _code(modules)
        return (
            entry["key"] == path.stem == hashlib.sha256(entry["fields"].encode()).hexdigest()
            and keyed["code"] == fingerprints[modules]
            and keyed["versions"] == _versions()
        )
    except Exception:  # unreadable, not an entry, or its modules are gone: not current
        return False


@dataclass
class CacheInfo:
    """What a cache folder holds (:func:`cache_info`).

    Attributes
    ----------
    location : Path
        The cache folder.
    kinds : dict
        Per kind of entry: ``{"entries": int, "bytes": int, "stale": int}``;
        stale entries are those not made by the current code and versions
        (or unreadable), which no key of this installation can reach.
    old_joblib : Path or None
        The ``joblib/sklyap`` folder left by earlier versions of sklyap, if any.
    old_joblib_bytes : int
    """

    location: Path
    kinds: dict = field(default_factory=dict)
    old_joblib: Path = None
    old_joblib_bytes: int = 0

    @property
    def n_entries(self):
        return sum(k["entries"] for k in self.kinds.values())

    @property
    def n_bytes(self):
        return sum(k["bytes"] for k in self.kinds.values())

    @property
    def n_stale(self):
        return sum(k["stale"] for k in self.kinds.values())

    def __str__(self):
        lines = [f"sklyap cache at {self.location}"]
        if not self.kinds:
            lines.append("  no entries")
        for kind, k in sorted(self.kinds.items()):
            lines.append(
                f"  {kind}: {k['entries']} entries, {_size(k['bytes'])}, {k['stale']} stale"
            )
        if self.kinds:
            lines.append(
                f"  total: {self.n_entries} entries, {_size(self.n_bytes)}, {self.n_stale} stale"
            )
        if self.old_joblib is not None:
            lines.append(
                f"  old joblib cache of earlier versions: {self.old_joblib} "
                f"({_size(self.old_joblib_bytes)}); `clear` removes it"
            )
        return "\n".join(lines)


def _size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _entries(location):
    root = Path(location) / _FOLDER
    return sorted(root.glob("*/*.pt")) if root.is_dir() else []


def _old_joblib(location):
    """Where joblib's Memory kept sklyap's functions before this cache: only sklyap's part
    of a ``joblib`` folder that other code may share."""
    return location / "joblib" / "sklyap"


def _tree_bytes(path):
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cache_info(location=None):
    """Count a cache folder's entries, bytes and stale entries, per kind.

    Parameters
    ----------
    location : str or Path, default=None
        ``None`` uses :func:`default_cache_dir`.

    Returns
    -------
    CacheInfo
        ``str()`` of it is a short report.
    """
    location = Path(default_cache_dir() if location is None else location)
    info, fingerprints = CacheInfo(location), {}
    for path in _entries(location):
        k = info.kinds.setdefault(path.parent.name, {"entries": 0, "bytes": 0, "stale": 0})
        k["entries"] += 1
        k["bytes"] += path.stat().st_size
        k["stale"] += not _is_current(path, fingerprints)
    if _old_joblib(location).is_dir():
        info.old_joblib = _old_joblib(location)
        info.old_joblib_bytes = _tree_bytes(info.old_joblib)
    return info


def clear_cache(location=None, stale_only=False):
    """Remove cache entries.

    Parameters
    ----------
    location : str or Path, default=None
        ``None`` uses :func:`default_cache_dir`.
    stale_only : bool, default=False
        Remove only the entries not made by the current code and versions
        (see :class:`CacheInfo`); otherwise remove the whole cache folder
        ``sklyap-cache-v1`` (temporary files of interrupted writes included)
        and the ``joblib/sklyap`` folder of earlier versions (only sklyap's part of
        a ``joblib`` folder other code may share).

    Returns
    -------
    list of Path
        The entry files and folders removed.
    """
    location = Path(default_cache_dir() if location is None else location)
    if stale_only:
        fingerprints = {}
        removed = [p for p in _entries(location) if not _is_current(p, fingerprints)]
        for path in removed:
            path.unlink(missing_ok=True)
        return removed
    removed = [p for p in (location / _FOLDER, _old_joblib(location)) if p.is_dir()]
    for path in removed:
        shutil.rmtree(path)
    with contextlib.suppress(OSError):  # joblib's folder, if nothing else of anyone's is left
        _old_joblib(location).parent.rmdir()
    return removed
