"""Assemble batches ahead of the training step in a background thread.

:func:`prefetch` runs any iterator in a daemon thread and hands its items over through a
bounded queue, so that the next batches are gathered (from memory or from a memory-mapped
``.npy`` folder, :mod:`dcmnet.data.ondisk`) while the accelerator or XLA's CPU threads run
the current step. The items and their order are exactly those of the iterator, so
training is bitwise the same with and without prefetching. An exception raised while
assembling a batch is raised again in the consumer, at that batch.

:func:`prefetch_batches` is what the trainer uses: one epoch of a
:class:`~dcmnet.data.batching.BatchIterator`, prefetched, releasing the mapped pages of an
on-disk dataset after every batch so the process's resident memory stays flat.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

#: Batches assembled ahead of the one being used.
DEFAULT_DEPTH = 4
#: Release the pages of a memory-mapped dataset after this many batches. Every batch: the
#: kernel maps whole page-cache folios (often far more than a molecule's rows), and one
#: ``madvise`` costs well under a millisecond (measured: 8 → ≈ 270 MB of mapped pages at
#: most between releases, 1 → ≈ 20 MB, no slower).
RELEASE_EVERY = 1
_END, _ITEM, _ERROR = 0, 1, 2


def prefetch(iterable: Iterable[T], depth: int = DEFAULT_DEPTH, *,
             release: Callable[[], None] | None = None,
             release_every: int = RELEASE_EVERY) -> Iterator[T]:
    """Yield the items of ``iterable`` while a background thread produces the next ones.

    Args:
        iterable: any iterable (consumed in the background thread only).
        depth: at most this many items wait in the queue (≥ 1).
        release: optional callable run in the producer thread after every
            ``release_every`` items (e.g. :meth:`OnDiskDataset.release_pages`).
    Raises:
        Whatever ``iterable`` raises, in the consumer, after the items before it.
    Closing the generator (``break``, an exception in the loop, garbage collection) stops
    the thread after at most the item it is making.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def put(msg) -> bool:
        while not stop.is_set():
            try:
                q.put(msg, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for n, item in enumerate(iterable, 1):
                if not put((_ITEM, item)):
                    return
                if release is not None and n % max(1, int(release_every)) == 0:
                    release()
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 — handed to the consumer
            put((_ERROR, exc))

    thread = threading.Thread(target=produce, name="dcmnet-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == _ITEM:
                yield item
            elif kind == _ERROR:
                raise item
            else:
                return
    finally:
        stop.set()
        thread.join(timeout=10.0)
        if release is not None:
            release()


def prefetch_batches(iterator, epoch: int = 0, depth: int = DEFAULT_DEPTH) -> Iterator[dict]:
    """The batches of ``iterator.epoch_batches(epoch)`` (a ``BatchIterator``), prefetched.

    When the iterator's dataset has ``release_pages`` (an on-disk dataset), its mapped pages
    are released every :data:`RELEASE_EVERY` batches and at the end.
    """
    release = getattr(iterator.dataset, "release_pages", None)
    return prefetch(iterator.epoch_batches(epoch), depth, release=release)
