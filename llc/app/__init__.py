"""The server as a whole: ``build_server(settings, profile)`` wires it, ``serve(server)`` runs it.

The composition root, above every other layer: ``llc-phone serve``, the demo and the tests start
the server through these two functions.
"""

from llc.app.assembly import build_server
from llc.app.run import serve
from llc.web.server import Server

__all__ = ["Server", "build_server", "serve"]
