"""Errors of stores that the CLI reports in one line (imports nothing): ``StoreError`` and its
kinds with exit status 2 (a store that cannot be used as it is), ``InterruptedRunError`` with exit
status 1 (the machine refused a write: a full disk, a permission)."""


class StoreError(Exception):
    """A store that cannot be used as it is: the message names the store and what to do."""


class StoreLockedError(StoreError):
    """Another live process holds the store's writer lock (``sweep.store.lock``)."""


class CorruptStoreError(StoreError):
    """A stored chunk cannot be decoded, or the store's records of itself cannot be read."""


class InterruptedRunError(OSError):
    """An OSError that stopped a run (``ENOSPC``: a full disk), with what the run left behind in
    the store and how to go on in its ``strerror``; ``errno`` and ``filename`` are the cause's."""
