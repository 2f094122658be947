from invoices.app import build
from invoices.settings import InvoiceSettings
from servicekit.server import main
from servicekit.usage import exit_if_help

exit_if_help("invoices", InvoiceSettings)
main("invoices", InvoiceSettings, build)
