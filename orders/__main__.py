from orders.app import build
from orders.settings import OrderSettings
from servicekit.server import main
from servicekit.usage import exit_if_help

exit_if_help("orders", OrderSettings)
main("orders", OrderSettings, build)
