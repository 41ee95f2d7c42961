"""Set-wise writing and reading: many rows through a staging table, or out of the database,
at the driver's speed."""
import itertools
from collections.abc import Iterator

import sqlalchemy as sa

# Fewer rows than this leave the planner's statistics as they are (analyze_written).
ANALYZE_FROM = 1000
_cursor_numbers = itertools.count(1)


def staging_table(name: str, *columns: sa.Column) -> sa.Table:
    """Return a temporary table for one transaction's staged rows (dropped at its commit on
    PostgreSQL; ``fresh`` empties it before each use, ``load`` fills it)."""
    return sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"],
                    postgresql_on_commit="DROP")


def load(conn: sa.Connection, table: sa.Table, rows: list[tuple]) -> None:
    """Insert tuples into a staging table: COPY on PostgreSQL, executemany elsewhere.

    psycopg's COPY (``cursor.copy``) streams the rows in one command, several times faster than
    an executemany of INSERTs. Core's executemany turns each dict into the driver's parameters
    in Python, which doubles the cost of loading 100,000 rows; staging columns need no type
    conversion, so the driver's own executemany takes the tuples as they are.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        columns = ", ".join(column.name for column in table.columns)
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    compiled = table.insert().compile(dialect=conn.dialect)
    if not compiled.positional:
        names = [column.name for column in table.columns]
        rows = [dict(zip(names, row)) for row in rows]
    conn.exec_driver_sql(str(compiled), rows)


def fresh(conn: sa.Connection, *tables: sa.Table) -> None:
    """(Re)create temporary staging tables for this transaction, empty."""
    for table in tables:
        table.drop(conn, checkfirst=True)
        table.create(conn)


def analyze(conn: sa.Connection, *tables: sa.Table) -> None:
    """Give PostgreSQL's planner the statistics of freshly loaded staging tables.

    Autovacuum never sees a temporary table, so without this the planner guesses its size
    from its pages and its values not at all. SQLite plans its joins on indexes alone.
    """
    if conn.dialect.name == "postgresql" and tables:
        conn.exec_driver_sql("ANALYZE " + ", ".join(table.name for table in tables))


def analyze_written(conn: sa.Connection, added: int, *tables: sa.Table) -> None:
    """Re-analyse tables an INSERT ... SELECT grew by a large share, before reading them back.

    Statistics taken when a table was (nearly) empty make PostgreSQL join 100,000 new rows by
    nested loops (10,000 rows took 65 s); ANALYZE samples at most 30,000 rows, so it costs
    tens of milliseconds. Small additions keep the statistics (and take no lock for it).
    """
    if conn.dialect.name != "postgresql" or added < ANALYZE_FROM:
        return
    names = [table.name for table in tables]
    estimates = dict(conn.execute(
        sa.text("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' "
                "AND relname = ANY(:names) AND pg_table_is_visible(oid)"),
        {"names": names}).all())
    stale = [name for name in names if estimates.get(name, -1) < 4 * added]
    if stale:
        conn.exec_driver_sql("ANALYZE " + ", ".join(stale))


def batches(conn: sa.Connection, query: sa.Select, size: int) -> Iterator[list[tuple]]:
    """Yield the query's rows as the driver returns them (plain tuples), ``size`` at a time.

    For 100,000 rows SQLAlchemy's row objects cost more than the database's work (the export
    took 3x a hand-written one). The query's columns must need no result processing (text,
    numbers). On PostgreSQL a server-side cursor keeps memory flat, as ``yield_per`` does.
    """
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        cursor = driver.cursor(name=f"batches_{next(_cursor_numbers)}")
        params = compiled.params
    else:
        cursor = driver.cursor()
        params = [compiled.params[name] for name in compiled.positiontup]
    try:
        cursor.execute(str(compiled), params)
        while batch := cursor.fetchmany(size):
            yield batch
    finally:
        cursor.close()
