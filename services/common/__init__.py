"""The runtime kit every TradeSense service uses."""
