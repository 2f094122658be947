"""The token check for SQL databases, built into the UPDATE it guards (SQLAlchemy Core).

::

    from fencing.sql import fence

    statement = fence(invoices, invoices.c.id == iid, {"total_cents": 500}, lease.token)
    applied = connection.execute(statement).rowcount == 1   # or an AsyncConnection

    statement = fence(Invoice, Invoice.id == iid, {"total_cents": 500}, lease.token)
    applied = session.execute(statement).rowcount == 1      # an ORM class works too

The row keeps the highest token it accepted in `column`: a BIGINT (a counter starts at
Redis's clock in microseconds, so tokens are far above 2**31, where INTEGER
stops), nullable or with a default of 0. The statement is::

    UPDATE invoices SET total_cents=500, fence=:token
     WHERE invoices.id = :iid AND (invoices.fence IS NULL OR invoices.fence <= :token)

so the check and the write are one statement: a holder whose lease ran out
while it was paused carries a lower token than its successor's and updates no
row. A NULL counts as 0; an equal token is accepted (the same holder may retry).
Under concurrent writers the database's row lock orders the updates, and each
re-evaluates the condition on the row as the previous one left it (PostgreSQL's
READ COMMITTED does; so do MySQL/InnoDB and SQLite). `rowcount` is the number of
rows matched on those; on MySQL that needs the client flag FOUND_ROWS, which
SQLAlchemy's MySQL dialects set.

Nothing here runs the statement: execute it with any engine, sync or async.
Given an ORM class, it is the same Core UPDATE of the class's table: through a
Session it changes the row, not the objects the session has loaded (expire
them, or re-read, after a write).
"""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import ColumnElement, Table, Update, inspect, or_, update

__all__ = ["fence"]


def fence(table: Table | type[Any], whereclause: ColumnElement[bool] | None,
          values: Mapping[str, Any], token: int, column: str = "fence") -> Update:
    """`UPDATE table SET values, column = token WHERE whereclause AND column <= token`,
    where a NULL `column` counts as 0. `whereclause` None updates every row that
    passes the token check.

    `table` is a Core `Table` or an ORM mapped class (its table is updated);
    `values` and `column` name the table's columns.

    Raises TypeError if `token` is not an int or `table` is neither a Table nor a
    mapped class, ValueError if the table has no such column or `values` writes
    it already.
    """
    if not isinstance(token, int) or isinstance(token, bool):
        raise TypeError(f"a fencing token is an int, got {token!r}")
    table = _table_of(table)
    if column not in table.c:
        raise ValueError(f"table {table.name!r} has no column {column!r} for the token")
    if column in values:
        raise ValueError(f"the values write {column!r} itself: fence() sets it to the token")
    fence_column = table.c[column]
    at_most_token = or_(fence_column.is_(None), fence_column <= token)
    statement = update(table).values({**values, column: token})
    if whereclause is not None:
        statement = statement.where(whereclause)
    return statement.where(at_most_token)


def _table_of(target: Table | type[Any]) -> Table:
    """The Core table behind `target`: a Table itself, or a mapped class's."""
    if isinstance(target, Table):
        return target
    mapper = inspect(target, raiseerr=False)
    local_table = getattr(mapper, "local_table", None)
    if not isinstance(local_table, Table):
        raise TypeError(f"fence() takes a Table or an ORM mapped class, got {target!r}")
    return local_table
