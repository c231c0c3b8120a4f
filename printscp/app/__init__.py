"""The application: the node that wires every service to the network, its worker
processes, and the command line (:mod:`printscp.app.cli`, one module per subcommand).

The top layer: may import every other package of printscp, and nothing imports it.
"""
