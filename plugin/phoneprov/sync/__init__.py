"""`phoneprov sync`: the site configuration from a Git repository (`[sync]`), checked before
it goes live, switched atomically, rolled back with `sync --to REV`."""
