"""The Socket.IO server: namespaces, sockets, events, acks and broadcasts."""
