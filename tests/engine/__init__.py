"""Engine.IO over real sockets."""
