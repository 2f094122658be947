from orders.app import build
from servicekit.server import main
from servicekit.usage import exit_if_help

exit_if_help("orders", 3000)
main("orders", lambda settings: settings.orders_port, build)
