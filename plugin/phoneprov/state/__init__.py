"""The state database (SQLite): `db` is the full adapter, `sql` the one schema, `hookdb` the
dnsmasq hook's lean path. Empty on purpose: the hook imports `hookdb` without `db`."""
