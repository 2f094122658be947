from invoices.app import build
from servicekit.server import main

main("invoices", lambda settings: settings.invoices_port, build)
