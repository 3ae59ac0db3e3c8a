"""`route schema`: the complete JSON Schema of route files, for an editor to check them as you type.

schemas/route.schema.json covers the built-in components only; this command writes the schema for
the components installed here, plugins included, so that an editor knows a plugin's rules and
options too (docs/editors.md). `route init` writes it beside the routes it creates.

    route schema --output .route/route.schema.json
    python -m pipeline.commands.schema --builtin --output schemas/route.schema.json
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from pipeline.basics.errors import EXIT_FAILED
from pipeline.basics.plugins import Registry
from pipeline.commands.common import print_error
from pipeline.route.editorschema import EditorSchema, dumps, editor_schema, is_builtin

# Where `route init` puts the schema: in the state folder beside the route (ignored by git, by
# route's own file finders), named in the route's modeline relative to the route file.
PROJECT_SCHEMA = Path(".route") / "route.schema.json"


def build(builtin: bool = False, registry: Registry | None = None) -> EditorSchema:
    """The schema for the installed components (only route's own with `builtin`)."""
    return editor_schema(registry or Registry.discover(), is_builtin if builtin else None)


def write_schema(path: Path, schema: EditorSchema) -> None:
    """Write the schema to `path` whole or not at all (an editor may be reading the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(dumps(schema.schema), encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def counts(schema: EditorSchema) -> str:
    """`38 rules, 5 sources and 4 deliveries`: what an editor will know of."""
    defs = schema.schema["$defs"]
    n = {d: sum(1 for k in defs[d]["properties"] if k != "label") for d in ("step", "source", "delivery")}
    return f"{n['step']} rules, {n['source']} sources and {n['delivery']} deliveries"


@click.command("schema")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write the schema to FILE (e.g. .route/route.schema.json) instead of printing it.",
)
@click.option(
    "--builtin",
    is_flag=True,
    help="Only the components route ships, without plugins (what schemas/route.schema.json holds).",
)
def schema_command(output, builtin):
    """Print the JSON Schema of route files for the rules, sources and deliveries installed here.

    Point your editor at it (docs/editors.md) to have unknown rules, unknown options and wrong
    types flagged as you type, with each component's description on hover."""
    schema = build(builtin)
    for skipped in schema.skipped:
        click.echo(f"warning: {skipped}", err=True)
    if output is None:
        click.echo(dumps(schema.schema), nl=False)
        return
    try:
        write_schema(Path(output), schema)
    except OSError as exc:
        print_error(f"error: --output {output}: cannot write it: {exc.strerror or exc}")
        raise SystemExit(EXIT_FAILED) from None
    click.echo(f"wrote {output}: route files with {counts(schema)}")


if __name__ == "__main__":  # python -m pipeline.commands.schema, before `route schema` is registered
    schema_command()
