"""The error every model loader raises for a model it cannot serve."""
from __future__ import annotations


class ModelConfigError(ValueError):
    """A model file or its configuration is wrong or unsupported.

    The message names the file, the key and what is allowed; the repository
    turns it into a LoadFailure so one broken model never stops the server.
    """
