"""Authorization: Casbin decides whether a principal may do an action at an org unit.

`require` is the one entry point every service operation calls before it acts.
"""

from service.authz.enforcer import (
    Authorizer,
    ReadablePaths,
    authorizer,
    readable_paths,
    require,
)

__all__ = ["Authorizer", "ReadablePaths", "authorizer", "readable_paths", "require"]
