"""Reading untrusted files in a child process that can be killed.

A hostile attachment (a decompression bomb, a PDF that sends a parser into a
loop, a file built to exhaust memory) must not stop a crawl. Each file is read
in a child of a fork server, under an address-space limit, and killed when it
takes too long; the crawl records the reason and goes on.
"""

from __future__ import annotations

import multiprocessing
import resource
from multiprocessing.connection import Connection

from .files import FileText, extract_file_text, sniff_format

DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY = 1024 * 1024 * 1024
DEFAULT_TEXT_MAX = 10 * 1024 * 1024

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["crawler.extract.files"])


def cap_text(result: FileText, text_max: int) -> FileText:
    """``result`` with its text cut to ``text_max`` bytes of UTF-8, the cut said in its ``error``."""
    if result.text is None or len(result.text) * 4 <= text_max:
        return result
    encoded = result.text.encode()
    if len(encoded) <= text_max:
        return result
    note = (f"text cut at {text_max:,} of {len(encoded):,} bytes (ZWGK_ATTACHMENT_TEXT_MAX)"
            + (f"; {result.error}" if result.error else ""))
    return FileText(result.format, encoded[:text_max].decode(errors="ignore"), note)


def _work(connection: Connection, data: bytes, name: str, memory: int, text_max: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    connection.send(cap_text(extract_file_text(data, name), text_max))
    connection.close()


def extract_file_text_safely(data: bytes, name: str = "", timeout: float = DEFAULT_TIMEOUT,
                             memory: int = DEFAULT_MEMORY, text_max: int = DEFAULT_TEXT_MAX) -> FileText:
    """:func:`extract_file_text` in a killable child process with time and memory limits, its text capped."""
    receiver, sender = _context.Pipe(duplex=False)
    process = _context.Process(target=_work, args=(sender, data, name, memory, text_max), daemon=True)
    process.start()
    sender.close()
    try:
        if receiver.poll(timeout):
            try:
                result: FileText = receiver.recv()
                return result
            except EOFError:
                pass
        else:
            process.kill()
            return FileText(sniff_format(data, name), error=f"not extracted: reading took over {timeout:g} s")
    finally:
        process.join(5)
        receiver.close()
    return FileText(sniff_format(data, name),
                    error=f"not extracted: the reader died"
                          f" (exit {process.exitcode}; over the {memory >> 20} MB limit?)")
