"""What leaves the archive for readers: export files, diffs and version histories, Atom feeds."""
