"""Engine.IO v4 sessions and transports over gevent."""
