"""The state database's schema and its write statements: the one definition both writers
use — `state.State` (the full adapter) and `state.hookdb` (the hook's lean path, which
imports nothing but sqlite3 and this)."""

BUSY_TIMEOUT_S = 10.0
HOOK_BUSY_TIMEOUT_S = 0.5  # the hook waits this long for the write lock, then spools the event
SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    mac TEXT PRIMARY KEY, ip TEXT NOT NULL, hostname TEXT, interface TEXT,
    vendor_class TEXT, requested_options TEXT, tags TEXT, expires INTEGER,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, active INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS leases_ip ON leases(ip);
CREATE TABLE IF NOT EXISTS discovered (
    mac TEXT PRIMARY KEY, ip TEXT, vendor_class TEXT, reason TEXT,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS enrolled (
    mac TEXT PRIMARY KEY, type TEXT NOT NULL, profile TEXT NOT NULL, enrolled_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS enrolled_lines (
    mac TEXT PRIMARY KEY, lines TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fetches (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, mac TEXT, ip TEXT, path TEXT NOT NULL,
    status INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS fetches_mac ON fetches(mac, time);
CREATE TABLE IF NOT EXISTS rendered (
    mac TEXT PRIMARY KEY, digest TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rendered_files (
    mac TEXT PRIMARY KEY, files TEXT NOT NULL);
"""

LEASE_COLUMNS = (
    "mac",
    "ip",
    "hostname",
    "interface",
    "vendor_class",
    "requested_options",
    "tags",
    "expires",
)
RECORD_LEASE = """INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
    ON CONFLICT(mac) DO UPDATE SET ip=excluded.ip,
      hostname=coalesce(excluded.hostname, hostname),
      interface=coalesce(excluded.interface, interface),
      vendor_class=coalesce(excluded.vendor_class, vendor_class),
      requested_options=coalesce(excluded.requested_options, requested_options),
      tags=coalesce(excluded.tags, tags),
      expires=coalesce(excluded.expires, expires),
      last_seen=excluded.last_seen, active=1"""
RELEASE_LEASE = "UPDATE leases SET active=0, last_seen=? WHERE mac=? AND ip=?"
RECORD_DISCOVERED = """INSERT INTO discovered VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(mac) DO UPDATE
    SET ip=excluded.ip, vendor_class=coalesce(excluded.vendor_class, vendor_class),
      reason=excluded.reason, last_seen=excluded.last_seen"""
ACTIVE_LEASES = "SELECT expires, mac, ip, hostname FROM leases WHERE active=1 ORDER BY mac"
# Replaying the hook's spool (`state.spool`): the same writes, but an event never undoes a
# newer one already in the row (a replay repeated after a crash between commit and truncate).
REPLAY_LEASE = RECORD_LEASE + " WHERE excluded.last_seen >= leases.last_seen"
REPLAY_RELEASE = "UPDATE leases SET active=0, last_seen=?1 WHERE mac=?2 AND ip=?3 AND last_seen<=?1"
REPLAY_DISCOVERED = RECORD_DISCOVERED + " WHERE excluded.last_seen >= discovered.last_seen"
