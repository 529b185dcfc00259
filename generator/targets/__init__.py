"""Runtime targets: each module knows one runtime's files, tables, modes and restart."""
