"""The supervising processes: parent (event loop), reporter, and the child spawn path."""
