"""Where shard sets live: a local folder or an object-store URL, read through one door.

Every shard reader opens its tars with `open_binary` (``iter_tar_groups`` and what builds on it: audio,
label and code shards, the WebDataset stream), and the training recipes find shards with `glob` and small
files with `read_text`, so a URL works wherever a folder does. URLs go through fsspec: ``s3://bucket/prefix``
needs s3fs (``pip install 'ns3[s3]'``); any other fsspec protocol (``gs://``, ``az://``, ``memory://``) works
once its package is installed.

S3 settings come from the environment, as every AWS tool reads them: AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or an instance role), AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL for an
S3-compatible server (MinIO, Ceph, moto); botocore honours that one itself. Nothing here reads params.

Local locations stay `Path`s (callers use ``.name`` and ``.exists()`` on them); URLs stay strings, because
`Path` folds ``s3://bucket`` into ``s3:/bucket``.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Union

Location = Union[str, Path]


class StorageError(OSError):
    """An object store that cannot be reached or read (the message names the URL and what to check)."""


def is_url(location: Location) -> bool:
    """True for ``scheme://...`` strings (``s3://``, ``gs://``, ``file://``); a `Path` is always local."""
    return isinstance(location, str) and "://" in location


def join(root: Location, *names: str) -> Location:
    """``root/name/...``: a `Path` under a local folder, a string under a URL."""
    if is_url(root):
        return "/".join([str(root).rstrip("/"), *names])
    return Path(root).joinpath(*names)


def basename(location: Location) -> str:
    """The last component (a shard's file name), for a path or a URL alike."""
    return str(location).rstrip("/").rsplit("/", 1)[-1] if is_url(location) else Path(location).name


def _fix(url: str) -> str:
    """What to check for ``url``, in the words of its protocol."""
    if url.startswith(("s3://", "s3a://")):
        name = "AWS_ENDPOINT_URL_S3" if os.environ.get("AWS_ENDPOINT_URL_S3") else "AWS_ENDPOINT_URL"
        endpoint = os.environ.get(name)
        where = f"{name}={endpoint}" if endpoint else "AWS_ENDPOINT_URL is unset, so this is AWS itself"
        return ("check the bucket and prefix (copy shards up with e.g. `aws s3 sync data/shards "
                "s3://bucket/prefix/shards`), the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or "
                f"AWS_PROFILE) and, for MinIO, Ceph or moto, AWS_ENDPOINT_URL ({where})")
    return "check the URL and the credentials its fsspec backend reads"


def _filesystem(url: str):
    """(fsspec filesystem, path inside it) for ``url``; a protocol nobody can open is a StorageError."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as e:  # fsspec knows the protocol, its backend is not installed
        raise StorageError(f"{url}: {e} (for s3:// install ns3[s3], which brings s3fs)") from e
    except ValueError as e:  # "Protocol not known: ..."
        raise StorageError(f"{url}: {e}; shard locations are a local folder or an fsspec URL such as "
                           "s3://bucket/prefix") from e


def _missing(fs, url: str, path: str) -> str:
    """Why nothing is at ``url``: on S3 a missing bucket is told apart from a missing key or prefix."""
    bucket = path.split("/", 1)[0]
    if url.startswith(("s3://", "s3a://")) and not fs.exists(bucket):
        return f"{url}: bucket {bucket!r} does not exist at this endpoint; {_fix(url)}"
    return f"{url}: nothing there (no object with that name or prefix); {_fix(url)}"


@contextmanager
def _explained(fs, url: str, path: str) -> Iterator[None]:
    """Re-raise the store's errors as the same kind, naming ``url`` and the fix (botocore's say neither)."""
    try:
        yield
    except FileNotFoundError as e:
        raise FileNotFoundError(_missing(fs, url, path)) from e
    except PermissionError as e:
        raise PermissionError(f"{url}: access denied ({e}); {_fix(url)}") from e
    except StorageError:
        raise
    except Exception as e:  # connection refused, DNS, a server error after retries: botocore's types, not OSError
        raise StorageError(f"{url}: the store did not answer ({type(e).__name__}: {e}); {_fix(url)}") from e


def exists(location: Location) -> bool:
    """A file (or, under a URL, any object with that prefix) is there; a store that does not answer raises."""
    if not is_url(location):
        return Path(location).exists()
    fs, path = _filesystem(location)
    with _explained(fs, location, path):
        return fs.exists(path)


def glob(root: Location, pattern: str) -> list[Location]:
    """Sorted files under ``root`` matching ``pattern`` (``*``, ``?``, ``[0-9]``), as full paths or URLs.

    An empty result under a URL is checked further: when the prefix itself holds nothing (a missing bucket, a
    mistyped prefix) that is a FileNotFoundError naming the URL, not a silent empty list. Under a local folder an
    empty list is returned as before; callers say which stage to run.
    """
    if not is_url(root):
        return sorted(Path(root).glob(pattern))
    fs, path = _filesystem(root)
    with _explained(fs, root, path):
        found = fs.glob(f"{path.rstrip('/')}/{pattern}")
        if not found and not fs.exists(path):
            raise FileNotFoundError(path)  # -> the message of _missing
    return sorted(fs.unstrip_protocol(p) for p in found)


@contextmanager
def open_binary(location: Location) -> Iterator[BinaryIO]:
    """A binary file to read ``location`` from start to end (for a URL: fetched in large ranged blocks)."""
    if not is_url(location):
        with open(location, "rb") as f:
            yield f
        return
    fs, path = _filesystem(location)
    with _explained(fs, location, path):
        f = fs.open(path, "rb")
    with f:
        yield f


def read_text(location: Location, encoding: str = "utf-8") -> str:
    """A small file's text (manifests, code_info.json)."""
    if not is_url(location):
        return Path(location).read_text(encoding=encoding)
    with open_binary(location) as f:
        return f.read().decode(encoding)
