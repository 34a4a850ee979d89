"""Small leaves every process uses; nothing here imports the rest of pwsup.

`log` (the one log emitter), `title` (process titles, cheaply), `timefmt` (the API's
timestamps), `files` (0600 files replaced atomically; only regular files written over or
removed), `waiting` (poll() on descriptors, whatever their number), `rawsignal`, `record`,
`text`, `usage`.
"""
