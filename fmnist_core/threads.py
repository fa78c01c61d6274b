"""One CPU thread for small tensor work (a single image, a 10,000 x 10 table).

On this kind of 2-core CPU, torch's second thread made each small op wait ~10-25 ms while a
training ran next to it (measured in the sketch, explain and dynamics code). With torch's
OpenMP backend the setting is per calling thread, so a training thread keeps its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
