"""One root exception; each class's docstring is its default message.

The CLI prints ``error: <message>`` and exits with ``exit_code``; the HTTP layer maps
``http_status``. Domain code raises these and never knows about either transport.
"""

from __future__ import annotations


class VStudioError(Exception):
    """Something went wrong."""

    exit_code = 1
    http_status = 400

    def __init__(self, message: str | None = None, **context: object) -> None:
        self.message = message or (self.__doc__ or "error").strip()
        self.context = context
        super().__init__(self.message)


class UsageError(VStudioError):
    """Bad usage: check the command's --help."""

    exit_code = 2
    http_status = 422


class BadInput(VStudioError):
    """The input is not valid."""

    http_status = 400


class NotFound(VStudioError):
    """Not found."""

    http_status = 404


class AlreadyExists(VStudioError):
    """It exists already."""

    http_status = 409


class Conflict(VStudioError):
    """The request conflicts with the current state."""

    http_status = 409


class NotAuthenticated(VStudioError):
    """Not logged in: pass a token with --token or VSTUDIO_TOKEN."""

    http_status = 401


class PermissionDenied(VStudioError):
    """You do not have the right to do this."""

    http_status = 403


class StudioNotFound(VStudioError):
    """No studio here: run 'vstudio init DIR' or pass --studio DIR (or set VSTUDIO_STUDIO)."""


class StoreError(VStudioError):
    """The object store failed."""


class CorruptObject(StoreError):
    """Stored data is corrupt: run 'vstudio store check' to list the damaged objects."""


class ObjectMissing(StoreError, NotFound):
    """No object with that id in the store."""

    http_status = 404


class BackendUnavailable(StoreError):
    """The storage backend cannot be reached: check the store URL, network and credentials."""


class DecryptionError(StoreError):
    """Cannot decrypt the store: wrong encryption key or passphrase."""


class ServerError(VStudioError):
    """The studio server could not be reached or answered with an error."""
