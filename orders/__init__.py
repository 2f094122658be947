"""The orders service: orders in MongoDB; updates and deletes carry their invoice along
under one lease on {order, invoice}."""
