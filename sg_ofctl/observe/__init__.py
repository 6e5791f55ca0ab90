"""Seeing what the firewall does: `trace` (the switch's verdict, in the rules'
words), packet logging (`packetlog`) and metrics/health (`metrics`, `health`).
On the agent's floor: it may read the agent's view of a host."""
