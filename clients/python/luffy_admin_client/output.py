"""What the CLI prints: a table or key-value lines for people, JSON with ``--json`` for scripts."""

import json
from collections.abc import Iterable, Sequence

import click
from pydantic import BaseModel


class Output:
    def __init__(self, as_json: bool):
        self.as_json = as_json

    def show(self, value, columns: Sequence[str] | None = None) -> None:
        """A model or a list of models: JSON, or a table (``columns``) / key-value lines."""
        data = plain(value)
        if self.as_json:
            click.echo(json.dumps(data, indent=2))
        elif isinstance(data, list):
            click.echo(table(data, columns or (list(data[0]) if data else [])))
        elif isinstance(data, dict):
            width = max(map(len, data), default=0)
            for name, item in data.items():
                click.echo(f"{name:<{width}}  {cell(item)}")
        else:
            click.echo(data)

    def lines(self, lines: Iterable[str], data) -> None:
        if self.as_json:
            click.echo(json.dumps(plain(data), indent=2))
        else:
            for line in lines:
                click.echo(line)


def plain(value):
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {name: plain(item) for name, item in value.items()}
    return value


def cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(rows: list[dict], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[index]) for line in cells)) for index, column in enumerate(columns)]
    header = "  ".join(column.upper().ljust(width) for column, width in zip(columns, widths, strict=True))
    body = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join([header, *(line.rstrip() for line in body)])
