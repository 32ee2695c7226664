"""SIP adapters: the multicast PnP responder and the check-sync sender.

asyncio glue over the pure `core.sipmsg` / `core.sipdialog` / `core.siptimers`: decode a
datagram, let the core decide, encode, send. Config and state are read by `cli.sip` only.
"""
