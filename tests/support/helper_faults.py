"""Helper pools (drorch.helpers.pool) with a fault injected, for the archiver's and restore's tests."""

from __future__ import annotations

import os
import signal
from typing import Any

from drorch.helpers.pool import Helpers


def one_helper_dies(kill_at: int) -> type[Helpers[Any]]:
    """A pool whose helper 0 is stopped from the start, so the first work it gets stays
    unanswered, and is killed when the ``kill_at``-th piece of work has been submitted."""

    class OneDies(Helpers[Any]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.submitted = 0
            os.kill(self.pids[0], signal.SIGSTOP)

        def submit(self, batch: Any, work: object) -> bool:
            accepted = super().submit(batch, work)
            self.submitted += 1
            if self.submitted == kill_at:
                os.kill(self.pids[0], signal.SIGKILL)
            return accepted

    return OneDies
