"""vstudio: a virtual studio for small animation teams.

Terms used the same way everywhere:

- studio: one folder (``studio.toml``) naming a catalog database and an object store.
- object store (``store/``): content-addressed bytes. An *id* is the BLAKE3-256 of a
  file's plain bytes. A file is cut into *chunks*; small compressed chunks are grouped in
  *packs*; each pack has an *index*; a multi-chunk file has a *recipe* (its chunk list).
- catalog (``catalog/``): SQL metadata: users, tokens, projects, rights, locks, jobs.
- repository (``repo/``): per project a linear history of *revisions* r1, r2, ...; each
  *commit* names a *tree* (path -> file id, size, mode, mtime) stored in the object store.
- farm (``farm/``): a *job* has *blocks* (one job type each) split into *tasks* (frame
  chunks) that *workers* take by long-polling the manager.
- render (``render/``): scanners list what a file uses; a *render key* hashes the file,
  its inputs' keys and the *profile*; outputs are cached in the store under that key.
"""

__version__ = "0.1.0"
