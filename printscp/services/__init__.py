"""DIMSE services: thin handlers that decode requests, call the domain layer and
encode the answer and its status.  One module per service."""
