from orders.app import build
from servicekit.server import main

main("orders", lambda settings: settings.orders_port, build)
