"""nginx in front of several instances of each service.

One function, `render`, writes the configuration of both places that run it:
`make run ARGS="--instances N"` (nginx from Debian's package, on loopback) and
docker-compose.production.yml (deploy/nginx.conf is `render` for the compose
hostnames; `python -m devstack.load_balancer > deploy/nginx.conf` writes it
again, and a test checks that it is current).

What the configuration promises:
- a request that may have reached an instance is never sent to a second one
  unless HTTP calls its method idempotent: nginx does not replay POST or PATCH
  (nor LOCK) after an error, and GET and DELETE are idempotent in the contract;
- nginx's own failures (no instance answered, or too late) are the contract's
  503 `unavailable` JSON error with `Retry-After`, not an HTML page;
- connections to the instances are kept alive; timeouts sit above the services'
  own, so a slow answer comes from the service, with its own status.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Mapping, Sequence

from devstack.ports import is_listening
from devstack.process import ServerProcess

COMPOSE_UPSTREAMS = {
    "orders": (3000, ["orders-1:3000", "orders-2:3000"]),
    "invoices": (3001, ["invoices-1:3001", "invoices-2:3001"]),
}

_HTTP = """\
    access_log off;  # every instance logs its own requests
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_connect_timeout 2s;
    proxy_send_timeout 30s;
    proxy_read_timeout 30s;
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 2;
    proxy_buffering off;
"""

_SERVER = """\
    server {{
        listen {listen};
        error_page 502 504 = @unavailable;
        location / {{
            proxy_pass http://{name};
        }}
        location @unavailable {{
            default_type application/json;
            add_header Retry-After 1 always;
            return 503 '{{"error": "unavailable", "message": "no {name} instance answered"}}';
        }}
    }}
"""


def render(upstreams: Mapping[str, tuple[int, Sequence[str]]], host: str | None = None,
           run_dir: Path | None = None) -> str:
    """nginx.conf for `upstreams` (name -> (listening port, instance addresses)).

    With `run_dir`, a configuration for a process of ours: in the foreground, its pid
    and temporary files under `run_dir`, listening on `host` only.
    """
    lines = ["# Rendered by devstack/load_balancer.py: the same settings as `make run "
             "ARGS=\"--instances N\"`.", ""]
    if run_dir is not None:
        lines += ["daemon off;", f"pid {run_dir}/nginx.pid;", "error_log stderr notice;"]
    lines += ["worker_processes 1;" if run_dir else "worker_processes auto;",
              "events { worker_connections 1024; }", "", "http {"]
    if run_dir is not None:
        lines += [f"    {kind}_temp_path {run_dir}/{kind};"
                  for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")]
    lines += [_HTTP.rstrip("\n")]
    for name, (port, servers) in upstreams.items():
        lines += ["", f"    upstream {name} {{"]
        lines += [f"        server {server} max_fails=1 fail_timeout=2s;" for server in servers]
        lines += ["        keepalive 32;", "    }", ""]
        listen = f"{host}:{port}" if host else str(port)
        lines += [_SERVER.format(listen=listen, name=name).rstrip("\n")]
    lines += ["}", ""]
    return "\n".join(lines)


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError("several instances need nginx in front of them: install "
                           "Debian's package (apt-get install nginx-light)")
    return found


class LoadBalancer(ServerProcess):
    """nginx from the machine's package, as a child process, with a rendered config."""

    name = "nginx"

    def __init__(self, upstreams: Mapping[str, tuple[int, Sequence[str]]], run_dir: Path,
                 host: str = "127.0.0.1") -> None:
        ports = [port for port, _ in upstreams.values()]
        super().__init__(ports[0], host)
        self.ports = ports
        self.run_dir = run_dir
        self.config_path = run_dir / "nginx.conf"
        self.upstreams = upstreams

    def command(self) -> Sequence[str]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render(self.upstreams, self.host, self.run_dir))
        # -e: nginx opens its error log before it reads the config; not under /var/log.
        return [nginx_binary(), "-p", str(self.run_dir), "-e", "stderr",
                "-c", str(self.config_path)]

    def is_ready(self) -> bool:
        return all(is_listening(self.host, port) for port in self.ports)


if __name__ == "__main__":
    sys.stdout.write(render(COMPOSE_UPSTREAMS))
