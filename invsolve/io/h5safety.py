"""Refusing HDF5 objects whose data live outside the file being read.

HDF5 can make a dataset read data from elsewhere without any sign of it in the file's tree: external raw
storage (the bytes in another, plain file), external links (an object of another HDF5 file), virtual datasets
(slices of other files), and soft links (another path, which may not exist).  invsolve reads only what is in
the file it is given: every reader of HDF5 inputs gets its objects through :func:`checked_get` (or checks them
with :func:`check_dataset` / :func:`check_members`), which refuse the first three with one line naming the
object and how to bring the data in, resolve soft links inside the file, and name a dangling one.
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError

__all__ = ["checked_get", "check_dataset", "check_members", "link_problem"]

#: soft links followed in a row before the chain is taken for a loop
_MAX_SOFT = 16


def _join(base: str, target: str) -> str:
    """The absolute path of a soft link's ``target``, relative to the group ``base`` it sits in."""
    path = target if target.startswith("/") else f"{base.rstrip('/')}/{target}"
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
        else:
            parts.append(p)
    return "/" + "/".join(parts)


def link_problem(f, name: str, where: str, depth: int = 0) -> str | None:
    """Why ``name`` in the open file ``f`` may not be followed, or None.

    Arguments:
        f: An open ``h5py.File``.
        name: An absolute or root-relative object path.
        where: The object as the user named it, for the message (e.g. ``m.h5:/measurement``).

    Returns:
        One line for an external link on the way or a soft link to a missing object; None when every link of
        the path stays inside the file (a missing object itself is None too: the caller names it).
    """
    import h5py

    parts = [p for p in name.split("/") if p]
    current = "/"
    for i, part in enumerate(parts):
        path = f"{current.rstrip('/')}/{part}"
        try:
            link = f.get(path, getlink=True)
        except (KeyError, ValueError, RuntimeError):
            return None
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            return (f"{where} is an external link to {link.filename}:{link.path} (another file); invsolve reads only "
                    f"what is in the file given: give {link.filename}:{link.path} directly to read it")
        if isinstance(link, h5py.SoftLink):
            target = _join(current, link.path)
            if depth >= _MAX_SOFT:
                return f"{where} is a chain of more than {_MAX_SOFT} soft links (a loop?); name the dataset itself"
            rest = "/".join(parts[i + 1:])
            full = _join(target, rest) if rest else target
            problem = link_problem(f, target, where, depth + 1)
            if problem:
                return problem
            try:
                missing = f.get(target) is None
            except (KeyError, ValueError, RuntimeError):
                missing = True
            if missing:
                return (f"{where} is a soft link to {link.path}, which does not exist in the file; name an "
                        "existing dataset, or repair the link")
            return link_problem(f, full, where, depth + 1) if rest else None
        current = path
    return None


def check_dataset(ds, where: str) -> None:
    """Refuse a dataset whose values are stored outside its file (external raw storage, a virtual dataset).

    Arguments:
        ds: An ``h5py.Dataset``.
        where: The dataset as the user named it, for the message.

    Raises:
        DataError: One line naming the other files and how to copy the data in.
    """
    external = getattr(ds, "external", None)
    if external:
        files = ", ".join(sorted({str(e[0]) for e in external}))
        raise DataError(f"{where} is stored outside the file (external storage in {files}); copy the data into an "
                        "ordinary dataset of a new HDF5 file (read it with h5py and write it back) and give that file")
    if getattr(ds, "is_virtual", False):
        try:
            files = ", ".join(sorted({str(s.file_name) for s in ds.virtual_sources()}))
        except Exception:  # a damaged mapping still is virtual
            files = "other files"
        raise DataError(f"{where} is a virtual dataset whose data are in {files}; give those files directly, or "
                        "copy the data into an ordinary dataset of a new HDF5 file and give that file")


def checked_get(f, name: str, where: str | None = None) -> Any:
    """``f.get(name)`` after the checks: the object, or None where nothing of that name exists.

    Arguments:
        f: An open ``h5py.File``.
        name: The object's path in it.
        where: The object for messages; default ``FILE:NAME``.

    Raises:
        DataError: An external link, a dangling soft link, external storage or a virtual dataset (one line).
    """
    import h5py

    where = where or f"{f.filename}:{name if name.startswith('/') else '/' + name}"
    problem = link_problem(f, name, where)
    if problem:
        raise DataError(problem)
    try:
        obj = f.get(name)
    except (KeyError, ValueError, RuntimeError):
        return None
    if isinstance(obj, h5py.Dataset):
        check_dataset(obj, where)
    return obj


def check_members(group, where: str, depth: int = 0) -> None:
    """:func:`checked_get` of every member of ``group``, for readers that take all of them.

    Arguments:
        group: An ``h5py.File`` or group.
        where: The file for messages (members are named ``WHERE:/PATH``).
        depth: How many levels of subgroups to check as well (0: the direct members only).
    """
    import h5py

    f = group.file
    for key in list(group.keys()):
        path = f"{group.name.rstrip('/')}/{key}"
        obj = checked_get(f, path, f"{where}:{path}")
        if isinstance(obj, h5py.Group) and depth > 0:
            check_members(obj, where, depth - 1)
