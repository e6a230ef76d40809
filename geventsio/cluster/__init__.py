"""Several processes behind one address, without sticky sessions.

Each process of a cluster has a short random *tag*; every session id it opens ends in
that tag (:mod:`~geventsio.cluster.sid`). A polling request that reaches a process that
does not own its session is forwarded to the owner, whose answer is relayed back
(:mod:`~geventsio.cluster.forward`). On one host the owner is reached on an abstract
unix socket named after the group and the tag (:mod:`~geventsio.cluster.local`); across
hosts, on a TCP address each member keeps in Redis (:mod:`~geventsio.cluster.redis`).
See docs/deployment.md, "Several workers".
"""

from geventsio.cluster.local import LocalCluster
from geventsio.cluster.member import Member

__all__ = ["LocalCluster", "Member", "RedisCluster"]


def __getattr__(name: str) -> object:
    # RedisCluster needs redis-py (the ``redis`` extra): imported on first use.
    if name == "RedisCluster":
        from geventsio.cluster.redis import RedisCluster

        return RedisCluster
    raise AttributeError(name)
