"""HTML to PDF with the system's headless Chromium (Debian ``chromium``): the same engine the page
is tested in, no PDF library and no Python browser driver at run time.

``chromium --headless --print-to-pdf`` on a file in a private temporary directory; the document is
self-contained (inline CSS and SVG), so Chromium fetches nothing, and it runs with networking
features off. One process per pack: a pack is asked for a few times a month, not per request.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path

from services.core.errors import HubError

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--no-pdf-header-footer", "--print-to-pdf-no-header")
TIMEOUT_SECONDS = 90


class PdfError(HubError):
    """The PDF could not be rendered (no Chromium, or it failed)."""


def chromium_path(configured: str | None = None) -> str:
    path = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise PdfError("no Chromium to print the pack with: install Debian's chromium "
                       "(apt-get install chromium) or set S115HUB_CHROMIUM_PATH")
    return path


def _command(exe: str, html_file: Path, pdf_file: Path, profile: Path) -> list[str]:
    return [exe, *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={pdf_file}",
            html_file.as_uri()]


def render_pdf(html: str, chromium: str | None = None) -> bytes:
    exe = chromium_path(chromium)
    with tempfile.TemporaryDirectory(prefix="s115hub-pack-") as tmp:
        d = Path(tmp)
        (d / "pack.html").write_text(html, encoding="utf-8")
        try:
            # The executable is the configured or PATH chromium; the arguments are our paths.
            done = subprocess.run(_command(exe, d / "pack.html", d / "pack.pdf", d / "profile"),  # noqa: S603
                                  capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PdfError(f"chromium did not finish the pack in {TIMEOUT_SECONDS}s") from exc
        return _result(d / "pack.pdf", done.returncode, done.stderr)


async def render_pdf_async(html: str, chromium: str | None = None) -> bytes:
    exe = chromium_path(chromium)
    with tempfile.TemporaryDirectory(prefix="s115hub-pack-") as tmp:
        d = Path(tmp)
        (d / "pack.html").write_text(html, encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            *_command(exe, d / "pack.html", d / "pack.pdf", d / "profile"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_SECONDS)
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise PdfError(f"chromium did not finish the pack in {TIMEOUT_SECONDS}s") from exc
        return _result(d / "pack.pdf", proc.returncode or 0, err)


def _result(pdf: Path, code: int, err: bytes) -> bytes:
    if not pdf.exists() or pdf.stat().st_size == 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise PdfError(f"chromium could not print the pack (exit {code}): {tail[0][:200]}")
    return pdf.read_bytes()
