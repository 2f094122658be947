"""The token check for SQL databases, built into the UPDATE it guards (SQLAlchemy Core).

::

    from fencing.sql import fence

    statement = fence(invoices, invoices.c.id == iid, {"total_cents": 500}, lease.token)
    applied = connection.execute(statement).rowcount == 1   # or an AsyncConnection

The row keeps the highest token it accepted in `column` (an integer column,
nullable or with a default of 0). The statement is::

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
"""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import ColumnElement, Table, Update, or_, update

__all__ = ["fence"]


def fence(table: Table, whereclause: ColumnElement[bool] | None, values: Mapping[str, Any],
          token: int, column: str = "fence") -> Update:
    """`UPDATE table SET values, column = token WHERE whereclause AND column <= token`,
    where a NULL `column` counts as 0. `whereclause` None updates every row that
    passes the token check.

    Raises TypeError if `token` is not an int, ValueError if `table` has no such
    column or `values` writes it already.
    """
    if not isinstance(token, int) or isinstance(token, bool):
        raise TypeError(f"a fencing token is an int, got {token!r}")
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
