"""The Socket.IO server over real sockets, and its parts in process."""
