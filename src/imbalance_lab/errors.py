"""The exceptions users see as one sentence (no traceback): bad input, and a disk that is full."""

from __future__ import annotations

import errno


class ImbalanceLabError(ValueError):
    """Bad input or an impossible combination of axes; the message says what to change."""


class DiskFull(BaseException):
    """A write failed because a disk is full. Not an Exception: Hydra's launchers record a job's
    Exception and start the next job, which would fail the same way; this one passes through them,
    like KeyboardInterrupt, to `cli.main`, which stops the sweep with one sentence."""

    def __init__(self, uri: str, folder: str, detail: str):
        super().__init__(uri, folder, detail)  # args, so that it pickles across joblib's workers
        self.uri, self.folder, self.detail = uri, folder, detail


FULL_TEXTS = ("database or disk is full", "no space left on device", "disk quota exceeded")


def disk_full(err: BaseException | None) -> BaseException | None:
    """The error in `err`'s chain (its causes and the errors it was raised while handling) that says
    a disk is full: OSError ENOSPC/EDQUOT, or SQLite's or a server's text for it; else None."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return err
        if any(text in str(err).lower() for text in FULL_TEXTS):
            return err
        err = err.__cause__ or err.__context__
    return None
