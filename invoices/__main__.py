from invoices.app import build
from servicekit.server import main
from servicekit.usage import exit_if_help

exit_if_help("invoices", 3001)
main("invoices", lambda settings: settings.invoices_port, build)
