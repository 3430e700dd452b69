"""``s115hub vocabulary``: review the shipped free-text lists and try them on sample text.

An officer deciding whether a protocol may release a narrative with ``free_text: vocabulary`` or
``tags`` runs ``show`` on real-looking (never real) text and reads exactly what would leave.
"""

from __future__ import annotations

from pathlib import Path

import typer

vocabulary_app = typer.Typer(help="Free-text vocabularies and tag sets: list, show, try.",
                             no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"s115hub: error: {message}", err=True)
    return typer.Exit(2)


@vocabulary_app.command("list")
def list_lists() -> None:
    """Every shipped vocabulary and tag set with its SHA-256 (what protocol signatures bind)."""
    from services.protocols.vocabularies import NAMES_REF, available, sha256_of

    for ref in [*available(".txt"), *available(".yaml"), NAMES_REF]:
        typer.echo(f"{ref:24} sha256:{sha256_of(ref)}")


@vocabulary_app.command("show")
def show(ref: str = typer.Argument(..., help="id@version, e.g. incident-en@1 or mo-tags@1"),
         text: str = typer.Option(None, "--text", help="Sample text to release."),
         file: Path = typer.Option(None, "--file", help="A file of sample text.")) -> None:
    """What REF would release from the sample text (or, without text, what REF holds)."""
    from services.core.errors import HubError
    from services.protocols.transforms.free_text import lists_for
    from services.protocols.transforms.free_text_record import RecordWords
    from services.protocols.transforms.free_text_tags import find_tags
    from services.protocols.transforms.free_text_vocabulary import Release
    from services.protocols.vocabularies import load_tagset, load_vocabulary, path_of, sha256_of

    try:
        path = path_of(ref)
        if file is not None:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise _fail(f"cannot read {file}: {exc}") from None
        tags = path.suffix == ".yaml"
        if text is None:
            typer.echo(f"{ref}: {path} sha256:{sha256_of(ref)}")
            if tags:
                ts = load_tagset(ref)
                typer.echo(f"  {len(set(ts.phrases.values()))} tags from {len(ts.phrases)} "
                           "phrases")
            else:
                v = load_vocabulary(ref)
                typer.echo(f"  {len(v.words)} words, {len(v.lower_only)} lower-case only, "
                           f"{len(v.places)} places")
            return
        if tags:
            found = find_tags(text, load_tagset(ref))
            typer.echo("\n".join(found) if found else "(no tags)")
        else:
            typer.echo(Release(lists_for([ref]), RecordWords({})).run(text))
    except HubError as exc:
        raise _fail(str(exc)) from None
