"""The phone side: what a D-series phone does on the wire (DHCP client, …)."""
