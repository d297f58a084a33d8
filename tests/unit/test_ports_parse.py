"""Port owners from /proc: the parsing, as plain data."""

from __future__ import annotations

from llc.ops.ports import parse_proc_net_tcp

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0 20 4 30 10 -1
   2: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 333 1 0 100 0 0 10 0
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 444 1 0 100 0 0 10 0
"""


def test_parse_keeps_only_listening_sockets_on_the_port() -> None:
    assert parse_proc_net_tcp(TCP, 8080) == [(111, "127.0.0.1:8080")]  # the ESTABLISHED one (01) is not a listener
    assert parse_proc_net_tcp(TCP, 8081) == [(333, "0.0.0.0:8081")]
    assert parse_proc_net_tcp(TCP6, 8080) == [(444, "[::1]:8080")]
    assert parse_proc_net_tcp("header only\n", 8080) == []
