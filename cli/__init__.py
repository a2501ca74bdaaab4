"""The `groupsense` command line."""
