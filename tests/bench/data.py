"""Loading a bench's data set set-wise, fast on both databases."""
import sqlalchemy as sa

from portal.extensions import db


def insert(model, rows: list[dict], chunk: int = 20_000) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``model``'s table.

    On PostgreSQL through COPY (psycopg's ``cursor.copy``): an executemany runs one INSERT per
    row, and the statement-level triggers of ``users`` (the search table) with it, which made
    building 100,000 users take many minutes; COPY fires them once. SQLite's executemany is its
    fastest path.
    """
    if not rows:
        return
    table = getattr(model, "__table__", model)
    if db.session.get_bind().dialect.name != "postgresql":
        for start in range(0, len(rows), chunk):
            db.session.execute(sa.insert(table), rows[start:start + chunk])
        return
    from psycopg.types.json import Jsonb

    given = list(rows[0])
    # COPY knows the database's defaults only: the models' Python-side ones are added here.
    defaults = {}
    for column in table.columns:
        if column.name not in given and column.default is not None:
            default = column.default
            defaults[column.name] = default.arg if default.is_scalar else default.arg(None)
    names = given + list(defaults)
    json_columns = {name for name in names if isinstance(table.c[name].type, sa.JSON)}
    connection = db.session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                values = {**row, **defaults}
                copy.write_row([Jsonb(values[name]) if name in json_columns else values[name]
                                for name in names])
