"""The pure provisioning core: no files, sockets, environment or clock in here."""
