"""Sans-IO protocol cores: no sockets, no clock, no gevent."""
