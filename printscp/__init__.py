"""printscp: a DICOM node whose heart is a Print SCP, with PS3.14 (GSDF) film rendering.

The package is built in layers, lowest first: ``core``, ``net``, ``printing``, ``jobs``,
``outputs``, ``query``, the stores (``archive``, ``worklist``, ``mpps``), ``config``,
``services`` and ``app``; each package's docstring says what it holds and what it may
import, and ``docs/architecture.md`` draws the whole house.
"""

__version__ = "0.1.0"
