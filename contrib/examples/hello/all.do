# all.do: builds hello and records what it prints, so that `all` is a real,
# checkable target (`cat all` shows the greeting) and a second
# `redo-ifchange all` does nothing.
redo-ifchange hello
./hello >"$3"
