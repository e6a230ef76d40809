"""Several processes behind one address, without sticky sessions.

Each process of a cluster has a short random *tag*; every session id it opens ends in
that tag (:mod:`~geventsio.cluster.sid`). A polling request that reaches a process that
does not own its session is forwarded to the owner, whose answer is relayed back
(:mod:`~geventsio.cluster.forward`). On one host the owner is reached on an abstract
unix socket named after the group and the tag (:mod:`~geventsio.cluster.local`).
See docs/deployment.md, "Several workers".
"""

from geventsio.cluster.local import LocalCluster

__all__ = ["LocalCluster"]
