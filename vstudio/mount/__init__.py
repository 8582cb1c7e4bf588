"""A FUSE view of a project's whole history; with ``--write`` its ``latest/`` is writable.

Layout under the mount point::

    latest/...      the newest revision; follows new commits within ~2 seconds
    r/N/...         every revision N = 1 .. head
    tags/NAME/...   the revision a tag names

Sizes, permission bits and modification times are as committed. Extended attributes give
a file's content id and the revision, author and lock holder of that version
(``user.vstudio.id``, ``user.vstudio.rev``, ``user.vstudio.author``, ``user.vstudio.lock``).

Terms: a *block* is a fixed-size, aligned slice of a file's content (4 MiB by default), the
unit this package fetches, verifies and caches. It is unrelated to the store's *chunks*
(content-defined, variable-size): a block read asks the store's ``read_range`` for exactly
its bytes, and the store fetches, decompresses and hash-checks only the chunks under it.

Why mfusepy and libfuse3: ``mfusepy`` (ctypes, no compiler, maintained fork of fusepy) is
already a dependency, runs libfuse3's multithreaded loop (``FUSE_LIBRARY_NAME=fuse3``), and
its path-based high-level API maps one-to-one onto the path-keyed ``RepoReader`` protocol.
``pyfuse3`` needs trio and an inode table of our own; its speed advantage matters little
here because the time goes into fetching blocks, which happens in threads outside the GIL.

The modules: ``view`` (pure path logic over a ``RepoReader``, unit-tested with
``fake.FakeReader``), ``blocks`` (block fetch, prefetch, disk cache), ``fs`` (the FUSE
operations), ``runner`` (mount/daemonise/unmount). Writing (``--write``): ``writecache``
(durable bytes and journal), ``overlay`` (latest/ with pending changes), ``autocommit``
(grouped commits, conflicts), ``writefs``/``writens`` (the FUSE operations), ``writemount``
(the wiring).
"""
