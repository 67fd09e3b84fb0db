"""tcpscope: a packet-capture TCP monitor (miruo and tcpeek on one engine)."""

__version__ = "0.1.0"
