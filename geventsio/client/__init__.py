"""The Python Socket.IO client."""
