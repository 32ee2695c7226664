"""The admin's window: a status page and a JSON API (`phoneprov admin`), apart from the
phones' endpoint. Nothing here is imported by the phones' serving path or the dnsmasq hook."""
