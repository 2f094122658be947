"""The invoices service: invoices in MongoDB, written only under a current fencing token."""
