"""Errors of stores that the CLI reports in one line with exit status 2 (imports nothing)."""


class StoreError(Exception):
    """A store that cannot be used as it is: the message names the store and what to do."""


class StoreLockedError(StoreError):
    """Another live process holds the store's writer lock (``sweep.store.lock``)."""


class CorruptStoreError(StoreError):
    """A stored chunk cannot be decoded, or the store's records of itself cannot be read."""
